import { ERROR_CODES, type ErrorCode, type ErrorDetails } from './errors.js';

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
  PCR_CHANGED_WITHIN_BOOT: 'a boot PCR changed without a TPM reset',
  IMA_LOG_INCOMPLETE: 'the IMA entries sent so far do not reach the quoted PCR 10 and more are to come',
  IMA_LOG_MISSING: 'a runtime policy applies but the host sent no IMA measurement list',
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
  EVENTLOG_REPLAY_MISMATCH: 'a PCR replayed from the event log differs from the quoted value',
  EVENTLOG_MISSING: 'a measured-boot policy applies but the controller holds no event log for this boot',
  EVENTLOG_DIGEST_MISMATCH: 'the event log does not hash to the digest the agent sent with it',
  EVENTLOG_BANK_MISSING: 'the quote covers a PCR bank the event log carries no digests for',
  EVENTLOG_PCR_NOT_QUOTED: 'the measured-boot policy needs a PCR (or bank) the quote does not prove',
  EVENTLOG_EVENT_DATA_MISMATCH: "an event's digest is not the hash of its data, so its type or data is not evidence",
  BOOT_COMPONENT_NOT_ALLOWED: 'a measured boot component (firmware, shim, GRUB, kernel, initrd, GRUB file) is not in the policy',
  BOOT_COMPONENT_MISSING: 'a boot stage the policy requires was not measured',
  SECURE_BOOT_DISABLED: 'Secure Boot was off while the policy requires it on',
  SECURE_BOOT_STATE_INVALID: 'the Secure Boot measurements in PCR 7 are inconsistent or not what the policy requires',
  SECURE_BOOT_KEY_NOT_ALLOWED: 'PK, KEK or db holds an entry the policy does not allow',
  SECURE_BOOT_AUTHORITY_NOT_ALLOWED: 'a boot application was verified by an authority the policy does not allow',
  DBX_ENTRY_MISSING: 'dbx lacks a revocation the policy requires',
  KERNEL_CMDLINE_NOT_ALLOWED: 'the kernel command line does not match the policy, or was not measured',
  POLICY_MISSING: 'no measured-boot policy is assigned to this node (nor to its group, nor as the default): a boot that is not judged is not trusted',
  STATE_CORRUPT: "the controller's stored record of this node does not decode; the node stays untrusted until an operator approves it and it enrolls again",
  SELINUX_NOT_ENFORCING: 'SELinux is not in the mode the baseline requires (now, or at next boot by /etc/selinux/config)',
  SELINUX_POLICY_MISMATCH: 'the SELinux policy (type, hash, or a required or forbidden module) differs from the baseline',
  SELINUX_BOOLEAN_MISMATCH: 'a SELinux boolean differs from the value the baseline pins',
  BASELINE_REPORT_MISSING: 'a baseline applies but the host sent no baseline report',
  BASELINE_REPLAY_MISMATCH: 'the baseline reports do not replay to the quoted baseline PCR: a report was edited, dropped or reordered',
  BASELINE_REPORT_INVALID: "the host's baseline report, or a part of it, could not be read or parsed",
  SELINUX_REPORT_CONTRADICTS_KERNEL: 'the SELinux state the agent reported contradicts what the kernel measured into the IMA log',
  NFT_BASELINE_DRIFT: "the host's effective nftables exposure or Bulwark's own table differs from the baseline",
  EVENTLOG_SHA1_ONLY: 'the event log carries SHA-1 digests only (a TCG 1.2 format log), and the measured-boot policy does not accept SHA-1 alone as evidence',
  SYSTEMD_LOG_REPLAY_MISMATCH: "systemd-stub's events and systemd's measurement log do not replay to the quoted PCR 11, 12, 13 or 15",
  SYSTEMD_LOG_MISSING: 'a measured-boot policy judges a UKI boot but the host sent no systemd measurement log',
  UKI_NOT_ALLOWED: 'the unified kernel image measured into PCR 11 is not one the measured-boot policy allows',
  BOOT_PHASE_NOT_ALLOWED: 'a systemd boot phase in PCR 11 is not the one the measured-boot policy expects at that point',
  SYSEXT_NOT_ALLOWED: 'a system extension systemd-stub measured into PCR 13 is not one the measured-boot policy allows',
  IMA_BACKLOG_TOO_LARGE: 'an IMA backlog grew past the most a verifier keeps unproven without reaching the quoted PCR 10',
} as const;

export type FindingCode = keyof typeof FINDING_CODES;

/** Every trust state a node can be in. */
export const TRUST_STATES = ['unknown', 'enrolled', 'trusted', 'untrusted', 'stale'] as const;

export type TrustState = (typeof TRUST_STATES)[number];

/** Every code a finding can carry: error codes raised as findings, and finding-only codes. */
export type AnyFindingCode = ErrorCode | FindingCode;

/** True for a code this version knows (an error code or a finding code): a guard for codes read back from the wire or storage. */
export function isFindingCode(value: string): value is AnyFindingCode {
  return Object.prototype.hasOwnProperty.call(FINDING_CODES, value) || Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/** The verdict values evidence can get on the wire ("refused": the round was not judged). */
export const VERDICTS = ['trusted', 'untrusted', 'refused'] as const;

export type VerdictValue = (typeof VERDICTS)[number];

/** True for a verdict value this version knows. */
export function isVerdictValue(value: string): value is VerdictValue {
  return VERDICTS.some((v) => v === value);
}

/** The result of judging evidence: a value, not an exception. */
export type Verdict =
  | { readonly verdict: 'trusted'; readonly findings: readonly [] }
  | { readonly verdict: 'untrusted'; readonly findings: readonly Finding[] };

export function finding(code: ErrorCode | FindingCode, message: string, details?: ErrorDetails): Finding {
  return details === undefined ? { code, message } : { code, message, details };
}
