/** The evidence sources an agent runs, from its configuration. */
import type { AgentConfig } from './config.js';
import { EventLogSource } from './event-log-source.js';
import type { EvidenceSource } from './evidence-source.js';

export function evidenceSources(config: AgentConfig): EvidenceSource[] {
  const sources: EvidenceSource[] = [];
  if (config.eventLogPath !== null) sources.push(new EventLogSource(config.eventLogPath));
  return sources;
}
