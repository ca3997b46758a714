/** The evidence sources an agent runs, from its configuration. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BulwarkError } from '../lib/index.js';
import type { Logger } from '../daemon/index.js';
import { BaselineSource, Nftables } from './baseline/index.js';
import type { AgentConfig } from './config.js';
import { EventLogSource } from './event-log-source.js';
import type { EvidenceSource } from './evidence-source.js';
import { ImaSource } from './ima-source.js';
import type { Tpm } from './tpm.js';

/** The sources of `config`; the baseline source (config `baseline`, on by default) needs the TPM it extends and a logger. */
export function evidenceSources(config: AgentConfig, opts: { imaPollMs?: number; tpm?: Tpm; log?: Logger } = {}): EvidenceSource[] {
  const sources: EvidenceSource[] = [];
  const bootId = async (): Promise<string> => (await readFile(config.bootIdPath, 'utf8')).trim();
  if (config.eventLogPath !== null) sources.push(new EventLogSource(config.eventLogPath));
  if (config.imaLogPath !== null) {
    sources.push(
      new ImaSource({
        path: config.imaLogPath,
        format: config.imaFormat,
        statePath: join(config.dataDir, 'ima-position.json'),
        bootId,
        ...(opts.imaPollMs === undefined ? {} : { pollMs: opts.imaPollMs }),
      }),
    );
  }
  if (config.baseline) {
    if (opts.tpm === undefined || opts.log === undefined) throw new BulwarkError('USAGE', 'the baseline source needs the TPM and a logger (or set baseline: false)');
    sources.push(
      new BaselineSource({
        tpm: opts.tpm,
        nft: new Nftables({ command: config.nftCommand, timeoutMs: config.toolTimeoutMs }),
        selinuxRoot: config.selinuxRoot,
        dataDir: config.dataDir,
        pcr: config.baselinePcr,
        bootId,
        log: opts.log,
      }),
    );
  }
  return sources;
}
