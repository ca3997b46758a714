/**
 * Judging one round of evidence against what the controller knows of the node. Pure:
 * the caller has already checked the nonce (single use, fresh, issued to this node) and
 * hands in the AK key object it cached at enrollment.
 */
import type { KeyObject } from 'node:crypto';
import { toHex } from '../bytes.js';
import { isBulwarkError } from '../errors.js';
import type { AttestationState } from './node-record.js';
import { verifyQuote } from '../tpm/index.js';
import { TPM_ALG, type ClockInfo, type PcrSelection, type QuotedPcrs } from '../tpm/index.js';
import { finding, type Finding, type Verdict } from '../verdict.js';

/**
 * PCRs that only firmware, shim, the boot loader and the kernel's boot stub extend (PC
 * Client PFP; shim and GRUB use 8, 9 and 14): fixed for the rest of the boot.
 */
export const BOOT_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

export interface EvidenceRound {
  readonly nonce: Uint8Array;
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrs: Uint8Array;
  readonly bootId: string;
}

export interface JudgeInput {
  readonly ak: KeyObject;
  readonly state: AttestationState;
  readonly evidence: EvidenceRound;
  readonly expectedSelection: readonly PcrSelection[];
}

export interface Judgement {
  readonly verdict: Verdict;
  /** What to store for the next round (unchanged when the quote itself did not verify). */
  readonly next: AttestationState;
  /** A finding the next good round must not clear. */
  readonly sticky: boolean;
  /** The verified PCRs, for later stages (event log, IMA), when the quote verified. */
  readonly pcrs: QuotedPcrs | null;
  readonly clockInfo: ClockInfo | null;
  /**
   * A new boot began since the last verified round (the first round after enrollment, or
   * a reported TPM reset): per-boot state such as the IMA replay starts again.
   */
  readonly newBoot: boolean;
}

function untrusted(findings: readonly Finding[], state: AttestationState, sticky = false): Judgement {
  return { verdict: { verdict: 'untrusted', findings }, next: state, sticky, pcrs: null, clockInfo: null, newBoot: false };
}

function bootPcrValues(pcrs: QuotedPcrs): Record<string, string> {
  const bank = pcrs.get(TPM_ALG.SHA256);
  const out: Record<string, string> = {};
  if (bank === undefined) return out;
  for (const i of BOOT_PCRS) {
    const v = bank.get(i);
    if (v !== undefined) out[String(i)] = toHex(v);
  }
  return out;
}

/**
 * Verifies the quote, then compares the TPM's clock counters and the boot PCRs with the
 * last verified round: a TPM reset with the same Linux boot id is a reboot hidden from
 * the verifier; a boot PCR that changed without a reset was extended behind our back.
 */
export function judgeEvidence(input: JudgeInput): Judgement {
  const { evidence, state } = input;
  let result;
  try {
    result = verifyQuote(input.ak, evidence.attest, evidence.signature, evidence.pcrs, evidence.nonce, { selection: input.expectedSelection });
  } catch (err) {
    if (isBulwarkError(err)) return untrusted([finding(err.code, err.message, err.details)], state);
    throw err;
  }
  if (!result.ok) return untrusted(result.findings, state);

  const clock = result.attest.clockInfo;
  const current = bootPcrValues(result.pcrs);
  const findings: Finding[] = [];
  let sticky = false;
  let bootPcrs = state.bootPcrs;
  let newBoot = false;

  if (state.resetCount === null || state.restartCount === null || bootPcrs === null) {
    bootPcrs = current;
    newBoot = true;
  } else {
    const details = {
      storedResetCount: state.resetCount,
      resetCount: clock.resetCount,
      storedRestartCount: state.restartCount,
      restartCount: clock.restartCount,
    };
    const regressed =
      clock.resetCount < state.resetCount ||
      (clock.resetCount === state.resetCount && clock.restartCount < state.restartCount) ||
      (clock.resetCount === state.resetCount && clock.restartCount === state.restartCount && state.clock !== null && clock.clock < BigInt(state.clock));
    if (regressed) {
      findings.push(finding('CLOCK_INFO_REGRESSED', 'the TPM clock counters went backwards: another TPM, or a TPM whose state was replaced', details));
      sticky = true;
    } else if (clock.resetCount > state.resetCount) {
      if (evidence.bootId === state.bootId) {
        findings.push(finding('NODE_REBOOT_UNREPORTED', `the TPM was reset (resetCount ${state.resetCount} -> ${clock.resetCount}) but the host reports the same boot`, details));
        sticky = true;
      } else {
        // A reported reboot: the boot PCRs start again from this quote.
        bootPcrs = current;
        newBoot = true;
      }
    }
    if (!regressed && clock.resetCount === state.resetCount) {
      const changed = Object.keys(bootPcrs)
        .filter((k) => current[k] !== bootPcrs?.[k])
        .map(Number);
      if (changed.length > 0) {
        findings.push(finding('PCR_CHANGED_WITHIN_BOOT', `boot PCR ${changed.join(', ')} changed without a TPM reset`, { pcrs: changed }));
        sticky = true;
      }
    }
  }

  const next: AttestationState = {
    resetCount: clock.resetCount,
    restartCount: clock.restartCount,
    clock: clock.clock.toString(),
    bootId: evidence.bootId,
    bootPcrs,
  };
  const verdict: Verdict = findings.length === 0 ? { verdict: 'trusted', findings: [] } : { verdict: 'untrusted', findings };
  return { verdict, next, sticky, pcrs: result.pcrs, clockInfo: clock, newBoot };
}
