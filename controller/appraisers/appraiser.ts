/**
 * Appraisers judge the parts of a round beyond the quote (the UEFI event log, the IMA
 * measurement list, baselines). The verifier calls each one only after the quote itself
 * verified, hands it the PCRs the quote proved, and stores what it found. An appraiser
 * keeps its own per-node state (in its own KV bucket) and writes it in `commit`, which
 * runs before the node's new verdict is stored.
 */
import type { Judgement } from '../../lib/attestation/index.js';
import type { NodeRecord } from '../../lib/attestation/index.js';
import type { ClockInfo, QuotedPcrs } from '../../lib/tpm/index.js';
import { BulwarkError, finding, type Finding } from '../../lib/index.js';
import { corruptPath } from '../../lib/attestation/index.js';
import type { PolicyKind, PolicyStore, StoredPolicy } from '../policies/index.js';
import type { Logger } from '../../daemon/index.js';
import type { EvidenceMsg, EvidenceReplyMsg } from '../../proto/index.js';

/** Everything an appraiser may look at in one round. */
export interface AppraisalContext {
  readonly record: NodeRecord;
  readonly evidence: EvidenceMsg;
  /** PCR values proven by the verified quote. */
  readonly quoted: QuotedPcrs;
  readonly clockInfo: ClockInfo;
  /** True for the first round of a boot (after enrollment or a reported reset). */
  readonly newBoot: boolean;
  readonly now: number;
}

/** What parts of the reply an appraiser fills in, so the agent knows what to send next. */
export type ReplyPatch = Partial<Pick<EvidenceReplyMsg, 'eventLogSha256' | 'imaEntry' | 'imaOffset' | 'baselineReports' | 'baselineSha256' | 'baseline' | 'baselineKeysets'>>;

export interface AppraisalResult {
  readonly findings: readonly Finding[];
  /** A finding the next good round must not clear (needs an approved re-enrollment). */
  readonly sticky?: boolean;
  readonly reply?: ReplyPatch;
  /** Persists the appraiser's state for this node; called once, before the verdict is stored. */
  readonly commit?: () => Promise<void>;
  /** Non-failing notes the verdict carries (an accept-all policy in force). */
  readonly notes?: readonly string[];
}

export interface Appraiser {
  readonly name: string;
  appraise(ctx: AppraisalContext): Promise<AppraisalResult>;
  /** Forgets a node's state (at enrollment: a new AK starts from nothing). */
  reset?(nodeId: string): Promise<void>;
  /** The policy kind whose changes make this appraiser judge again what it kept (see `rejudge`). */
  readonly rejudgeKind?: string;
  /** The finding codes `rejudge` gives: a re-judging replaces the node's findings with these codes. */
  readonly rejudgedCodes?: ReadonlySet<string>;
  /**
   * Judges again, under the policy that applies now, what the appraiser kept of a node's
   * verified evidence (without a new round): the findings that replace those with
   * `rejudgedCodes`, or null when nothing changed.
   */
  rejudge?(record: NodeRecord): Promise<readonly Finding[] | null>;
}

/** The inputs of an appraisal that come from the quote's judgement, when it verified. */
export function appraisalInputs(j: Judgement): { quoted: QuotedPcrs; clockInfo: ClockInfo; newBoot: boolean } | null {
  return j.pcrs === null || j.clockInfo === null ? null : { quoted: j.pcrs, clockInfo: j.clockInfo, newBoot: j.newBoot };
}

/**
 * The policy that applies to a node, or the finding that says why none can be read: a
 * stored policy that does not decode (STATE_CORRUPT) or no longer passes its kind's
 * checks fails this node's round closed, with a warn line, instead of throwing out of
 * the round. A dependency failure (NATS) still throws.
 */
export async function resolvePolicy<T>(
  policies: PolicyStore,
  kind: PolicyKind<T>,
  nodeId: string,
  log: Logger,
): Promise<{ readonly policy: StoredPolicy<T> | null; readonly findings: readonly Finding[] }> {
  try {
    return { policy: await policies.resolve(kind, nodeId), findings: [] };
  } catch (err) {
    // Malformed or refused-as-usage: the stored policy, its assignment or its document does not check out.
    if (!(err instanceof BulwarkError) || (err.kind !== 'malformed' && err.kind !== 'usage')) throw err;
    const path = corruptPath(err);
    log.warn({ node: nodeId, path, code: err.code, error: err.message }, `stored ${kind.kind} policy does not decode: the node's round is untrusted`);
    const code = err.code === 'STORE_CORRUPT' ? 'STATE_CORRUPT' : err.code;
    return { policy: null, findings: [finding(code, `the ${kind.kind} policy assigned to this node cannot be read: ${err.message}`, { path })] };
  }
}
