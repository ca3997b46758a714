/**
 * Hostile bytes into the TPM decoders: random, truncated, bit-flipped and size-inflated
 * versions of real TPMT_PUBLIC, TPM2B_PUBLIC and tpm2-tools credential files, and everything
 * that uses a decoded public area. Each call must return or throw a BulwarkError with a known
 * code — never another exception, never a hang (seeded: BULWARK_FUZZ_SEED=<n>).
 */
import t from 'tap';
import { makeCredential } from '../../../lib/tpm/credential.js';
import { decodeTpm2ToolsCredential } from '../../../lib/tpm/credential-file.js';
import { checkAkAttributes, computeName, decodeTpm2bPublic, decodeTpmtPublic, tpmtPublicToKeyObject } from '../../../lib/tpm/public.js';
import type { TpmtPublic } from '../../../lib/tpm/types.js';
import { mutations, newStats, probe, prng, report, SEED, type Stats } from '../hostile.js';
import { readFixture } from './fixture-files.js';
import { wrapTpm2b } from './tpmt-builder.js';

const akName = async (): Promise<Uint8Array> => computeName(decodeTpmtPublic(await readFixture('tpm', 'rsa-ak.tpmt')));

/** Everything downstream of a decoded public area: Name, key, AK checks and MakeCredential to it. */
function usePublic(pub: TpmtPublic, name: Uint8Array, stats: Stats, target: string, label: string, input: Uint8Array): void {
  probe(stats, `${target} computeName`, label, input, () => computeName(pub));
  probe(stats, `${target} tpmtPublicToKeyObject`, label, input, () => tpmtPublicToKeyObject(pub));
  probe(stats, `${target} checkAkAttributes`, label, input, () => checkAkAttributes(pub));
  probe(stats, `${target} makeCredential`, label, input, () => makeCredential(pub, name, new Uint8Array(16).fill(3)));
}

t.test('TPMT_PUBLIC and TPM2B_PUBLIC decoders and everything that uses their result', async (t) => {
  const rnd = prng(SEED);
  const name = await akName();
  const stats = newStats();
  for (const base of ['rsa-ak', 'ecc-ak', 'rsa-ek', 'ecc-p384-ek', 'sw-rsa-ek', 'sw-ecc-p384-ek']) {
    const tpmt = await readFixture('tpm', `${base}.tpmt`);
    for (const [form, seed, decode] of [
      ['TPMT_PUBLIC', tpmt, decodeTpmtPublic],
      ['TPM2B_PUBLIC', wrapTpm2b(tpmt), decodeTpm2bPublic],
    ] as const) {
      let decoded = 0;
      for (const [label, input] of mutations(seed, rnd, { randomCount: 250 })) {
        let pub: TpmtPublic | undefined;
        probe(stats, `${base} ${form}`, label, input, () => {
          pub = decode(input);
        });
        // What follows decoding is the same for both forms; an ECC MakeCredential costs about
        // a millisecond, so every other decoded TPMT_PUBLIC goes further.
        if (pub !== undefined && form === 'TPMT_PUBLIC' && decoded++ % 2 === 0) usePublic(pub, name, stats, `${base} ${form}`, label, input);
      }
    }
  }
  report(t, stats, 30_000);
});

t.test('tpm2-tools credential files', async (t) => {
  const rnd = prng(SEED ^ 0x1);
  const stats = newStats();
  for (const base of ['rsa-ek', 'sw-rsa-ek', 'sw-ecc-p384-ek']) {
    const seed = await readFixture('tpm', `${base}.cred`);
    for (const [label, input] of mutations(seed, rnd, { randomCount: 500 })) probe(stats, `${base}.cred`, label, input, () => decodeTpm2ToolsCredential(input));
  }
  report(t, stats, 10_000);
});
