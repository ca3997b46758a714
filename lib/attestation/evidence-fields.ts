/**
 * Checked wire fields as literal types. The wire codecs carry these fields as strings; the
 * controller and the agent convert them here, at the point they consume them, so that
 * after the check the value has a literal type and an unknown value is a decision
 * (refused, or a finding), never a string passed on.
 */
import { isFindingCode, isVerdictValue, type AnyFindingCode, type VerdictValue } from '../verdict.js';

/** The two forms of the IMA measurement list: securityfs's ascii_runtime_measurements and binary_runtime_measurements. */
export const IMA_FORMATS = ['ascii', 'binary'] as const;

export type ImaFormat = (typeof IMA_FORMATS)[number];

/** The IMA list format named on the wire, or null for one this version does not know ("" means no list and is null too). */
export function imaFormatOf(value: string): ImaFormat | null {
  return IMA_FORMATS.find((f) => f === value) ?? null;
}

/** A verdict read off the wire, or null for one this version does not know. */
export function verdictOf(value: string): VerdictValue | null {
  return isVerdictValue(value) ? value : null;
}

/** A finding code read off the wire, or null for one this version does not know. */
export function findingCodeOf(value: string): AnyFindingCode | null {
  return isFindingCode(value) ? value : null;
}

/** The policy kinds the controller's appraisers register (PolicyInfo.kind on the wire). */
export const POLICY_KINDS = ['measured-boot', 'runtime', 'baseline'] as const;

export type PolicyKindName = (typeof POLICY_KINDS)[number];

/** A policy kind read off the wire, or null for one this version does not know. */
export function policyKindOf(value: string): PolicyKindName | null {
  return POLICY_KINDS.find((k) => k === value) ?? null;
}
