import t from 'tap';
import { ByteWriter } from '../../../lib/bytes.js';
import { decodeTpmtSignature, encodeTpmtSignature } from '../../../lib/tpm/signature.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { loadQuoteFixture } from './quote-helpers.js';

t.test('real tpm2_quote -s files (tss format) decode', async (t) => {
  const rsa = decodeTpmtSignature((await loadQuoteFixture('rsa-rsassa-sha256')).sig);
  t.equal(rsa.sigAlg, TPM_ALG.RSASSA);
  t.equal(rsa.hashAlg, TPM_ALG.SHA256);
  t.equal('sig' in rsa ? rsa.sig.length : -1, 256, 'RSA-2048 signature');

  const pss = decodeTpmtSignature((await loadQuoteFixture('rsa-rsapss-sha256')).sig);
  t.equal(pss.sigAlg, TPM_ALG.RSAPSS);
  t.equal('sig' in pss ? pss.sig.length : -1, 256);

  const ecc = decodeTpmtSignature((await loadQuoteFixture('ecc-p256-ecdsa-sha256')).sig);
  t.equal(ecc.sigAlg, TPM_ALG.ECDSA);
  t.equal(ecc.hashAlg, TPM_ALG.SHA256);
  if (ecc.sigAlg === TPM_ALG.ECDSA) {
    t.ok(ecc.r.length <= 32 && ecc.r.length > 0);
    t.ok(ecc.s.length <= 32 && ecc.s.length > 0);
  } else t.fail('not ECDSA');
});

t.test('encode/decode round trip', async (t) => {
  const r = new Uint8Array(31).fill(1);
  const s = new Uint8Array(32).fill(2);
  const e = encodeTpmtSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA384, r, s });
  t.same(decodeTpmtSignature(e), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA384, r, s });
  const sig = new Uint8Array(512).fill(9);
  t.same(decodeTpmtSignature(encodeTpmtSignature({ sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA512, sig })), { sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA512, sig });
  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  t.same([...encodeTpmtSignature(decodeTpmtSignature(f.sig))], [...f.sig], 'a real file re-encodes byte for byte');
});

t.test('an ECDSA signature built field by field', async (t) => {
  const bytes = new ByteWriter()
    .u16be(TPM_ALG.ECDSA) // sigAlg: TPM_ALG_ECDSA
    .u16be(TPM_ALG.SHA256) // signature.ecdsa.hash
    .tpm2b(new Uint8Array([1, 2, 3])) // signatureR: TPM2B_ECC_PARAMETER, leading zeros dropped
    .tpm2b(new Uint8Array(0)) // signatureS: empty (decodes; verification will fail)
    .finish();
  const sig = decodeTpmtSignature(bytes);
  t.equal(sig.sigAlg, TPM_ALG.ECDSA);
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    t.same([...sig.r], [1, 2, 3]);
    t.equal(sig.s.length, 0);
  }
});

t.test('schemes and hashes Bulwark does not verify are TPM_SIGNATURE_UNSUPPORTED', async (t) => {
  // ECDAA, SM2, ECSCHNORR, HMAC, NULL, RSAES, a made-up value.
  for (const sigAlg of [0x001a, 0x001b, 0x001c, TPM_ALG.HMAC, TPM_ALG.NULL, TPM_ALG.RSAES, 0x7fff]) {
    const bytes = new ByteWriter()
      .u16be(sigAlg) // sigAlg
      .u16be(TPM_ALG.SHA256) // hash
      .tpm2b(new Uint8Array(32)) // whatever follows
      .finish();
    t.throws(() => decodeTpmtSignature(bytes), { code: 'TPM_SIGNATURE_UNSUPPORTED' }, `sigAlg 0x${sigAlg.toString(16)}`);
  }
  // SM3_256 (0x0012), NULL and an unknown hash.
  for (const hash of [0x0012, TPM_ALG.NULL, 0x1234]) {
    const bytes = new ByteWriter()
      .u16be(TPM_ALG.RSASSA) // sigAlg
      .u16be(hash) // hash
      .tpm2b(new Uint8Array(256)) // sig
      .finish();
    t.throws(() => decodeTpmtSignature(bytes), { code: 'TPM_SIGNATURE_UNSUPPORTED' }, `hash 0x${hash.toString(16)}`);
  }
});

t.test('trailing bytes, truncation and oversized fields', async (t) => {
  for (const name of ['rsa-rsassa-sha256', 'ecc-p256-ecdsa-sha256']) {
    const f = await loadQuoteFixture(name);
    const longer = new Uint8Array(f.sig.length + 1);
    longer.set(f.sig);
    t.throws(() => decodeTpmtSignature(longer), { code: 'BYTES_TRAILING' }, `${name} + 1 byte`);
    for (let n = 0; n < f.sig.length; n++) t.throws(() => decodeTpmtSignature(f.sig.subarray(0, n)), { code: 'TPM_SIGNATURE_MALFORMED' }, `${name}: prefix of ${n} bytes`);
  }
  const bigRsa = new ByteWriter().u16be(TPM_ALG.RSASSA).u16be(TPM_ALG.SHA256).u16be(513).bytes(new Uint8Array(513)).finish();
  t.throws(() => decodeTpmtSignature(bigRsa), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'RSA sig > 512');
  const bigR = new ByteWriter().u16be(TPM_ALG.ECDSA).u16be(TPM_ALG.SHA256).u16be(67).bytes(new Uint8Array(67)).tpm2b(new Uint8Array(1)).finish();
  t.throws(() => decodeTpmtSignature(bigR), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'r > 66');
  const huge = new ByteWriter().u16be(TPM_ALG.RSASSA).u16be(TPM_ALG.SHA256).u16be(0xffff).finish();
  t.throws(() => decodeTpmtSignature(huge), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'size 0xffff');
  t.throws(() => decodeTpmtSignature(new Uint8Array(0)), { code: 'TPM_SIGNATURE_MALFORMED' });
});
