/**
 * bulwark-agent's Prometheus metrics, one registry per Agent: quote latency, rounds and
 * their failures, and how much of each log the agent holds and ships (the event log, the
 * IMA list's acknowledged offset and the bytes sent, the baseline report log). Served only
 * when the agent's config names `metricsListen` (off by default).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SourceFields } from './evidence-source.js';

/** Quote latency buckets (seconds): a firmware TPM quotes in tens of ms, a discrete one in hundreds. */
const QUOTE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The agent's metrics and their registry. Trust: what this agent did, as it counted it. */
export class AgentMetrics {
  readonly registry = new Registry();
  private processMetrics = false;
  private readonly quoteSeconds: Histogram;
  private readonly rounds: Counter<'verdict'>;
  private readonly failures: Counter<'code'>;
  private readonly eventLogBytes: Gauge;
  private readonly eventLogSentBytes: Counter;
  private readonly imaSentBytes: Counter;
  private readonly imaOffset: Gauge;
  private readonly baselineEntries: Gauge;
  private readonly baselineSentBytes: Counter;

  constructor() {
    const registers = [this.registry];
    this.quoteSeconds = new Histogram({ name: 'bulwark_agent_quote_duration_seconds', help: 'TPM quote latency (tpm2_quote).', buckets: QUOTE_BUCKETS, registers });
    this.rounds = new Counter({ name: 'bulwark_agent_rounds_total', help: "Rounds answered by the controller, by its verdict.", labelNames: ['verdict'], registers });
    this.failures = new Counter({
      name: 'bulwark_agent_round_failures_total',
      help: 'Rounds that failed before a verdict (TPM, NATS, controller refusal), by error code.',
      labelNames: ['code'],
      registers,
    });
    this.eventLogBytes = new Gauge({ name: 'bulwark_agent_event_log_bytes', help: 'Size of the UEFI event log as last sent.', registers });
    this.eventLogSentBytes = new Counter({ name: 'bulwark_agent_event_log_sent_bytes_total', help: 'Event log bytes sent (only when its digest changed).', registers });
    this.imaSentBytes = new Counter({ name: 'bulwark_agent_ima_sent_bytes_total', help: 'IMA measurement list bytes sent.', registers });
    this.imaOffset = new Gauge({ name: 'bulwark_agent_ima_offset_bytes', help: 'Byte offset in the IMA measurement list up to which the last round read.', registers });
    this.baselineEntries = new Gauge({ name: 'bulwark_agent_baseline_report_log_entries', help: 'Baseline reports in this boot\'s report log, as far as the last round sent.', registers });
    this.baselineSentBytes = new Counter({ name: 'bulwark_agent_baseline_sent_bytes_total', help: 'Baseline report bytes sent.', registers });
  }

  /**
   * Adds the standard process metrics (CPU, resident memory, open fds, event loop lag, GC)
   * to this registry, once; called when the registry is served, so instances that are never
   * scraped (many agents in one test process) start no event-loop monitor each.
   */
  withProcessMetrics(): this {
    if (!this.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.processMetrics = true;
    return this;
  }

  quoted(seconds: number): void {
    this.quoteSeconds.observe(seconds);
  }

  /** What one round sent, from the fields the evidence sources filled. */
  sent(fields: SourceFields): void {
    if (fields.eventLog !== undefined && fields.eventLog.length > 0) {
      this.eventLogBytes.set(fields.eventLog.length);
      this.eventLogSentBytes.inc(fields.eventLog.length);
    }
    if (fields.imaEntries !== undefined) {
      this.imaSentBytes.inc(fields.imaEntries.length);
      this.imaOffset.set((fields.imaFromOffset ?? 0) + fields.imaEntries.length);
    }
    if (fields.baselineReports !== undefined) {
      this.baselineSentBytes.inc(fields.baselineReports.reduce((n, r) => n + r.length, 0));
      this.baselineEntries.set((fields.baselineFrom ?? 0) + fields.baselineReports.length);
    }
  }

  /** A round the controller answered. */
  answered(verdict: string): void {
    this.rounds.inc({ verdict });
  }

  /** A round that failed before a verdict. */
  failed(code: string): void {
    this.failures.inc({ code });
  }
}
