/**
 * The Nomad placement gate as a pure function: from a node's Bulwark record (or none) and its
 * Nomad node, the state Nomad must be in, and the calls that bring it there. Fail closed:
 * only a `trusted` record with a fresh verdict makes a node eligible; unknown, enrolled,
 * untrusted, stale, a verdict older than the freshness window (or from the future), a node
 * needing re-enrollment, or a conflicting mapping all make it ineligible.
 */
import type { NodeRecord } from '../attestation/index.js';

/** The dynamic node metadata keys Bulwark owns. A label for operators and constraints; eligibility is the enforcement. */
export const TRUST_META = { trusted: 'bulwark_trusted', verdictAt: 'bulwark_verdict_at' } as const;

/** Why a node is (not) trusted for placement. */
export type PlacementJudgement =
  | { readonly trusted: true; readonly verdictAt: string }
  | {
      readonly trusted: false;
      readonly reason: 'unknown-node' | 'mapping-conflict' | 'not-trusted' | 'no-verdict' | 'verdict-stale' | 'verdict-in-future' | 'requires-reenrollment';
      readonly detail: string;
    };

/** Inputs of the decision besides the record and the node: time and policy. */
export interface DecideOptions {
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** A trusted verdict older than this does not make a node eligible. */
  readonly freshnessMs: number;
  /** Allowed clock difference for a verdict time ahead of `now` (replica clocks differ a little). */
  readonly clockSkewMs?: number;
  /** Drain untrusted nodes (stop and replace their allocations), not only make them ineligible. */
  readonly drainUntrusted: boolean;
  readonly drainDeadlineMs: number;
  /**
   * A trusted node's bulwark_verdict_at label is rewritten when it is older than this (every
   * write makes the client re-register with Nomad, so not on every verdict). Default 5 min.
   */
  readonly metaRefreshMs?: number;
}

/** Judges a Bulwark record for placement. `conflict` marks a Nomad node claimed ambiguously. */
export function judgePlacement(record: NodeRecord | null, opts: DecideOptions, conflict?: string): PlacementJudgement {
  if (conflict !== undefined) return { trusted: false, reason: 'mapping-conflict', detail: conflict };
  if (record === null) return { trusted: false, reason: 'unknown-node', detail: 'no Bulwark node maps to this Nomad node' };
  if (record.requiresReenrollment) return { trusted: false, reason: 'requires-reenrollment', detail: `${record.nodeId} must be enrolled again` };
  if (record.state !== 'trusted') return { trusted: false, reason: 'not-trusted', detail: `${record.nodeId} is ${record.state}` };
  if (record.lastVerdictAt === null) return { trusted: false, reason: 'no-verdict', detail: `${record.nodeId} has no verdict time` };
  const at = Date.parse(record.lastVerdictAt);
  if (!Number.isFinite(at)) return { trusted: false, reason: 'no-verdict', detail: `${record.nodeId} has an unreadable verdict time` };
  const skew = opts.clockSkewMs ?? 5000;
  if (at > opts.now + skew) return { trusted: false, reason: 'verdict-in-future', detail: `${record.nodeId}'s verdict is dated ${at - opts.now} ms ahead` };
  const age = opts.now - at;
  if (age > opts.freshnessMs) return { trusted: false, reason: 'verdict-stale', detail: `${record.nodeId}'s last verdict is ${age} ms old (window ${opts.freshnessMs} ms)` };
  return { trusted: true, verdictAt: new Date(at).toISOString() };
}

/** The Nomad node state the gate reads. */
export interface GateNodeView {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly eligibility: 'eligible' | 'ineligible';
  readonly drain: boolean;
  /** The servers' view of the node metadata (null when not known, e.g. from a list stub). */
  readonly meta: Readonly<Record<string, string>> | null;
}

/** What Nomad must look like for one node. */
export interface DesiredNodeState {
  readonly eligible: boolean;
  /** bulwark_verdict_at is null (unset) on an untrusted node. */
  readonly meta: { readonly bulwark_trusted: 'true' | 'false'; readonly bulwark_verdict_at: string | null };
  /** Drain (stop and replace allocations) when the node still runs any. */
  readonly drain: boolean;
  readonly judgement: PlacementJudgement;
}

/** Desired state for a node from its judgement. */
export function desiredNodeState(judgement: PlacementJudgement, opts: DecideOptions): DesiredNodeState {
  if (judgement.trusted) {
    return { eligible: true, meta: { bulwark_trusted: 'true', bulwark_verdict_at: judgement.verdictAt }, drain: false, judgement };
  }
  return { eligible: false, meta: { bulwark_trusted: 'false', bulwark_verdict_at: null }, drain: opts.drainUntrusted, judgement };
}

/** One call to Nomad, in the order they must be made. */
export type NodeAction =
  | { readonly kind: 'set-ineligible' }
  | { readonly kind: 'drain'; readonly deadlineMs: number }
  | { readonly kind: 'set-eligible' }
  /** Cancels a running drain; markEligible makes the node eligible in the same call. */
  | { readonly kind: 'cancel-drain'; readonly markEligible: boolean }
  /** Dynamic node metadata: a string sets a key, null unsets it. */
  | { readonly kind: 'set-meta'; readonly meta: Readonly<Record<string, string | null>> };

/** Whether the node's trust label (as the servers see it) differs from the desired one. */
function labelDiffers(desired: DesiredNodeState, node: GateNodeView, opts: DecideOptions): boolean {
  if (node.meta === null) return true;
  if (node.meta[TRUST_META.trusted] !== desired.meta.bulwark_trusted) return true;
  const current = node.meta[TRUST_META.verdictAt];
  if (desired.meta.bulwark_verdict_at === null) return current !== undefined;
  if (current === undefined) return true;
  const labelled = Date.parse(current);
  const wanted = Date.parse(desired.meta.bulwark_verdict_at);
  return !Number.isFinite(labelled) || labelled > wanted || wanted - labelled > (opts.metaRefreshMs ?? 300_000);
}

/** Node statuses whose client answers (dynamic metadata goes to the client itself). */
function clientReachable(status: string): boolean {
  return status === 'ready' || status === 'initializing';
}

/**
 * The calls that move `node` to `desired`. Enforcement first: an untrusted node is made
 * ineligible before anything else, a trusted one gets its label before it becomes eligible.
 * `liveAllocations` is the number of allocations still on the node (needed only when an
 * ineligible, undrained node must be drained; 0 when unknown).
 */
export function planNodeActions(desired: DesiredNodeState, node: GateNodeView, opts: DecideOptions, liveAllocations = 0): NodeAction[] {
  const actions: NodeAction[] = [];
  const metaDiffers = labelDiffers(desired, node, opts);
  const setMeta: NodeAction = { kind: 'set-meta', meta: { ...desired.meta } };
  if (!desired.eligible) {
    if (node.eligibility === 'eligible') actions.push({ kind: 'set-ineligible' });
    if (desired.drain && !node.drain && (node.eligibility === 'eligible' || liveAllocations > 0)) {
      actions.push({ kind: 'drain', deadlineMs: opts.drainDeadlineMs });
    }
    if (metaDiffers && clientReachable(node.status)) actions.push(setMeta);
    return actions;
  }
  if (metaDiffers && clientReachable(node.status)) actions.push(setMeta);
  if (node.drain) actions.push({ kind: 'cancel-drain', markEligible: true });
  else if (node.eligibility === 'ineligible') actions.push({ kind: 'set-eligible' });
  return actions;
}

/** Whether planning needs the node's live allocation count (an ineligible, undrained node that should be drained). */
export function needsAllocationCount(desired: DesiredNodeState, node: GateNodeView): boolean {
  return !desired.eligible && desired.drain && !node.drain && node.eligibility === 'ineligible';
}
