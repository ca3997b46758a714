/**
 * The verifier: issues single-use nonces, judges every round of evidence, keeps each
 * node's state durably, and marks silent nodes stale. Any number of replicas run it side
 * by side; NATS queue groups split the evidence between them and KV revision checks keep
 * their writes consistent.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { fromHex, toHex, TokenBuckets } from '../../lib/index.js';
import { BulwarkError, isBulwarkError } from '../../lib/index.js';
import { factsDigest, validateHostFacts } from '../../lib/facts/index.js';
import { judgeEvidence, type Judgement } from '../../lib/attestation/index.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import { decodeTpmtPublic, tpmtPublicToKeyObject } from '../../lib/tpm/index.js';
import { parsePcrSelectionSpec } from '../../lib/tpm/index.js';
import type { PcrSelection } from '../../lib/tpm/index.js';
import { finding, type Finding } from '../../lib/index.js';
import { EMPTY_REPLY_STATE, findingToMsg, type ChallengeMsg, type EvidenceMsg, type EvidenceReplyMsg, type TrustEventMsg } from '../../proto/index.js';
import { appraisalInputs, type Appraiser, type ReplyPatch } from '../appraisers/index.js';
import type { ControllerStore } from '../state/index.js';
import type { TrustEvents } from '../state/index.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { stopwatch, type ControllerMetrics } from '../metrics/index.js';

export interface VerifierOptions {
  /** PCR selection every quote must cover, e.g. "sha256:0,1,2,3,4,5,6,7,10". */
  readonly pcrSelection: string;
  readonly nonceTtlMs: number;
  /** A node with no evidence for this long is stale (and so untrusted). */
  readonly staleAfterMs: number;
  /** Trust transitions are logged here (info, "trust transition"); none given: not logged. */
  readonly log?: Logger;
  /** Most unused, unexpired nonces per node issued by this replica; another evicts the oldest (deleted from KV). None: 8. */
  readonly maxOutstandingNonces?: number;
  /** Nonce requests per node (token bucket) on the request subject; none: not limited. */
  readonly nonceRequestRate?: { readonly ratePerSecond: number; readonly burst: number };
  /** Rounds, verdict latency, findings and nonces are counted here; none: not counted. */
  readonly metrics?: Pick<ControllerMetrics, 'round' | 'nonceIssued' | 'nonceConsumed'>;
}

/** Default of maxOutstandingNonces. */
const DEFAULT_MAX_OUTSTANDING_NONCES = 8;

/** What one round did to a node. */
interface RoundOutcome {
  readonly findings: readonly Finding[];
  readonly judgement: Judgement | null;
  readonly sticky: boolean;
  readonly reply: ReplyPatch;
  /** Non-failing notes from the appraisers (an accept-all policy in force). */
  readonly notes: readonly string[];
}

const EMPTY_REPLY = EMPTY_REPLY_STATE;

function refused(code: 'NODE_NOT_ENROLLED', message: string): EvidenceReplyMsg {
  return { verdict: 'refused', findings: [findingToMsg(finding(code, message))], ...EMPTY_REPLY };
}

export class Verifier {
  private readonly store: ControllerStore;
  private readonly events: TrustEvents;
  private readonly opts: VerifierOptions;
  private readonly selection: readonly PcrSelection[];
  /** AK key objects by AK public hex: parsing a key costs as much as a verification. */
  private readonly akKeys = new Map<string, KeyObject>();
  private readonly appraisers: readonly Appraiser[];
  private readonly log: Logger;
  /** Nonces this replica issued and has not seen used, per node, oldest first. */
  private readonly outstanding = new Map<string, Array<{ readonly nonceHex: string; readonly issuedAt: number }>>();
  /** The tail of each node's queue of nonce issues (see oneAtATime). */
  private readonly issuing = new Map<string, Promise<void>>();
  private readonly nonceLimit: TokenBuckets | null;
  /** Nonce requests refused by the rate limit, and nonces evicted by the outstanding cap, since start. */
  readonly counters = { nonceRequestsRefused: 0, noncesEvicted: 0 };

  constructor(store: ControllerStore, events: TrustEvents, opts: VerifierOptions, appraisers: readonly Appraiser[] = []) {
    this.log = opts.log ?? silentLogger();
    this.nonceLimit = opts.nonceRequestRate === undefined ? null : new TokenBuckets({ ...opts.nonceRequestRate, maxKeys: 100_000 });
    this.store = store;
    this.events = events;
    this.opts = opts;
    this.appraisers = appraisers;
    this.selection = parsePcrSelectionSpec(opts.pcrSelection);
  }

  /** A fresh nonce for an enrolled node, recorded so it can be used once. */
  async issueChallenge(nodeId: string, now = Date.now()): Promise<ChallengeMsg> {
    const node = await this.store.getNode(nodeId);
    if (node === null) throw new BulwarkError('NODE_NOT_ENROLLED', `node ${nodeId} is not enrolled`);
    if (node.corrupt !== null) throw node.corrupt;
    const nonce = randomBytes(32);
    const nonceHex = toHex(nonce);
    // One node's nonces are issued one after another: concurrent requests would all pass the
    // cap before any of them is counted, and an evicted nonce could be deleted before it is written.
    await this.oneAtATime(nodeId, async () => {
      await this.evictOutstanding(nodeId, now);
      await this.store.issueNonce(nonceHex, nodeId, now);
      const list = this.outstanding.get(nodeId) ?? [];
      list.push({ nonceHex, issuedAt: now });
      this.outstanding.set(nodeId, list);
    });
    this.opts.metrics?.nonceIssued();
    return { nodeId, nonce, pcrSelection: this.opts.pcrSelection };
  }

  /** Runs `work` after every earlier call for the same node has finished (a per-node queue). */
  private async oneAtATime(nodeId: string, work: () => Promise<void>): Promise<void> {
    const before = this.issuing.get(nodeId) ?? Promise.resolve();
    const mine = before.then(work, work);
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.issuing.set(nodeId, settled);
    try {
      await mine;
    } finally {
      if (this.issuing.get(nodeId) === settled) this.issuing.delete(nodeId);
    }
  }

  /**
   * A nonce a node asked for (the request subject): rate-limited per node (RATE_LIMITED),
   * so a flood of requests costs neither KV writes nor quotes.
   */
  async requestChallenge(nodeId: string, now = Date.now()): Promise<ChallengeMsg> {
    if (this.nonceLimit !== null && !this.nonceLimit.take(nodeId, now)) {
      this.counters.nonceRequestsRefused++;
      if (this.counters.nonceRequestsRefused % 100 === 1) this.log.warn({ node: nodeId, refused: this.counters.nonceRequestsRefused }, 'nonce request refused: rate limit');
      throw new BulwarkError('RATE_LIMITED', `too many nonce requests for node ${nodeId}; try again later`, { nodeId });
    }
    return this.issueChallenge(nodeId, now);
  }

  /**
   * Keeps a node's outstanding nonces under the cap: ones older than twice the TTL (which
   * no evidence can use) are forgotten and deleted, and at the cap the oldest is evicted.
   */
  private async evictOutstanding(nodeId: string, now: number): Promise<void> {
    const list = this.outstanding.get(nodeId);
    if (list === undefined) {
      if (this.outstanding.size > 100_000) this.outstanding.clear();
      return;
    }
    const cap = this.opts.maxOutstandingNonces ?? DEFAULT_MAX_OUTSTANDING_NONCES;
    while (list.length > 0) {
      const oldest = list[0];
      if (oldest === undefined) break;
      const expired = now - oldest.issuedAt > 2 * this.opts.nonceTtlMs;
      if (!expired && list.length < cap) break;
      list.shift();
      if (!expired) this.counters.noncesEvicted++;
      await this.store.deleteNonce(oldest.nonceHex);
    }
  }

  /** Nonces outstanding for a node on this replica (tests and metrics). */
  outstandingNonces(nodeId: string): number {
    return this.outstanding.get(nodeId)?.length ?? 0;
  }

  private akKey(record: NodeRecord): KeyObject {
    let key = this.akKeys.get(record.akPublic);
    if (key === undefined) {
      key = tpmtPublicToKeyObject(decodeTpmtPublic(fromHex(record.akPublic)));
      if (this.akKeys.size > 100_000) this.akKeys.clear();
      this.akKeys.set(record.akPublic, key);
    }
    return key;
  }

  /** Judges one round of evidence and stores the node's new state. */
  async handleEvidence(ev: EvidenceMsg, now = Date.now()): Promise<EvidenceReplyMsg> {
    const elapsed = stopwatch();
    const reply = await this.judgeRound(ev, now);
    this.opts.metrics?.round(reply.verdict === 'trusted' || reply.verdict === 'untrusted' ? reply.verdict : 'refused', reply.findings.map((f) => f.code), elapsed());
    return reply;
  }

  private async judgeRound(ev: EvidenceMsg, now: number): Promise<EvidenceReplyMsg> {
    const stored = await this.store.getNode(ev.nodeId);
    if (stored === null) return refused('NODE_NOT_ENROLLED', `node ${ev.nodeId} is not enrolled`);
    // Fail closed: a node whose record does not decode has no AK to verify against and no
    // sticky state to honour. It stays untrusted (STATE_CORRUPT) and its record is left
    // as it is, round after round, until an operator approves it and it enrolls again.
    if (stored.corrupt !== null) return { verdict: 'untrusted', findings: stored.record.reasons.map(findingToMsg), ...EMPTY_REPLY };
    const outcome = await this.judge(stored.record, ev, now);
    const at = new Date(now).toISOString();
    const seen: { previous: NodeRecord | null; applied: boolean } = { previous: null, applied: false };
    const next = await this.store.updateNode(ev.nodeId, (current) => {
      seen.previous = current;
      // Re-enrolled (or removed) meanwhile: this round judged the old AK. updateNode then
      // returns the record as it is, so whether the round was applied is tracked here.
      seen.applied = current !== null && current.akPublic === stored.record.akPublic;
      return current === null || !seen.applied ? null : applyRound(current, outcome, ev, at);
    });
    const log = this.log.child({ node: ev.nodeId });
    if (next === null || !seen.applied) {
      log.info({}, 'evidence refused: the node was re-enrolled during this round');
      return refused('NODE_NOT_ENROLLED', `node ${ev.nodeId} was re-enrolled during this round`);
    }
    const codes = next.reasons.map((r) => r.code);
    log.debug({ round: ev.round, state: next.state, codes }, 'evidence judged');
    logTransition(log, await this.events.transition(seen.previous, next, now), 'evidence');
    return { verdict: next.state === 'trusted' ? 'trusted' : 'untrusted', findings: next.reasons.map(findingToMsg), ...EMPTY_REPLY, ...outcome.reply };
  }

  private async judge(record: NodeRecord, ev: EvidenceMsg, now: number): Promise<RoundOutcome> {
    const nonceHex = toHex(ev.nonce);
    const nonce = await this.store.consumeNonce(nonceHex, ev.nodeId, now, this.opts.nonceTtlMs);
    const list = this.outstanding.get(ev.nodeId);
    const at = list?.findIndex((n) => n.nonceHex === nonceHex) ?? -1;
    if (list !== undefined && at >= 0) list.splice(at, 1);
    this.opts.metrics?.nonceConsumed(nonce.ok ? 'ok' : nonce.code);
    if (!nonce.ok) return { findings: [finding(nonce.code, nonce.message)], judgement: null, sticky: false, reply: {}, notes: [] };
    let ak: KeyObject;
    try {
      ak = this.akKey(record);
    } catch (err) {
      if (isBulwarkError(err)) return { findings: [finding(err.code, `the enrolled AK cannot be used: ${err.message}`)], judgement: null, sticky: false, reply: {}, notes: [] };
      throw err;
    }
    const judgement = judgeEvidence({
      ak,
      state: record.attestation,
      evidence: { nonce: ev.nonce, attest: ev.attest, signature: ev.signature, pcrs: ev.pcrs, bootId: ev.bootId },
      expectedSelection: this.selection,
    });
    const inputs = appraisalInputs(judgement);
    if (inputs === null) return { findings: judgement.verdict.findings, judgement, sticky: judgement.sticky, reply: {}, notes: [] };
    // Only a verified quote reaches the appraisers; each judges its part against the proven PCRs.
    const findings: Finding[] = [...judgement.verdict.findings];
    let sticky = judgement.sticky;
    let reply: ReplyPatch = {};
    const commits: Array<() => Promise<void>> = [];
    const notes: string[] = [];
    for (const appraiser of this.appraisers) {
      const result = await appraiser.appraise({ record, evidence: ev, ...inputs, now });
      findings.push(...result.findings);
      notes.push(...(result.notes ?? []));
      sticky ||= result.sticky ?? false;
      reply = { ...reply, ...result.reply };
      if (result.commit !== undefined) commits.push(result.commit);
    }
    for (const commit of commits) await commit();
    return { findings, judgement, sticky, reply, notes };
  }

  /**
   * Judges the trusted and untrusted nodes again after a policy of `kind` was pushed or
   * assigned, without waiting for their next round: every appraiser that re-judges that
   * kind replaces its findings with what the policy in force now says of the evidence it
   * kept. A node whose re-judging fails keeps its verdict (logged); the rest go on.
   * Returns the ids of the nodes whose verdict changed.
   */
  async rejudgePolicyKind(kind: string, now = Date.now()): Promise<string[]> {
    const appraisers = this.appraisers.filter((a) => a.rejudgeKind === kind && a.rejudge !== undefined);
    if (appraisers.length === 0) return [];
    const changed: string[] = [];
    for (const record of await this.store.listNodes()) {
      if (record.state !== 'trusted' && record.state !== 'untrusted') continue;
      try {
        if (await this.rejudgeNode(record, appraisers, now)) changed.push(record.nodeId);
      } catch (err) {
        this.log.warn({ node: record.nodeId, error: err instanceof Error ? err.message : String(err) }, `re-judging under the changed ${kind} policy failed; the verdict stands`);
      }
    }
    return changed;
  }

  private async rejudgeNode(record: NodeRecord, appraisers: readonly Appraiser[], now: number): Promise<boolean> {
    const replacements: Array<{ readonly codes: ReadonlySet<string>; readonly findings: readonly Finding[] }> = [];
    for (const a of appraisers) {
      const findings = await a.rejudge?.(record);
      if (findings !== undefined && findings !== null) replacements.push({ codes: a.rejudgedCodes ?? new Set(), findings });
    }
    if (replacements.length === 0) return false;
    const at = new Date(now).toISOString();
    const seen: { previous: NodeRecord | null } = { previous: null };
    const next = await this.store.updateNode(record.nodeId, (current) => {
      seen.previous = current;
      if (current === null || current.akPublic !== record.akPublic || (current.state !== 'trusted' && current.state !== 'untrusted')) return null;
      let reasons: Finding[] = [...current.reasons];
      for (const r of replacements) {
        // Sticky findings stay until an approved re-enrollment: a re-judging only adds to them.
        if (!current.requiresReenrollment) reasons = reasons.filter((x) => !r.codes.has(x.code));
        for (const f of r.findings) if (!reasons.some((x) => x.code === f.code && x.message === f.message)) reasons.push(f);
      }
      const state = reasons.length === 0 ? 'trusted' : 'untrusted';
      return { ...current, state, reasons, stateSince: state === current.state ? current.stateSince : at, lastVerdictAt: at };
    });
    if (next === null || seen.previous === null) return false;
    const event = await this.events.transition(seen.previous, next, now);
    logTransition(this.log.child({ node: record.nodeId }), event, 'policy');
    return event !== null;
  }

  /** Forgets every appraiser's state of a node (a new enrollment starts from nothing). */
  async resetAppraisers(nodeId: string): Promise<void> {
    for (const a of this.appraisers) await a.reset?.(nodeId);
  }

  /**
   * Marks trusted or enrolled nodes without evidence for `staleAfterMs` as stale. A node
   * whose update fails does not stop the sweep: the rest are swept, and each failure goes
   * to `onError` (without one, the first failure is thrown once the sweep is done).
   */
  async sweepStale(now = Date.now(), onError?: (nodeId: string, err: unknown) => void): Promise<string[]> {
    const changed: string[] = [];
    const failures: unknown[] = [];
    for (const record of await this.store.listNodes()) {
      if (record.state !== 'trusted' && record.state !== 'enrolled') continue;
      const last = Date.parse(record.lastEvidenceAt ?? record.enrolledAt);
      if (!(now - last > this.opts.staleAfterMs)) continue;
      try {
        if (await this.markStale(record.nodeId, now)) changed.push(record.nodeId);
      } catch (err) {
        if (onError === undefined) failures.push(err);
        else onError(record.nodeId, err);
      }
    }
    if (failures.length > 0) throw failures[0];
    return changed;
  }

  /** Marks one node stale if it still has no fresh evidence; true when it changed. */
  private async markStale(nodeId: string, now: number): Promise<boolean> {
    const seen: { previous: NodeRecord | null } = { previous: null };
    const next = await this.store.updateNode(nodeId, (current) => {
      seen.previous = current;
      if (current === null || (current.state !== 'trusted' && current.state !== 'enrolled')) return null;
      const currentLast = Date.parse(current.lastEvidenceAt ?? current.enrolledAt);
      if (!(now - currentLast > this.opts.staleAfterMs)) return null;
      return {
        ...current,
        state: 'stale',
        stateSince: new Date(now).toISOString(),
        reasons: [finding('NODE_STALE', `no evidence for ${now - currentLast} ms (allowed ${this.opts.staleAfterMs} ms)`, { lastEvidenceAt: current.lastEvidenceAt ?? '' })],
      };
    });
    if (next === null || next.state !== 'stale' || seen.previous === null || seen.previous.state === 'stale') return false;
    logTransition(this.log.child({ node: nodeId }), await this.events.transition(seen.previous, next, now), 'stale');
    return true;
  }
}

/**
 * One info line per trust transition, the same for every cause, so a SIEM can match it:
 * msg "trust transition", `node`, `from`, `to`, `codes` (the findings now held), the audit
 * `sequence` and `cause`. No line when nothing changed (no event).
 */
function logTransition(log: Logger, event: TrustEventMsg | null, cause: 'evidence' | 'stale' | 'policy'): void {
  if (event === null) return;
  log.info({ from: event.previous, to: event.state, codes: event.reasons.map((r) => r.code), sequence: event.sequence, cause }, 'trust transition');
}

/** The node after one round: sticky findings stay until an operator-approved re-enrollment. */
function applyRound(current: NodeRecord, outcome: RoundOutcome, ev: EvidenceMsg, at: string): NodeRecord {
  const judgement = outcome.judgement;
  const sticky = current.requiresReenrollment || outcome.sticky;
  const reasons: Finding[] = [...outcome.findings];
  if (current.requiresReenrollment) {
    for (const r of current.reasons) if (!reasons.some((x) => x.code === r.code)) reasons.push(r);
  }
  const state = reasons.length === 0 ? 'trusted' : 'untrusted';
  let facts = current.facts;
  let digest = current.factsDigest;
  if (ev.facts !== null && judgement !== null && judgement.pcrs !== null) {
    facts = validateHostFacts(ev.facts);
    digest = factsDigest(facts);
  }
  return {
    ...current,
    state,
    reasons,
    stateSince: state === current.state ? current.stateSince : at,
    lastEvidenceAt: at,
    lastVerdictAt: at,
    attestation: judgement?.next ?? current.attestation,
    requiresReenrollment: sticky,
    facts,
    factsDigest: digest,
    notes: [...outcome.notes],
  };
}
