/**
 * The Nomad placement gate. Nomad has no admission hook and makes a newly registered node
 * eligible by default, so the controller owns eligibility: while this replica holds the
 * lease it watches Nomad's Node event stream and Bulwark's trust changes, and reconciles
 * every node periodically (Nomad restarts, missed events), backing off while Nomad is down.
 * What each node must look like is decided by the pure lib/nomad/decide.ts; this class only
 * gathers inputs, serializes work per node, and makes the calls.
 */
import { Backoff, BulwarkError, toBulwarkError, type BackoffPolicy } from '../../lib/index.js';
import { errorFields, silentLogger, sleep, type Logger } from '../../daemon/index.js';
import {
  desiredNodeState,
  judgePlacement,
  needsAllocationCount,
  planNodeActions,
  type DecideOptions,
  type GateNodeView,
  type NodeAction,
  type PlacementJudgement,
} from '../../lib/nomad/index.js';
import { isLiveAllocation } from '../../lib/nomad/index.js';
import { NodeMapping, type MappedNode } from '../../lib/nomad/index.js';
import type { NomadNode, NomadNodeStub } from '../../lib/nomad/index.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import type { NomadApi } from './client.js';

/** Where the reconciler reads trust from: the controller's store, adapted by the caller. */
export interface TrustSource {
  /** Every node record now. */
  listNodes(): Promise<NodeRecord[]>;
  /** Calls `onChange` with each record as it changes; returns an unsubscribe function. */
  watch(onChange: (record: NodeRecord) => void): () => void;
}

/** The lease that makes one replica at a time act on Nomad (KvLease fits). */
export interface ReconcilerLease {
  tryAcquire(now?: number): Promise<boolean>;
  release(): Promise<void>;
}

/** Policy and timing of the gate; every duration in milliseconds. */
export interface NomadReconcilerOptions {
  /** A trusted verdict older than this does not make a node eligible (fail closed). */
  readonly freshnessMs: number;
  /** Policy: drain untrusted nodes (stop and replace their allocations), not only make them ineligible. */
  readonly drainUntrusted: boolean;
  /** Deadline after which a drain stops the remaining allocations by force. */
  readonly drainDeadlineMs: number;
  /** Period of the full reconcile and of the lease renewal (keep it under half the lease TTL). */
  readonly reconcileIntervalMs: number;
  /** Retry delays while Nomad is unreachable: full jitter under a ceiling of initial, doubling up to max. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Bulwark node id → Nomad node name or ID, for nodes whose Nomad name is not their Bulwark id. */
  readonly nodeMap?: Readonly<Record<string, string>>;
  readonly metaRefreshMs?: number;
  readonly clockSkewMs?: number;
  /** The event stream is reopened when nothing, not even a heartbeat, arrives for this long. */
  readonly streamIdleTimeoutMs?: number;
  /** Messages never carry the Nomad token. */
  readonly log?: Logger;
  /** Called after every call to Nomad the reconciler makes (tests, benchmarks, audit). */
  readonly onAction?: (action: AppliedAction) => void;
  /** Called after every full pass of the periodic loop that reached Nomad (metrics: reconcile lag). */
  readonly onPass?: (at: number) => void;
  readonly now?: () => number;
}

/** What caused a node to be looked at. */
export type ReconcileTrigger = 'event' | 'trust' | 'periodic' | 'resync';

/** One call the reconciler made to Nomad, with why and whether it worked. */
export interface AppliedAction {
  readonly nomadNodeId: string;
  readonly nomadNodeName: string;
  readonly bulwarkId: string | null;
  readonly action: NodeAction;
  readonly judgement: PlacementJudgement;
  readonly trigger: ReconcileTrigger;
  readonly at: number;
  readonly ok: boolean;
  readonly error?: string;
}

/** The outcome of one full pass: every Nomad node, whom it maps to, and how it was judged. */
export interface ReconcileReport {
  readonly nodes: readonly {
    readonly nomadNodeId: string;
    readonly nomadNodeName: string;
    readonly bulwarkId: string | null;
    readonly judgement: PlacementJudgement;
  }[];
}

/** Nodes reconciled at once in a full pass. */
const PASS_CONCURRENCY = 16;

interface NodeQueue {
  running: Promise<void> | null;
  again: boolean;
  trigger: ReconcileTrigger;
  view: GateNodeView | null;
}

/** How recent a record is: later state changes and verdicts win over older copies. */
function recordTime(r: NodeRecord): number {
  const times = [r.stateSince, r.lastVerdictAt, r.lastEvidenceAt].map((t) => (t === null ? 0 : Date.parse(t))).filter((t) => Number.isFinite(t));
  return Math.max(0, ...times);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 5000 } as const;

function isUnavailable(err: unknown): boolean {
  return err instanceof BulwarkError && err.code === 'NOMAD_UNAVAILABLE';
}

function isNotFound(err: unknown): boolean {
  return err instanceof BulwarkError && err.code === 'NOMAD_FAILED' && err.details['status'] === 404;
}

/** Keeps Nomad's scheduling eligibility (and the bulwark_* node labels) in line with Bulwark's trust. */
export class NomadReconciler {
  private readonly nomad: NomadApi;
  private readonly trust: TrustSource;
  private readonly lease: ReconcilerLease;
  private readonly opts: NomadReconcilerOptions;
  /** The explicit map from the options; records' own claims are added to it (mapping()). */
  private readonly explicitMap: Readonly<Record<string, string>>;
  private mappingCache: { readonly key: string; readonly mapping: NodeMapping } | null = null;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly records = new Map<string, NodeRecord>();
  /** The servers' view of each Nomad node; meta is kept from the last full read or event. */
  private readonly nodes = new Map<string, GateNodeView>();
  /** Labels written recently: the servers see them only after the client's next update (5-10 s). */
  private readonly metaWritten = new Map<string, { readonly meta: Readonly<Record<string, string | null>>; readonly at: number }>();
  private readonly queues = new Map<string, NodeQueue>();
  private active = false;
  private stopped = true;
  private unwatch: (() => void) | null = null;
  private streamAbort: AbortController | null = null;
  private streamDone: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private tickDone: Promise<void> | null = null;
  private readonly backoffPolicy: BackoffPolicy;
  /** Failed full passes in a row. */
  private readonly passBackoff: Backoff;
  private resyncWanted = false;

  /** Throws NOMAD_NODE_MAPPING_CONFLICT when the explicit node map maps two Bulwark nodes to one Nomad node. */
  constructor(nomad: NomadApi, trust: TrustSource, lease: ReconcilerLease, opts: NomadReconcilerOptions) {
    if (!(opts.freshnessMs > 0) || !(opts.drainDeadlineMs > 0) || !(opts.reconcileIntervalMs > 0)) {
      throw new BulwarkError('CONFIG_INVALID', 'freshnessMs, drainDeadlineMs and reconcileIntervalMs must be positive');
    }
    this.nomad = nomad;
    this.trust = trust;
    this.lease = lease;
    this.opts = opts;
    this.explicitMap = opts.nodeMap ?? {};
    NodeMapping.create(this.explicitMap);
    this.log = opts.log ?? silentLogger();
    this.now = opts.now ?? Date.now;
    const b = opts.backoff ?? DEFAULT_BACKOFF;
    this.backoffPolicy = { baseMs: b.initialMs, capMs: b.maxMs };
    this.passBackoff = new Backoff(this.backoffPolicy);
  }

  /**
   * The node mapping: the explicit map, plus the Nomad node each enrolled agent claimed.
   * A claim on a Nomad node someone else already holds maps nothing (fail closed: the
   * Nomad node stays ineligible); the registrar refuses such claims in the first place.
   */
  private get mapping(): NodeMapping {
    const claims: Record<string, string> = { ...this.explicitMap };
    const owners = new Map(Object.entries(claims).map(([b, n]) => [n, b]));
    const contested = new Set<string>();
    for (const r of [...this.records.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId))) {
      if (r.nomadNode === null || r.nomadNode === r.nodeId || claims[r.nodeId] !== undefined) continue;
      const owner = owners.get(r.nomadNode);
      if (owner !== undefined && owner !== r.nodeId) {
        contested.add(r.nomadNode);
        continue;
      }
      owners.set(r.nomadNode, r.nodeId);
      claims[r.nodeId] = r.nomadNode;
    }
    for (const [b, n] of Object.entries(claims)) if (contested.has(n) && this.explicitMap[b] === undefined) delete claims[b];
    const key = JSON.stringify(claims);
    if (this.mappingCache?.key !== key) this.mappingCache = { key, mapping: NodeMapping.create(claims) };
    return this.mappingCache.mapping;
  }

  /** Whether this replica holds the lease and acts on Nomad. */
  get isActive(): boolean {
    return this.active;
  }

  private get decide(): DecideOptions {
    return {
      now: this.now(),
      freshnessMs: this.opts.freshnessMs,
      drainUntrusted: this.opts.drainUntrusted,
      drainDeadlineMs: this.opts.drainDeadlineMs,
      ...(this.opts.metaRefreshMs === undefined ? {} : { metaRefreshMs: this.opts.metaRefreshMs }),
      ...(this.opts.clockSkewMs === undefined ? {} : { clockSkewMs: this.opts.clockSkewMs }),
    };
  }

  /** Starts the loop: the first tick (lease, then a full reconcile) runs at once. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tickDone = this.tick();
    }, delayMs);
  }

  private async tick(): Promise<void> {
    let delay: number = this.opts.reconcileIntervalMs;
    try {
      const holder = await this.lease.tryAcquire(this.now());
      if (!holder) {
        if (this.active) {
          this.log.warn({}, 'nomad reconciler lost the lease; standing by');
          await this.deactivate();
        }
      } else {
        if (!this.active) this.activate();
        await this.reconcileAll('periodic');
        this.opts.onPass?.(this.now());
        if (this.passBackoff.attempt > 0) this.log.info({ failures: this.passBackoff.attempt }, 'nomad is reachable again');
        this.passBackoff.reset();
      }
    } catch (err) {
      // Retry soon after a blip, then less and less often (keep maxMs under the lease TTL);
      // jittered, so replicas and restarts do not hit Nomad in step.
      const step = this.passBackoff.next();
      delay = step.delayMs;
      const e = toBulwarkError(err, 'INTERNAL', 'nomad reconcile failed');
      const fields = { code: e.code, error: e.message, failures: step.attempt + 1, retryInMs: step.delayMs, retryCapMs: step.ceilingMs };
      if (e.kind === 'unavailable') this.log.warn(fields, 'nomad reconcile failed; retrying');
      else this.log.error(fields, 'nomad reconcile failed; retrying');
    }
    this.schedule(delay);
  }

  private activate(): void {
    this.active = true;
    this.log.info({}, 'nomad reconciler holds the lease; gating placement');
    this.unwatch = this.trust.watch((record) => this.onTrustChange(record));
    const ctl = new AbortController();
    this.streamAbort = ctl;
    this.streamDone = this.streamLoop(ctl.signal);
  }

  private async deactivate(): Promise<void> {
    this.active = false;
    this.unwatch?.();
    this.unwatch = null;
    this.streamAbort?.abort();
    this.streamAbort = null;
    await this.streamDone;
    this.streamDone = null;
    await Promise.all([...this.queues.values()].map((q) => q.running));
    this.queues.clear();
  }

  /** Stops the loop, waits for calls in flight, and gives the lease up. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.tickDone;
    await this.deactivate();
    await this.lease.release();
  }

  /** Follows Nomad's Node events; reopens the stream with backoff, and resyncs after a gap. */
  private async streamLoop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.backoffPolicy);
    while (!signal.aborted) {
      try {
        let first = true;
        for await (const frame of this.nomad.streamEvents({ topics: ['Node'], signal, idleTimeoutMs: this.opts.streamIdleTimeoutMs ?? 35_000 })) {
          if (first) {
            first = false;
            backoff.reset();
            if (this.resyncWanted) {
              this.resyncWanted = false;
              // Events were missed while the stream was down: look at every node again.
              void this.reconcileAll('resync').catch((err: unknown) => this.log.warn(errorFields(err), 'nomad resync failed'));
            }
          }
          if (frame.kind !== 'events') continue;
          for (const e of frame.events) if (e.node !== null) this.onNodeEvent(e.node);
        }
      } catch (err) {
        if (!signal.aborted) this.log.warn({ ...errorFields(err), failures: backoff.attempt + 1 }, 'nomad event stream failed; reconnecting');
      }
      if (signal.aborted) break;
      this.resyncWanted = true;
      // A stream that ended without an error waits like a failed one.
      await sleep(backoff.next().delayMs, signal);
    }
  }

  private static view(node: NomadNode | NomadNodeStub, meta: Readonly<Record<string, string>> | null): GateNodeView {
    return { id: node.id, name: node.name, status: node.status, eligibility: node.eligibility, drain: node.drain, meta };
  }

  private onNodeEvent(node: NomadNode): void {
    const view = NomadReconciler.view(node, node.meta);
    this.nodes.set(node.id, view);
    this.enqueue(node.id, 'event', view);
  }

  private onTrustChange(record: NodeRecord): void {
    const known = this.records.get(record.nodeId);
    if (known !== undefined && recordTime(known) > recordTime(record)) return;
    this.records.set(record.nodeId, record);
    let matched = false;
    for (const node of this.nodes.values()) {
      if (!this.mapping.couldBe(record.nodeId, node, new Set(this.records.keys()))) continue;
      matched = true;
      this.enqueue(node.id, 'trust', null);
    }
    // A node Nomad has not shown us yet is handled by the next event or full pass.
    if (!matched) this.log.info({ node: record.nodeId, state: record.state }, 'trust changed for a node not (yet) in Nomad');
  }

  /** Runs the node's reconcile, coalescing triggers that arrive while one runs. */
  private enqueue(nomadNodeId: string, trigger: ReconcileTrigger, view: GateNodeView | null): Promise<void> {
    const q = this.queues.get(nomadNodeId) ?? { running: null, again: false, trigger, view: null };
    this.queues.set(nomadNodeId, q);
    q.view = view;
    q.trigger = trigger;
    if (q.running !== null) {
      q.again = true;
      return q.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          q.again = false;
          const v = q.view;
          q.view = null;
          try {
            await this.reconcileNode(nomadNodeId, q.trigger, v);
          } catch (err) {
            // The periodic pass (with backoff) retries; an event-driven failure is only logged.
            this.log.warn({ nomadNodeId, ...errorFields(err) }, 'nomad node reconcile failed');
          }
        } while (q.again && this.active);
      } finally {
        q.running = null;
      }
    };
    q.running = run();
    return q.running;
  }

  /** The Bulwark id a Nomad node maps to, resolving over every node known (conflicts need all of them). */
  private mapped(nomadNodeId: string): MappedNode {
    return this.mapping.resolve([...this.nodes.values()], new Set(this.records.keys())).get(nomadNodeId) ?? { bulwarkId: null, conflict: null };
  }

  private judge(mapped: MappedNode): PlacementJudgement {
    if (mapped.bulwarkId === null) return judgePlacement(null, this.decide, mapped.conflict ?? undefined);
    return judgePlacement(this.records.get(mapped.bulwarkId) ?? null, this.decide);
  }

  /** One node: decide, plan, act. `view` is the node as an event showed it; otherwise it is read. */
  private async reconcileNode(nomadNodeId: string, trigger: ReconcileTrigger, view: GateNodeView | null): Promise<readonly NodeAction[]> {
    if (!this.active) return [];
    let node = view;
    if (node === null || node.meta === null) {
      try {
        const full = await this.nomad.readNode(nomadNodeId);
        node = NomadReconciler.view(full, full.meta);
      } catch (err) {
        if (isNotFound(err)) {
          this.nodes.delete(nomadNodeId);
          return [];
        }
        throw err;
      }
      this.nodes.set(nomadNodeId, node);
    }
    const mapped = this.mapped(nomadNodeId);
    const judgement = this.judge(mapped);
    const decide = this.decide;
    const desired = desiredNodeState(judgement, decide);
    let live = 0;
    if (needsAllocationCount(desired, node)) live = (await this.nomad.nodeAllocations(nomadNodeId)).filter(isLiveAllocation).length;
    const planned = planNodeActions(desired, this.withWrittenMeta(node), decide, live);
    for (const action of planned) await this.apply(node, mapped.bulwarkId, judgement, action, trigger);
    return planned;
  }

  /**
   * The node as it will be once the labels written recently reach the servers: Nomad batches
   * the client's node update 5-10 s after a write, so until then the servers' meta is older
   * than what the client has. 20 s covers the batching with margin; after that the servers'
   * view counts again (a label lost with a client restart is written again).
   */
  private withWrittenMeta(node: GateNodeView): GateNodeView {
    const w = this.metaWritten.get(node.id);
    if (w === undefined || this.now() - w.at >= 20_000) return node;
    const meta: Record<string, string> = { ...(node.meta ?? {}) };
    for (const [k, v] of Object.entries(w.meta)) {
      if (v === null) delete meta[k];
      else meta[k] = v;
    }
    return { ...node, meta };
  }

  private async apply(node: GateNodeView, bulwarkId: string | null, judgement: PlacementJudgement, action: NodeAction, trigger: ReconcileTrigger): Promise<void> {
    const report = (ok: boolean, error?: string): void => {
      const applied: AppliedAction = {
        nomadNodeId: node.id,
        nomadNodeName: node.name,
        bulwarkId,
        action,
        judgement,
        trigger,
        at: this.now(),
        ok,
        ...(error === undefined ? {} : { error }),
      };
      this.opts.onAction?.(applied);
      const reason = judgement.trusted ? 'trusted' : `${judgement.reason}: ${judgement.detail}`;
      const fields = { nomadNode: node.name, nomadNodeId: node.id, node: bulwarkId, reason, trigger, ...(error === undefined ? {} : { error }) };
      if (ok) this.log.info(fields, `nomad ${action.kind}`);
      else this.log.warn(fields, `nomad ${action.kind} failed`);
    };
    try {
      switch (action.kind) {
        case 'set-ineligible':
          await this.nomad.setEligibility(node.id, false);
          break;
        case 'set-eligible':
          await this.nomad.setEligibility(node.id, true);
          break;
        case 'drain':
          await this.nomad.drainNode(node.id, { deadlineMs: action.deadlineMs, meta: { bulwark: judgement.trusted ? 'trusted' : judgement.reason } });
          break;
        case 'cancel-drain':
          await this.nomad.cancelDrain(node.id, { markEligible: action.markEligible });
          break;
        case 'set-meta':
          await this.nomad.applyNodeMeta(node.id, action.meta);
          this.metaWritten.set(node.id, { meta: action.meta, at: this.now() });
          break;
      }
      report(true);
    } catch (err) {
      report(false, errorText(err));
      // The label is not the enforcement: a client that cannot take its metadata right now
      // does not stop the other calls; everything else fails the node's pass.
      if (action.kind === 'set-meta' && !isUnavailable(err)) return;
      throw err;
    }
  }

  /**
   * One full pass: reads every trust record and every Nomad node and reconciles each (in
   * parallel, each node's calls in order). Throws when Nomad or the trust source is
   * unreachable, so the loop backs off. Public for tests and the controller's status.
   */
  async reconcileAll(trigger: ReconcileTrigger = 'periodic'): Promise<ReconcileReport> {
    const records = await this.trust.listNodes();
    const seen = new Set<string>();
    for (const r of records) {
      seen.add(r.nodeId);
      const known = this.records.get(r.nodeId);
      if (known === undefined || recordTime(r) >= recordTime(known)) this.records.set(r.nodeId, r);
    }
    // A record deleted from the store makes its node unknown (ineligible).
    for (const id of [...this.records.keys()]) if (!seen.has(id)) this.records.delete(id);
    const stubs = await this.nomad.listNodes();
    const present = new Set(stubs.map((s) => s.id));
    for (const id of [...this.nodes.keys()]) if (!present.has(id)) this.nodes.delete(id);
    for (const s of stubs) this.nodes.set(s.id, NomadReconciler.view(s, this.nodes.get(s.id)?.meta ?? null));
    // Per-node failures are logged by the queue and retried by the next pass. At most
    // PASS_CONCURRENCY nodes at a time, so a large fleet does not flood Nomad's API.
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < stubs.length; i = next++) {
        const s = stubs[i];
        if (s !== undefined) await this.enqueue(s.id, trigger, this.nodes.get(s.id) ?? null);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PASS_CONCURRENCY, stubs.length) }, worker));
    return {
      nodes: stubs.map((s) => {
        const mapped = this.mapped(s.id);
        return { nomadNodeId: s.id, nomadNodeName: s.name, bulwarkId: mapped.bulwarkId, judgement: this.judge(mapped) };
      }),
    };
  }
}
