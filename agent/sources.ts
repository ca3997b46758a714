/** The evidence sources an agent runs, from its configuration. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig } from './config.js';
import { EventLogSource } from './event-log-source.js';
import type { EvidenceSource } from './evidence-source.js';
import { ImaSource } from './ima-source.js';

export function evidenceSources(config: AgentConfig, opts: { imaPollMs?: number } = {}): EvidenceSource[] {
  const sources: EvidenceSource[] = [];
  if (config.eventLogPath !== null) sources.push(new EventLogSource(config.eventLogPath));
  if (config.imaLogPath !== null) {
    sources.push(
      new ImaSource({
        path: config.imaLogPath,
        format: config.imaFormat,
        statePath: join(config.dataDir, 'ima-position.json'),
        bootId: async () => (await readFile(config.bootIdPath, 'utf8')).trim(),
        ...(opts.imaPollMs === undefined ? {} : { pollMs: opts.imaPollMs }),
      }),
    );
  }
  return sources;
}
