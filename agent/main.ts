#!/usr/bin/env node
/**
 * bulwark-agent [run] [--config FILE]   enroll (once) and attest until SIGTERM
 * bulwark-agent enroll [--config FILE]  enroll now and exit
 * bulwark-agent gate --wait-trusted [--timeout 5m]
 * bulwark-agent baseline apply [--dry-run] [--baseline FILE]
 * bulwark-agent sign FILE [-o ENVELOPE] [--key PEM|pkcs11:URI]   (agent/sign.ts)
 * bulwark-agent --check-config [--config FILE]   validate, print the effective config (secrets redacted)
 * bulwark-agent --version
 * Flags are parsed strictly (node:util parseArgs): an unknown one, one without its value or
 * one given twice is a usage error (exit 2).
 */
import { isBulwarkError } from '../lib/index.js';
import { createLogger, isLogLevel, readBuildInfo, versionLine } from '../daemon/index.js';
import { Agent } from './agent.js';
import { checkAgentConfig, loadAgentConfig } from './config.js';
import { collectHostFacts } from './facts.js';
import { evidenceSources } from './sources.js';
import { Tpm2ToolsTpm } from './tpm2-tools-tpm.js';
import { parseDuration, waitTrusted } from './gate.js';
import { runBaselineApply } from './baseline/index.js';
import { runSignCommand } from './sign.js';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

// gRPC over TLS to an IP address (127.0.0.1:7443) sends that address as SNI, which Node
// reports once as DEP0123 (RFC 6066 names hosts only); the certificate is still checked
// against the IP address SAN. Only that warning is dropped; every other one is printed.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!('code' in w) || w.code !== 'DEP0123') process.stderr.write(`${w.name}: ${w.message}\n`);
});

const HELP = `usage: bulwark-agent [run|enroll|gate|baseline apply|sign] [--config FILE] [--help]
  run     enroll once, then answer challenges and push evidence on a timer (default)
  enroll  enroll with the controller now and exit
  gate --wait-trusted [--timeout 5m]
          wait until the controller says this host is trusted (exit 0), or fail (exit 1)
          after the timeout; for ExecStartPre= of nomad.service
  baseline apply [--dry-run] [--baseline FILE]
          enforce the held host baseline (or FILE) now: replace the nftables table
          inet bulwark in one transaction and set SELinux enforcing and the required
          booleans; --dry-run prints the transaction and the changes, applies nothing
  sign FILE [-o ENVELOPE] [--key PEM|pkcs11:URI]
          sign FILE with the host key, bound to the controller's attestation that this
          host is trusted now (verify with bulwarkctl verify --require-attested)
  --check-config
          validate the configuration, print it (secrets redacted) and exit: 0 valid,
          2 invalid (the file and key path are named); for ExecStartPre=
  --version
          print the version, commit and Node version
Configuration: /etc/bulwark/agent.json (or --config / $BULWARK_AGENT_CONFIG), then the
drop-ins in /etc/bulwark/agent.d/*.json, then BULWARK_* environment variables
(BULWARK_TCTI, BULWARK_CONTROLLER, BULWARK_NATS_URL, ...).
`;

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseAgentArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`bulwark-agent: ${parsed.reason}\n${HELP}`);
    return 2;
  }
  const { command, configPath, waitTrustedFlag, timeoutMs, help } = parsed.args;
  if (help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.args.version) {
    process.stdout.write(versionLine('bulwark-agent', await readBuildInfo()));
    return 0;
  }
  if (parsed.args.checkConfig) {
    let checked;
    try {
      checked = await checkAgentConfig(configPath);
    } catch (err) {
      // A plain line for the operator (and the journal, from ExecStartPre=): the file, the key path, why.
      if (!isBulwarkError(err) || err.code !== 'CONFIG_INVALID') throw err;
      process.stderr.write(`bulwark-agent: ${err.message}\n`);
      return 2;
    }
    process.stdout.write(`${JSON.stringify(checked.redacted, null, 2)}\n`);
    process.stderr.write(`bulwark-agent: configuration is valid (files: ${checked.sources.files.join(', ') || 'none'}; environment: ${checked.sources.environment.join(', ') || 'none'})\n`);
    return 0;
  }
  if (command === 'gate' && !waitTrustedFlag) {
    process.stderr.write('bulwark-agent: gate needs --wait-trusted\n');
    return 2;
  }
  const config = await loadAgentConfig(configPath);
  if (command === 'sign') return runSignCommand(config, parsed.args.sign);
  if (command === 'baseline') {
    const log = createLogger({ name: 'bulwark-agent', level: config.logLevel });
    return runBaselineApply({
      dataDir: config.dataDir,
      selinuxRoot: config.selinuxRoot,
      nftCommand: config.nftCommand,
      toolTimeoutMs: config.toolTimeoutMs,
      dryRun: parsed.args.dryRun,
      ...(parsed.args.baselinePath === undefined ? {} : { baselinePath: parsed.args.baselinePath }),
      out: (text) => process.stdout.write(text),
      log,
    });
  }
  if (command === 'gate') {
    const result = await waitTrusted({
      controller: config.controller,
      controllerCa: config.controllerCa,
      dataDir: config.dataDir,
      nodeId: config.nodeId ?? hostname(),
      timeoutMs,
      log: (msg) => process.stderr.write(`bulwark-agent gate: ${msg}\n`),
    });
    process.stderr.write(`bulwark-agent gate: ${result.trusted ? 'trusted' : `not trusted (${result.state}) after ${result.waitedMs} ms`}\n`);
    return result.trusted ? 0 : 1;
  }
  const tpm = await Tpm2ToolsTpm.open({ tcti: config.tcti, toolTimeoutMs: config.toolTimeoutMs, akAlg: config.akAlg });
  const log = createLogger({ name: 'bulwark-agent', level: config.logLevel });
  const agent = new Agent({ config, tpm, collectFacts: collectHostFacts, sources: evidenceSources(config, { tpm, log }), log });
  try {
    if (command === 'enroll') {
      await agent.enroll();
      return 0;
    }
    await agent.start();
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await agent.stop();
    return 0;
  } finally {
    await tpm.close();
  }
}

const COMMANDS = ['run', 'enroll', 'gate', 'baseline', 'sign'] as const;
type AgentCommand = (typeof COMMANDS)[number];

function isAgentCommand(word: string): word is AgentCommand {
  return COMMANDS.some((c) => c === word);
}

interface AgentArgs {
  readonly command: AgentCommand;
  readonly configPath: string | undefined;
  readonly waitTrustedFlag: boolean;
  readonly timeoutMs: number;
  readonly help: boolean;
  readonly version: boolean;
  readonly checkConfig: boolean;
  readonly dryRun: boolean;
  readonly baselinePath: string | undefined;
  /** `sign` only: the file, -o and --key. */
  readonly sign: { readonly file: string; readonly output: string | undefined; readonly key: string | undefined };
}

/**
 * The agent's command line (node:util parseArgs, strict). A usage error is a value with its
 * reason: an unknown option, an option without its value or given twice, a second command
 * word, an unknown command or a --timeout that is no duration.
 */
function parseAgentArgs(argv: readonly string[]): { readonly ok: true; readonly args: AgentArgs } | { readonly ok: false; readonly reason: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      tokens: true,
      options: {
        config: { type: 'string' },
        'wait-trusted': { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        'check-config': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        baseline: { type: 'string' },
        output: { type: 'string', short: 'o' },
        key: { type: 'string' },
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
  const [word, ...rest] = parsed.positionals;
  if (word !== undefined && !isAgentCommand(word)) return { ok: false, reason: `unknown command ${word}` };
  // `baseline` takes one subcommand word (apply), `sign` one FILE; the other commands take none.
  const [sub, extra] = word === 'baseline' || word === 'sign' ? rest : [undefined, ...rest];
  if (extra !== undefined) return { ok: false, reason: `unexpected argument ${extra}` };
  if (word === 'sign' && sub === undefined) return { ok: false, reason: 'sign needs a FILE' };
  if (word === 'baseline' && sub !== 'apply') return { ok: false, reason: sub === undefined ? 'baseline needs a subcommand: apply' : `unknown baseline subcommand ${sub}` };
  const { values } = parsed;
  if (word !== 'baseline' && (values['dry-run'] !== undefined || values.baseline !== undefined)) return { ok: false, reason: '--dry-run and --baseline belong to baseline apply' };
  if (word !== 'sign' && (values.output !== undefined || values.key !== undefined)) return { ok: false, reason: '-o and --key are options of sign' };
  // --check-config checks what a run would use: with no command, or `run`.
  if (values['check-config'] === true && word !== undefined && word !== 'run') return { ok: false, reason: '--check-config takes no command other than run' };
  let timeoutMs = 5 * 60_000;
  if (values.timeout !== undefined) {
    const t = parseDuration(values.timeout);
    if (t === null) return { ok: false, reason: '--timeout takes a duration such as 90s or 5m' };
    timeoutMs = t;
  }
  return {
    ok: true,
    args: {
      command: word ?? 'run',
      configPath: values.config,
      waitTrustedFlag: values['wait-trusted'] === true,
      timeoutMs,
      help: values.help === true,
      version: values.version === true,
      checkConfig: values['check-config'] === true,
      dryRun: values['dry-run'] === true,
      baselinePath: values.baseline,
      sign: { file: sub ?? '', output: values.output, key: values.key },
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // The config may be what failed: the level comes from the environment, or info.
    const level = process.env['BULWARK_LOG_LEVEL'];
    const log = createLogger({ name: 'bulwark-agent', level: isLogLevel(level) ? level : 'info' });
    log.fatal({ code: isBulwarkError(err) ? err.code : 'INTERNAL' }, err instanceof Error ? err.message : String(err));
    process.exit(isBulwarkError(err) && err.kind === 'usage' ? 2 : 1);
  },
);
