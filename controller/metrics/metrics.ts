/**
 * The controller's Prometheus metrics: one prom-client Registry per Controller (tests run
 * several controllers in one process; the global default registry is never used). Counters
 * and histograms are moved by the verifier, the store and the Nomad reconciler as things
 * happen; gauges of state (nodes by trust state, leases, audit checkpoint age, Nomad lag)
 * are read from their sources at scrape time.
 *
 * Names follow the Prometheus conventions (base units, `_total` for counters,
 * `_seconds` for durations); label values are bounded sets (trust states, verdicts,
 * finding and error codes, bucket and operation names, lease names), never node ids.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KV } from 'nats';
import { TRUST_STATES, type TrustState } from '../../lib/index.js';
import { buildInfoSync } from '../../daemon/index.js';

/** Where the gauges read their values at scrape time; set once the controller's parts exist. */
export interface MetricsSources {
  /** Every node record's trust state. */
  readonly nodeStates: () => Promise<readonly TrustState[]>;
  /** The leases this replica takes part in, and whether it holds each now. */
  readonly leases: () => readonly { readonly name: string; readonly held: boolean }[];
  /** When the latest signed audit checkpoint was signed (ms) and by which replica; null when none was. */
  readonly auditCheckpoint: () => Promise<{ readonly at: number; readonly signedBy: string } | null>;
  /** The Nomad address and when the reconciler last finished a full pass there (ms, null: none yet); null without Nomad. */
  readonly nomad: { readonly address: string; readonly lastPassAt: () => number | null } | null;
}

/** Seconds between two hrtime readings. */
function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Latency buckets (seconds) for KV operations: a local JetStream answers in well under a millisecond. */
const KV_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Latency buckets (seconds) for a verdict: a quote check, an event-log replay, IMA appraisal, KV writes. */
const VERDICT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The version of this build (dist/build-info.json, else package.json beside dist/). */
export function controllerVersion(): string {
  return buildInfoSync().packageVersion;
}

/** The controller's metrics and the registry they are in. Trust: counts of what this replica saw. */
export class ControllerMetrics {
  readonly registry = new Registry();
  private processMetrics = false;
  private sources: MetricsSources | null = null;
  private readonly verdictSeconds: Histogram<'verdict'>;
  private readonly rounds: Counter<'verdict'>;
  private readonly findings: Counter<'code'>;
  private readonly noncesIssued: Counter;
  private readonly noncesConsumed: Counter<'result'>;
  private readonly kvSeconds: Histogram<'bucket' | 'operation' | 'result'>;
  private readonly nomadActions: Counter<'action' | 'result'>;
  private readonly startedAt = Date.now();

  constructor(opts: { readonly replica: string; readonly version?: string }) {
    const registers = [this.registry];
    new Gauge({ name: 'bulwark_controller_info', help: 'Build and replica of this controller (always 1).', labelNames: ['version', 'replica'], registers }).set(
      { version: opts.version ?? controllerVersion(), replica: opts.replica },
      1,
    );
    new Gauge({ name: 'bulwark_controller_start_time_seconds', help: 'When this controller started, Unix time.', registers }).set(this.startedAt / 1000);
    // The gauges below read their sources at scrape time (prom-client awaits collect).
    const sources = (): MetricsSources | null => this.sources;
    new Gauge({
      name: 'bulwark_nodes',
      help: 'Nodes by trust state (every state listed, 0 when none).',
      labelNames: ['state'],
      registers,
      async collect() {
        const states = await sources()?.nodeStates();
        for (const state of TRUST_STATES) this.set({ state }, states === undefined ? 0 : states.filter((s) => s === state).length);
      },
    });
    new Gauge({
      name: 'bulwark_lease_held',
      help: 'Whether this replica holds the lease now (1) or not (0), per lease.',
      labelNames: ['lease'],
      registers,
      collect() {
        for (const lease of sources()?.leases() ?? []) this.set({ lease: lease.name }, lease.held ? 1 : 0);
      },
    });
    new Gauge({
      name: 'bulwark_audit_checkpoint_age_seconds',
      help: 'Seconds since the latest signed audit checkpoint, with the replica that signed it (absent until one is signed).',
      // A label, so that reset() leaves no sample at all (an unlabelled gauge always shows one).
      labelNames: ['signed_by'],
      registers,
      async collect() {
        const checkpoint = await sources()?.auditCheckpoint();
        this.reset();
        if (checkpoint !== undefined && checkpoint !== null) this.set({ signed_by: checkpoint.signedBy }, Math.max(0, (Date.now() - checkpoint.at) / 1000));
      },
    });
    new Gauge({
      name: 'bulwark_nomad_reconcile_lag_seconds',
      help: 'Seconds since the Nomad reconciler last finished a full pass on this replica (absent without Nomad, or before the first pass).',
      labelNames: ['address'],
      registers,
      collect() {
        const nomad = sources()?.nomad ?? null;
        const at = nomad?.lastPassAt() ?? null;
        this.reset();
        if (nomad !== null && at !== null) this.set({ address: nomad.address }, Math.max(0, (Date.now() - at) / 1000));
      },
    });
    this.verdictSeconds = new Histogram({
      name: 'bulwark_verdict_duration_seconds',
      help: 'Time from receiving a round of evidence to its stored verdict, by verdict.',
      labelNames: ['verdict'],
      buckets: VERDICT_BUCKETS,
      registers,
    });
    this.rounds = new Counter({ name: 'bulwark_evidence_rounds_total', help: 'Rounds of evidence judged, by verdict (trusted, untrusted, refused).', labelNames: ['verdict'], registers });
    this.findings = new Counter({
      name: 'bulwark_evidence_findings_total',
      help: 'Findings held after a round that was not trusted, by finding code (one per code per round).',
      labelNames: ['code'],
      registers,
    });
    this.noncesIssued = new Counter({ name: 'bulwark_nonces_issued_total', help: 'Nonces issued (challenges).', registers });
    this.noncesConsumed = new Counter({
      name: 'bulwark_nonces_consumed_total',
      help: 'Nonces presented with evidence, by result (ok, or the finding code of a refused one).',
      labelNames: ['result'],
      registers,
    });
    this.kvSeconds = new Histogram({
      name: 'bulwark_kv_operation_duration_seconds',
      help: 'JetStream KV operation latency, by bucket, operation and result (ok, error).',
      labelNames: ['bucket', 'operation', 'result'],
      buckets: KV_BUCKETS,
      registers,
    });
    this.nomadActions = new Counter({
      name: 'bulwark_nomad_reconcile_actions_total',
      help: 'Calls the Nomad reconciler made, by action and result (ok, failed).',
      labelNames: ['action', 'result'],
      registers,
    });
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

  /** When this controller started (ms). */
  get startTime(): number {
    return this.startedAt;
  }

  /** Connects the scrape-time gauges to their sources. */
  observe(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** One round judged: its verdict, the finding codes it left the node with, how long it took. */
  round(verdict: 'trusted' | 'untrusted' | 'refused', codes: readonly string[], seconds: number): void {
    this.rounds.inc({ verdict });
    this.verdictSeconds.observe({ verdict }, seconds);
    if (verdict !== 'trusted') for (const code of new Set(codes)) this.findings.inc({ code });
  }

  nonceIssued(): void {
    this.noncesIssued.inc();
  }

  /** A nonce presented with evidence: "ok" or the code it was refused with. */
  nonceConsumed(result: string): void {
    this.noncesConsumed.inc({ result });
  }

  /** A call the Nomad reconciler made. */
  nomadAction(action: string, ok: boolean): void {
    this.nomadActions.inc({ action, result: ok ? 'ok' : 'failed' });
  }

  /**
   * Times the server operations of `kv` (get, create, update, put, delete, purge, status,
   * keys) into bulwark_kv_operation_duration_seconds under `bucket`, by wrapping those
   * methods of this one bucket view in place; returns it.
   */
  timedKv(kv: KV, bucket: string): KV {
    const histogram = this.kvSeconds;
    const timed = <T>(operation: string, work: Promise<T>): Promise<T> => {
      const start = process.hrtime.bigint();
      return work.then(
        (v) => {
          histogram.observe({ bucket, operation, result: 'ok' }, secondsSince(start));
          return v;
        },
        (err: unknown) => {
          histogram.observe({ bucket, operation, result: 'error' }, secondsSince(start));
          throw err;
        },
      );
    };
    const get = kv.get.bind(kv);
    const create = kv.create.bind(kv);
    const update = kv.update.bind(kv);
    const put = kv.put.bind(kv);
    const del = kv.delete.bind(kv);
    const purge = kv.purge.bind(kv);
    const status = kv.status.bind(kv);
    const keys = kv.keys.bind(kv);
    kv.get = (...args: Parameters<KV['get']>) => timed('get', get(...args));
    kv.create = (...args: Parameters<KV['create']>) => timed('create', create(...args));
    kv.update = (...args: Parameters<KV['update']>) => timed('update', update(...args));
    kv.put = (...args: Parameters<KV['put']>) => timed('put', put(...args));
    kv.delete = (...args: Parameters<KV['delete']>) => timed('delete', del(...args));
    kv.purge = (...args: Parameters<KV['purge']>) => timed('purge', purge(...args));
    kv.status = (...args: Parameters<KV['status']>) => timed('status', status(...args));
    kv.keys = (...args: Parameters<KV['keys']>) => timed('keys', keys(...args));
    return kv;
  }
}

/** A stopwatch for a round: call the result to read the seconds elapsed. */
export function stopwatch(): () => number {
  const start = process.hrtime.bigint();
  return () => secondsSince(start);
}
