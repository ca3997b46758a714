/**
 * judgeEvidence on its own: one round of evidence against what the controller stored of
 * the node, with quotes signed by a software AK (test/helpers/soft-tpm.ts) and checked by
 * the real verifyQuote.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { toHex } from '../../../lib/bytes.js';
import { BOOT_PCRS, judgeEvidence, type Judgement } from '../../../lib/attestation/judge.js';
import { EMPTY_ATTESTATION, type AttestationState } from '../../../lib/attestation/node-record.js';
import { parsePcrSelectionSpec } from '../../../lib/tpm/pcrs.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { QUOTED_SPEC, SoftTpm, type SoftTpmOptions } from '../../helpers/soft-tpm.js';

const selection = parsePcrSelectionSpec(QUOTED_SPEC);

function codes(j: Judgement): string[] {
  return j.verdict.findings.map((f) => f.code);
}

/** One round from `tpm` judged against `state`. */
function round(tpm: SoftTpm, state: AttestationState, bootId = 'boot-1', clock: SoftTpmOptions = {}): Judgement {
  const nonce = randomBytes(32);
  const q = tpm.quote(nonce, clock);
  return judgeEvidence({ ak: tpm.akKey, state, evidence: { nonce, attest: q.attest, signature: q.signature, pcrs: q.pcrs, bootId }, expectedSelection: selection });
}

/** A TPM with distinct boot measurements and the state after its first round. */
function booted(): { tpm: SoftTpm; state: AttestationState } {
  const tpm = new SoftTpm();
  tpm.measure(0, 'firmware');
  tpm.measure(4, 'shim');
  tpm.measure(7, 'secure boot on');
  const first = round(tpm, EMPTY_ATTESTATION);
  if (first.verdict.verdict !== 'trusted') throw new Error(`first round: ${codes(first).join(',')}`);
  return { tpm, state: first.next };
}

t.test('the first round after enrollment is trusted, starts a boot and records the counters', async (t) => {
  const tpm = new SoftTpm({ resetCount: 7, restartCount: 2, clock: 5000n });
  tpm.measure(0, 'firmware');
  const j = round(tpm, EMPTY_ATTESTATION, 'boot-a');
  t.same(codes(j), []);
  t.equal(j.verdict.verdict, 'trusted');
  t.equal(j.newBoot, true, 'a new boot for the appraisers');
  t.equal(j.sticky, false);
  t.same(
    { resetCount: j.next.resetCount, restartCount: j.next.restartCount, clock: j.next.clock, bootId: j.next.bootId },
    { resetCount: 7, restartCount: 2, clock: '5000', bootId: 'boot-a' },
  );
  t.equal(j.next.bootPcrs?.['0'], toHex(tpm.pcr(0)), 'boot PCR 0 as quoted');
  t.same(Object.keys(j.next.bootPcrs ?? {}).map(Number), BOOT_PCRS, 'every boot PCR is kept');
  t.equal(j.next.bootPcrs?.['10'], undefined, 'PCR 10 (IMA) is not a boot PCR');
  t.equal(toHex(j.pcrs?.get(TPM_ALG.SHA256)?.get(10) ?? new Uint8Array(0)), toHex(tpm.pcr(10)), 'the verified PCRs are handed on');
  t.equal(j.clockInfo?.resetCount, 7);
});

t.test('the same boot, PCR 10 grown, clock moved on: trusted, not a new boot', async (t) => {
  const { tpm, state } = booted();
  tpm.measure(10, 'an IMA entry');
  tpm.tick(60_000);
  const j = round(tpm, state);
  t.same(codes(j), []);
  t.equal(j.newBoot, false);
  t.same(j.next.bootPcrs, state.bootPcrs, 'boot PCRs stay those of the first quote of the boot');
  t.equal(BigInt(j.next.clock ?? '0') > BigInt(state.clock ?? '0'), true, 'the clock is stored for the next round');
});

t.test('a reported reboot (new boot id, resetCount up) is a new boot with new boot PCRs', async (t) => {
  const { tpm, state } = booted();
  tpm.reboot();
  tpm.measure(0, 'updated firmware');
  const j = round(tpm, state, 'boot-2');
  t.same(codes(j), []);
  t.equal(j.newBoot, true);
  t.equal(j.next.resetCount, (state.resetCount ?? 0) + 1);
  t.equal(j.next.bootPcrs?.['0'], toHex(tpm.pcr(0)), 'the boot PCRs start again from this quote');
  t.not(j.next.bootPcrs?.['0'], state.bootPcrs?.['0']);
});

t.test('NODE_REBOOT_UNREPORTED: the TPM was reset but the host reports the same boot id', async (t) => {
  const { tpm, state } = booted();
  tpm.reboot();
  const j = round(tpm, state, 'boot-1');
  t.same(codes(j), ['NODE_REBOOT_UNREPORTED']);
  t.equal(j.verdict.verdict, 'untrusted');
  t.equal(j.sticky, true, 'a hidden reboot needs an approved re-enrollment');
  t.equal(j.newBoot, false);
  t.same(j.verdict.findings[0]?.details, { storedResetCount: state.resetCount, resetCount: tpm.resetCount, storedRestartCount: state.restartCount, restartCount: 0 });
});

t.test('CLOCK_INFO_REGRESSED: any counter going backwards is sticky', async (t) => {
  const cases: Array<[string, (tpm: SoftTpm) => SoftTpmOptions]> = [
    ['resetCount went down', (tpm) => ({ resetCount: tpm.resetCount - 1 })],
    ['restartCount went down within the same reset', (tpm) => ({ restartCount: tpm.restartCount - 1 })],
    ['clock went back within the same reset and restart', () => ({ clock: 1n })],
  ];
  for (const [name, clock] of cases) {
    await t.test(name, async (t) => {
      const tpm = new SoftTpm({ resetCount: 4, restartCount: 3 });
      const first = round(tpm, EMPTY_ATTESTATION);
      const j = round(tpm, first.next, 'boot-1', clock(tpm));
      t.same(codes(j), ['CLOCK_INFO_REGRESSED']);
      t.equal(j.sticky, true);
      t.equal(j.verdict.verdict, 'untrusted');
      t.equal(j.verdict.findings[0]?.details?.['storedResetCount'], 4);
    });
  }
  await t.test('a later restart with an earlier clock is no regression (restartCount grew)', async (t) => {
    const tpm = new SoftTpm({ resetCount: 4, restartCount: 3, clock: 90_000n });
    const first = round(tpm, EMPTY_ATTESTATION);
    t.same(codes(round(tpm, first.next, 'boot-1', { restartCount: 4, clock: 10n })), []);
  });
  await t.test('a regression is not also reported as a changed boot PCR', async (t) => {
    const { tpm, state } = booted();
    tpm.measure(0, 'tampered');
    t.same(codes(round(tpm, state, 'boot-1', { resetCount: (state.resetCount ?? 0) - 1 })), ['CLOCK_INFO_REGRESSED']);
  });
});

t.test('PCR_CHANGED_WITHIN_BOOT: a boot PCR extended without a TPM reset', async (t) => {
  const { tpm, state } = booted();
  tpm.measure(4, 'a second boot loader');
  tpm.measure(7, 'secure boot variable changed');
  const j = round(tpm, state);
  t.same(codes(j), ['PCR_CHANGED_WITHIN_BOOT']);
  t.same(j.verdict.findings[0]?.details, { pcrs: [4, 7] }, 'names the PCRs that changed');
  t.equal(j.sticky, true);
  t.same(j.next.bootPcrs, state.bootPcrs, 'the stored boot PCRs stay those of the boot, so the change stays visible');
});

t.test('a quote that does not verify leaves the state as it was and is not sticky', async (t) => {
  const { tpm, state } = booted();
  await t.test('QUOTE_SIGNATURE_INVALID: signed by another AK', async (t) => {
    const other = new SoftTpm();
    const nonce = randomBytes(32);
    const q = other.quote(nonce);
    const j = judgeEvidence({ ak: tpm.akKey, state, evidence: { nonce, attest: q.attest, signature: q.signature, pcrs: q.pcrs, bootId: 'boot-1' }, expectedSelection: selection });
    t.same(codes(j), ['QUOTE_SIGNATURE_INVALID']);
    t.equal(j.next, state);
    t.equal(j.sticky, false);
    t.equal(j.pcrs, null, 'no PCRs for the appraisers');
    t.equal(j.clockInfo, null);
  });
  await t.test('QUOTE_NONCE_MISMATCH: the quote answers another nonce', async (t) => {
    const q = tpm.quote(randomBytes(32));
    const j = judgeEvidence({ ak: tpm.akKey, state, evidence: { nonce: randomBytes(32), attest: q.attest, signature: q.signature, pcrs: q.pcrs, bootId: 'boot-1' }, expectedSelection: selection });
    t.same(codes(j), ['QUOTE_NONCE_MISMATCH']);
    t.equal(j.next, state);
  });
  await t.test('QUOTE_PCR_SELECTION_MISMATCH: the verifier expects PCRs the quote does not cover', async (t) => {
    const nonce = randomBytes(32);
    const q = tpm.quote(nonce);
    const j = judgeEvidence({
      ak: tpm.akKey,
      state,
      evidence: { nonce, attest: q.attest, signature: q.signature, pcrs: q.pcrs, bootId: 'boot-1' },
      expectedSelection: parsePcrSelectionSpec('sha256:0,1,2,3,4,5,6,7,8,9,10,14,15'),
    });
    t.same(codes(j), ['QUOTE_PCR_SELECTION_MISMATCH']);
  });
  await t.test('malformed quote bytes become a finding with their decoder code, not an exception', async (t) => {
    const nonce = randomBytes(32);
    const q = tpm.quote(nonce);
    const evidence = { nonce, attest: q.attest.subarray(0, 20), signature: q.signature, pcrs: q.pcrs, bootId: 'boot-1' };
    const j = judgeEvidence({ ak: tpm.akKey, state, evidence, expectedSelection: selection });
    t.equal(j.verdict.verdict, 'untrusted');
    t.same(codes(j), ['TPM_ATTEST_MALFORMED']);
    t.equal(j.next, state);
    const badSig = judgeEvidence({ ak: tpm.akKey, state, evidence: { ...evidence, attest: q.attest, signature: q.signature.subarray(0, 3) }, expectedSelection: selection });
    t.same(codes(badSig), ['TPM_SIGNATURE_MALFORMED']);
    const badPcrs = judgeEvidence({ ak: tpm.akKey, state, evidence: { ...evidence, attest: q.attest, pcrs: q.pcrs.subarray(0, 9) }, expectedSelection: selection });
    t.same(codes(badPcrs), ['TPM_PCRS_MALFORMED']);
  });
});
