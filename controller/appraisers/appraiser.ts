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
import type { Finding } from '../../lib/index.js';
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
export type ReplyPatch = Partial<Pick<EvidenceReplyMsg, 'eventLogSha256' | 'imaEntry' | 'imaOffset'>>;

export interface AppraisalResult {
  readonly findings: readonly Finding[];
  /** A finding the next good round must not clear (needs an approved re-enrollment). */
  readonly sticky?: boolean;
  readonly reply?: ReplyPatch;
  /** Persists the appraiser's state for this node; called once, before the verdict is stored. */
  readonly commit?: () => Promise<void>;
}

export interface Appraiser {
  readonly name: string;
  appraise(ctx: AppraisalContext): Promise<AppraisalResult>;
  /** Forgets a node's state (at enrollment: a new AK starts from nothing). */
  reset?(nodeId: string): Promise<void>;
}

/** The inputs of an appraisal that come from the quote's judgement, when it verified. */
export function appraisalInputs(j: Judgement): { quoted: QuotedPcrs; clockInfo: ClockInfo; newBoot: boolean } | null {
  return j.pcrs === null || j.clockInfo === null ? null : { quoted: j.pcrs, clockInfo: j.clockInfo, newBoot: j.newBoot };
}
