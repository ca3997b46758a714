import type { ErrorCode, ErrorDetails } from './errors.js';

/** One reason a piece of evidence was judged, with a stable machine-readable code. */
export interface Finding {
  readonly code: ErrorCode | FindingCode;
  readonly message: string;
  readonly details?: ErrorDetails;
}

/** Codes that only ever appear as findings in a verdict (never thrown). Append only. */
export const FINDING_CODES = {
  NODE_STALE: 'no valid evidence within the allowed interval',
  NODE_REBOOT_UNREPORTED: 'the TPM was reset or restarted and the agent did not report it',
  CLOCK_INFO_REGRESSED: 'resetCount/restartCount went backwards',
  EVIDENCE_INVALID: 'the evidence could not be decoded',
  AK_UNKNOWN: 'the evidence names an AK the controller did not enroll',
  PCR_CHANGED_WITHIN_BOOT: 'a boot PCR changed without a TPM reset',
  IMA_DIGEST_NOT_ALLOWED: 'an IMA entry measured a file whose path or digest the runtime policy does not allow',
  IMA_SIGNATURE_INVALID: 'an ima-sig signature does not verify against the runtime policy keys',
  IMA_REPLAY_MISMATCH: 'the IMA entries do not replay to the quoted PCR 10',
  IMA_BUF_UNEXPECTED: 'an ima-buf entry (critical data or key) the runtime policy does not expect',
  IMA_VIOLATION: 'IMA recorded a measurement violation (file open for write while measured, or vice versa)',
  IMA_LOG_DISCONTINUOUS: 'the IMA entries do not continue where the last verified round stopped',
  IMA_PCR_UNEXPECTED: 'an IMA entry extends a PCR other than the one replayed',
  IMA_TEMPLATE_HASH_MISMATCH: 'an IMA entry shows a template hash that its template data does not hash to',
  IMA_BOOT_AGGREGATE_MISMATCH: 'the boot_aggregate entry does not match the quoted PCRs 0-7 (8-9)',
  IMA_BANK_MISSING: 'the quote carries no PCR 10 value for a bank the replay needs',
  IMA_FINDINGS_CAPPED: 'more IMA findings than reported; the rest were left out',
} as const;

export type FindingCode = keyof typeof FINDING_CODES;

export type TrustState = 'unknown' | 'enrolled' | 'trusted' | 'untrusted' | 'stale';

/** The result of judging evidence: a value, not an exception. */
export type Verdict =
  | { readonly verdict: 'trusted'; readonly findings: readonly [] }
  | { readonly verdict: 'untrusted'; readonly findings: readonly Finding[] };

export function finding(code: ErrorCode | FindingCode, message: string, details?: ErrorDetails): Finding {
  return details === undefined ? { code, message } : { code, message, details };
}
