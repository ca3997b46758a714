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
