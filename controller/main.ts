#!/usr/bin/env node
/**
 * bulwark-controller [--config FILE]
 * Runs until SIGTERM/SIGINT. With no natsUrl configured it starts its own nats-server.
 * Flags are parsed strictly (node:util parseArgs): an unknown one, --config without its
 * value or one given twice is a usage error (exit 2).
 */
import { parseArgs } from 'node:util';
import { BulwarkError, isBulwarkError } from '../lib/index.js';
import { loadControllerConfig } from './config/index.js';
import { Controller, jsonLogger } from './controller.js';

const HELP = `usage: bulwark-controller [--config FILE] [--help]
  runs until SIGTERM/SIGINT; with no natsUrl configured it starts its own nats-server
Configuration: /etc/bulwark/controller.json (or --config FILE), then BULWARK_* environment
variables (BULWARK_DATA_DIR, BULWARK_NATS_URL, BULWARK_GRPC_LISTEN, ...).
`;

/** parseArgs throws a TypeError with an ERR_PARSE_ARGS_* code; here it is a usage error. */
function asUsageError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new BulwarkError('USAGE', err instanceof Error ? err.message : String(err), {}, { cause: err });
  }
}

/**
 * The controller's command line (node:util parseArgs, strict): an unknown option, an
 * argument, --config without its value or an option given twice is a USAGE BulwarkError.
 */
function parseControllerArgs(argv: readonly string[]): { readonly configPath: string | undefined; readonly help: boolean } {
  const parsed = asUsageError(() =>
    parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      tokens: true,
      options: {
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new BulwarkError('USAGE', `option '--${token.name}' given more than once`);
    seen.add(token.name);
  }
  return { configPath: parsed.values.config, help: parsed.values.help === true };
}

async function main(argv: readonly string[]): Promise<number> {
  let args: { readonly configPath: string | undefined; readonly help: boolean };
  try {
    args = parseControllerArgs(argv);
  } catch (err) {
    process.stderr.write(`bulwark-controller: ${err instanceof Error ? err.message : String(err)}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { configPath } = args;
  const config = await loadControllerConfig(configPath);
  const controller = new Controller(config);
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
    if (isBulwarkError(err)) jsonLogger('error', err.message, { code: err.code });
    else jsonLogger('error', err instanceof Error ? err.message : String(err), { code: 'INTERNAL' });
    process.exit(isBulwarkError(err) && err.kind === 'usage' ? 2 : 1);
  },
);
