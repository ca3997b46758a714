#!/usr/bin/env node
/**
 * bulwark-controller [--config FILE] [--check-config] [--version]
 * Runs until SIGTERM/SIGINT. With no natsUrl configured it starts its own nats-server.
 * --check-config validates every layer (file, drop-ins, environment), prints the effective
 * configuration as JSON with secrets redacted and exits 0 (ExecStartPre= of the unit); a bad
 * layer exits 2 naming the file and key path, as a normal start does.
 * Flags are parsed strictly (node:util parseArgs): an unknown one, --config without its
 * value, one given twice or an argument is a usage error (exit 2).
 */
import { parseArgs } from 'node:util';
import { isBulwarkError } from '../lib/index.js';
import { createLogger, isLogLevel, readBuildInfo, versionLine } from '../daemon/index.js';
import { checkControllerConfig, loadControllerConfig } from './config/index.js';
import { Controller } from './controller.js';

const NAME = 'bulwark-controller';

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseControllerArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`bulwark-controller: ${parsed.reason}\n${HELP}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.version) {
    process.stdout.write(versionLine(NAME, await readBuildInfo()));
    return 0;
  }
  const { configPath } = parsed;
  if (parsed.checkConfig) {
    let checked;
    try {
      checked = await checkControllerConfig(configPath);
    } catch (err) {
      // A plain line for the operator (and the journal, from ExecStartPre=): the file, the key path, why.
      if (!isBulwarkError(err) || err.code !== 'CONFIG_INVALID') throw err;
      process.stderr.write(`${NAME}: ${err.message}\n`);
      return 2;
    }
    process.stdout.write(`${JSON.stringify(checked.redacted, null, 2)}\n`);
    process.stderr.write(`${NAME}: configuration is valid (files: ${checked.sources.files.join(', ') || 'none'}; environment: ${checked.sources.environment.join(', ') || 'none'})\n`);
    return 0;
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

const HELP = `usage: bulwark-controller [--config FILE] [--check-config] [--version] [--help]
  runs until SIGTERM/SIGINT; with no natsUrl configured it starts its own nats-server
  --check-config  validate the configuration, print it (secrets redacted) and exit:
                  0 valid, 2 invalid (the file and key path are named)
  --version       print the version, commit and Node version
Configuration: /etc/bulwark/controller.json (or --config FILE), then the drop-ins in
/etc/bulwark/controller.d/*.json, then BULWARK_* environment variables (BULWARK_DATA_DIR,
BULWARK_NATS_URL, BULWARK_GRPC_LISTEN, ...).
Exit status: 2 a configuration error, 3 stored data newer than this version reads
(a downgrade), 1 any other failure.
`;

/**
 * The controller's command line (node:util parseArgs, strict). A usage error is a value with
 * its reason: an unknown option, an argument, --config without its value or given twice.
 */
function parseControllerArgs(
  argv: readonly string[],
):
  | { readonly ok: true; readonly configPath: string | undefined; readonly help: boolean; readonly version: boolean; readonly checkConfig: boolean }
  | { readonly ok: false; readonly reason: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      tokens: true,
      options: {
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        'check-config': { type: 'boolean' },
      },
    });
  } catch (err) {
    // parseArgs throws a TypeError with an ERR_PARSE_ARGS_* code and a readable message.
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) return { ok: false, reason: `option '--${token.name}' given more than once` };
    seen.add(token.name);
  }
  return { ok: true, configPath: parsed.values.config, help: parsed.values.help === true, version: parsed.values.version === true, checkConfig: parsed.values['check-config'] === true };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // The config may be what failed: the level comes from the environment, or info.
    const level = process.env['BULWARK_LOG_LEVEL'];
    const log = createLogger({ name: NAME, level: isLogLevel(level) ? level : 'info' });
    log.fatal({ code: isBulwarkError(err) ? err.code : 'INTERNAL' }, err instanceof Error ? err.message : String(err));
    process.exit(exitStatusFor(err));
  },
);

/**
 * The exit status of a failed start: 2 a configuration error, 3 stored data newer than this
 * version reads (a downgrade), 1 anything else. The unit lets systemd retry only the last:
 * no restart fixes the first two (RestartPreventExitStatus=2 3).
 */
function exitStatusFor(err: unknown): number {
  if (!isBulwarkError(err)) return 1;
  if (err.kind === 'usage') return 2;
  return err.code === 'STORE_VERSION_NEWER' ? 3 : 1;
}
