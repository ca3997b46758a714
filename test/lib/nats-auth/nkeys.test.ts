/**
 * User nkeys made with node:crypto, checked against vectors made with nkeys.js 1.1 (the
 * library nats.js signs with): `Codec.encodeSeed(Prefix.User, seed)` then `fromSeed(seed).getPublicKey()`.
 */
import t from 'tap';
import { BulwarkError } from '../../../lib/index.js';
import { checkNkeyUserPublicKey, createNkeyUser, crc16Xmodem, nkeyUserFromRawSeed, parseNkeyUserSeed } from '../../../lib/nats-auth/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof BulwarkError ? err.code : `not a BulwarkError: ${String(err)}`;
  }
  return 'no error';
}

// Raw seed 00 01 02 … 1f.
const VECTOR_RAW = {
  seed: 'SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y',
  publicKey: 'UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK',
};
// A seed from nkeys.createUser().
const VECTOR_RANDOM = {
  seed: 'SUAHQCGAW3FCFGXNKMZ5KMMLPFDFSDJEGE7EA2GKYQRY7LHKBBAUQRVO2I',
  publicKey: 'UBXFOMOSBSMSUL6U3ZZZ7H47JRRKDX3ORGVRFCK2K2RIWXCQJQXGAOUL',
};

t.test('crc16 is CRC-16/XMODEM', async (t) => {
  // The standard check value of CRC-16/XMODEM over "123456789".
  t.equal(crc16Xmodem(new TextEncoder().encode('123456789')), 0x31c3);
});

t.test('seed and public key encode as nkeys.js does', async (t) => {
  const raw = Uint8Array.from({ length: 32 }, (_, i) => i);
  t.same(nkeyUserFromRawSeed(raw), VECTOR_RAW);
  t.same(parseNkeyUserSeed(VECTOR_RAW.seed), VECTOR_RAW);
  t.same(parseNkeyUserSeed(`  ${VECTOR_RANDOM.seed}\n`), VECTOR_RANDOM);
  t.equal(checkNkeyUserPublicKey(VECTOR_RANDOM.publicKey), VECTOR_RANDOM.publicKey);
});

t.test('new keys are distinct and round-trip', async (t) => {
  const a = createNkeyUser();
  const b = createNkeyUser();
  t.not(a.seed, b.seed);
  t.same(parseNkeyUserSeed(a.seed), a);
  t.match(a.publicKey, /^U[A-Z2-7]{55}$/);
  t.match(a.seed, /^SU[A-Z2-7]{56}$/);
});

t.test('malformed seeds and public keys are refused with a code', async (t) => {
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  for (const bad of ['', 'SU', VECTOR_RAW.seed.slice(0, -1), `${VECTOR_RAW.seed}A`, flip(VECTOR_RAW.seed, 20), VECTOR_RAW.seed.toLowerCase(), VECTOR_RAW.publicKey, 'SA' + VECTOR_RAW.seed.slice(2), '1'.repeat(58)]) {
    t.equal(codeOf(() => parseNkeyUserSeed(bad)), 'NATS_AUTH_CREDENTIAL_INVALID', bad.slice(0, 20));
  }
  for (const bad of ['', VECTOR_RAW.seed, flip(VECTOR_RAW.publicKey, 30), `A${VECTOR_RAW.publicKey.slice(1)}`, VECTOR_RAW.publicKey.slice(0, -1), `${VECTOR_RAW.publicKey}"`]) {
    t.equal(codeOf(() => checkNkeyUserPublicKey(bad)), 'NATS_AUTH_CREDENTIAL_INVALID', bad.slice(0, 20));
  }
  t.equal(codeOf(() => nkeyUserFromRawSeed(new Uint8Array(31))), 'NATS_AUTH_CREDENTIAL_INVALID');
});
