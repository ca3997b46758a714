#!/usr/bin/env node
/**
 * bulwark-agent [run] [--config FILE]   enroll (once) and attest until SIGTERM
 * bulwark-agent enroll [--config FILE]  enroll now and exit
 */
import { isBulwarkError } from '../lib/index.js';
import { createLogger, isLogLevel } from '../daemon/index.js';
import { Agent } from './agent.js';
import { loadAgentConfig } from './config.js';
import { collectHostFacts } from './facts.js';
import { evidenceSources } from './sources.js';
import { Tpm2ToolsTpm } from './tpm2-tools-tpm.js';
import { parseDuration, waitTrusted } from './gate.js';
import { hostname } from 'node:os';

const HELP = `usage: bulwark-agent [run|enroll|gate] [--config FILE]
  run     enroll once, then answer challenges and push evidence on a timer (default)
  enroll  enroll with the controller now and exit
  gate --wait-trusted [--timeout 5m]
          wait until the controller says this host is trusted (exit 0), or fail (exit 1)
          after the timeout; for ExecStartPre= of nomad.service
Configuration: /etc/bulwark/agent.json (or --config / $BULWARK_AGENT_CONFIG), then
BULWARK_* environment variables (BULWARK_TCTI, BULWARK_CONTROLLER, BULWARK_NATS_URL, ...).
`;

async function main(argv: readonly string[]): Promise<number> {
  let command = 'run';
  let configPath: string | undefined;
  let waitTrustedFlag = false;
  let timeoutMs = 5 * 60_000;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') configPath = argv[++i];
    else if (a === '--wait-trusted') waitTrustedFlag = true;
    else if (a === '--timeout') {
      const t = parseDuration(argv[++i] ?? '');
      if (t === null) {
        process.stderr.write('bulwark-agent: --timeout takes a duration such as 90s or 5m\n');
        return 2;
      }
      timeoutMs = t;
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      return 0;
    } else if (a === 'run' || a === 'enroll' || a === 'gate') command = a;
    else {
      process.stderr.write(`bulwark-agent: unknown argument ${String(a)}\n${HELP}`);
      return 2;
    }
  }
  const config = await loadAgentConfig(configPath);
  if (command === 'gate') {
    if (!waitTrustedFlag) {
      process.stderr.write('bulwark-agent: gate needs --wait-trusted\n');
      return 2;
    }
    const result = await waitTrusted({
      controller: config.controller,
      nodeId: config.nodeId ?? hostname(),
      timeoutMs,
      log: (msg) => process.stderr.write(`bulwark-agent gate: ${msg}\n`),
    });
    process.stderr.write(`bulwark-agent gate: ${result.trusted ? 'trusted' : `not trusted (${result.state}) after ${result.waitedMs} ms`}\n`);
    return result.trusted ? 0 : 1;
  }
  const tpm = await Tpm2ToolsTpm.open({ tcti: config.tcti, toolTimeoutMs: config.toolTimeoutMs, akAlg: config.akAlg });
  const log = createLogger({ name: 'bulwark-agent', level: config.logLevel });
  const agent = new Agent({ config, tpm, collectFacts: collectHostFacts, sources: evidenceSources(config), log });
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
