#!/usr/bin/env node
/**
 * bulwark-controller [--config FILE]
 * Runs until SIGTERM/SIGINT. With no natsUrl configured it starts its own nats-server.
 */
import { isBulwarkError } from '../lib/index.js';
import { createLogger, isLogLevel } from '../daemon/index.js';
import { loadControllerConfig } from './config/index.js';
import { Controller } from './controller.js';

const NAME = 'bulwark-controller';

async function main(argv: readonly string[]): Promise<number> {
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') configPath = argv[++i];
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: bulwark-controller [--config FILE]\n');
      return 0;
    } else {
      process.stderr.write(`bulwark-controller: unknown argument ${a}\n`);
      return 2;
    }
  }
  const config = await loadControllerConfig(configPath);
  const controller = new Controller(config, createLogger({ name: NAME, level: config.logLevel }));
  await controller.start();
  // Print where we listen so scripts (and the demo) can find the ports.
  process.stdout.write(`${JSON.stringify({ ready: true, grpc: controller.grpcAddress, nats: controller.natsUrl })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await controller.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // The config may be what failed: the level comes from the environment, or info.
    const level = process.env['BULWARK_LOG_LEVEL'];
    const log = createLogger({ name: NAME, level: isLogLevel(level) ? level : 'info' });
    log.fatal({ code: isBulwarkError(err) ? err.code : 'INTERNAL' }, err instanceof Error ? err.message : String(err));
    process.exit(isBulwarkError(err) && err.kind === 'usage' ? 2 : 1);
  },
);
