import t from 'tap';
import { constants, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { ByteWriter, toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import { computePcrDigest, decodeSerializedPcrs } from '../../../lib/tpm/pcrs.js';
import { verifyQuote, type QuoteResult } from '../../../lib/tpm/quote.js';
import { encodeTpmtSignature } from '../../../lib/tpm/signature.js';
import { TPM_ALG, TPM_ST, type TpmtSignature } from '../../../lib/tpm/types.js';
import { buildQuoteAttest, buildSerializedPcrs } from './quote-builders.js';
import { listQuoteFixtures, loadQuoteFixture, type QuoteFixture } from './quote-helpers.js';

function codesOf(r: QuoteResult): string[] {
  return r.ok ? [] : r.findings.map((f) => f.code);
}

function verifyFixture(f: QuoteFixture, over: Partial<Pick<QuoteFixture, 'msg' | 'sig' | 'pcrs' | 'nonce' | 'ak'>> = {}): QuoteResult {
  return verifyQuote(over.ak ?? f.ak, over.msg ?? f.msg, over.sig ?? f.sig, over.pcrs ?? f.pcrs, over.nonce ?? f.nonce, { selection: f.selection });
}

function flip(bytes: Uint8Array, at: number, bit = 0): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[at] = (copy[at] ?? 0) ^ (1 << bit);
  return copy;
}

t.test('each captured fixture gives its recorded result', async (t) => {
  const names = await listQuoteFixtures();
  t.ok(names.length >= 9, `${names.length} fixtures`);
  for (const name of names) {
    await t.test(name, async (t) => {
      const f = await loadQuoteFixture(name);
      const r = verifyFixture(f);
      t.equal(r.ok, f.ok);
      t.same(codesOf(r), f.codes);
      if (r.ok) {
        // The proven values are the ones tpm2_pcrread printed, independently of our decoder.
        const bank = r.pcrs.get(TPM_ALG.SHA256);
        t.same([...(bank?.keys() ?? [])], [...f.pcrValues.keys()]);
        for (const [pcr, hex] of f.pcrValues) t.equal(toHex(bank?.get(pcr) ?? new Uint8Array(0)), hex, `PCR ${pcr}`);
        t.equal(toHex(r.attest.extraData), toHex(f.nonce));
      }
    });
  }
});

t.test('a failed signature hands out nothing; later failures carry the signed attest', async (t) => {
  const other = verifyFixture(await loadQuoteFixture('rsa-other-tpm'));
  t.equal(other.ok, false);
  t.notOk(!other.ok && other.attest !== undefined, 'no attest when the signature failed');
  const replay = verifyFixture(await loadQuoteFixture('ecc-replayed-nonce'));
  t.ok(!replay.ok && replay.attest !== undefined, 'attest when only the nonce failed');
  const certify = verifyFixture(await loadQuoteFixture('rsa-certify-not-quote'));
  t.ok(!certify.ok && certify.attest === undefined && certify.findings[0]?.details?.['type'] === TPM_ST.ATTEST_CERTIFY);
});

t.test('one bit anywhere in attest or signature breaks the signature', async (t) => {
  for (const name of ['rsa-rsassa-sha256', 'rsa-rsapss-sha256', 'ecc-p256-ecdsa-sha256']) {
    const f = await loadQuoteFixture(name);
    const results = new Set<string>();
    // Every byte after sigAlg and hash: a flipped size field is malformed, anything else is invalid.
    let thrown = 0;
    for (let i = 4; i < f.sig.length; i++) {
      try {
        results.add(codesOf(verifyFixture(f, { sig: flip(f.sig, i, i % 8) })).join(','));
      } catch (err) {
        if (!(err instanceof BulwarkError)) t.fail(`flip at ${i}: ${String(err)}`);
        thrown++;
      }
    }
    t.same([...results], ['QUOTE_SIGNATURE_INVALID'], `${name}: signature bit flips`);
    t.ok(thrown <= 4, `${name}: only size fields throw (${thrown})`);
    // Attest bytes that still decode: each flipped byte is caught by the signature.
    const attestResults = new Set<string>();
    for (let i = 0; i < f.msg.length; i++) {
      try {
        attestResults.add(codesOf(verifyFixture(f, { msg: flip(f.msg, i, (i * 3) % 8) })).join(','));
      } catch (err) {
        t.ok(err instanceof BulwarkError, `flip at ${i} throws only BulwarkError`);
      }
    }
    t.same([...attestResults], ['QUOTE_SIGNATURE_INVALID'], `${name}: attest bit flips`);
  }
});

t.test('edited PCR values: one byte anywhere in a value breaks the digest', async (t) => {
  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  // Value bytes are at 136 + list*532 + 4 + d*66 + 2 .. +34.
  for (const [list, d] of [[0, 0], [0, 7], [1, 0]] as const) {
    const at = 136 + list * 532 + 4 + d * 66 + 2 + 17;
    t.same(codesOf(verifyFixture(f, { pcrs: flip(f.pcrs, at) })), ['QUOTE_PCR_DIGEST_MISMATCH'], `list ${list} digest ${d}`);
  }
});

t.test('selections: expected vs quoted, and the PCR file vs quoted', async (t) => {
  const good = await loadQuoteFixture('rsa-rsassa-sha256');
  const narrow = await loadQuoteFixture('rsa-selection-0-7');
  // The PCR file of a 0-7 quote next to a 0-7,10 quote: file selection mismatch, no digest claim.
  const r = verifyFixture(good, { pcrs: narrow.pcrs });
  t.same(codesOf(r), ['QUOTE_PCR_SELECTION_MISMATCH']);
  t.match(!r.ok ? r.findings[0]?.details : {}, { quoted: 'sha256:0,1,2,3,4,5,6,7,10', supplied: 'sha256:0,1,2,3,4,5,6,7' });
  // Without an expectation only the file is compared with the quote.
  t.equal(verifyQuote(narrow.ak, narrow.msg, narrow.sig, narrow.pcrs, narrow.nonce).ok, true);
  t.equal(verifyQuote(narrow.ak, narrow.msg, narrow.sig, narrow.pcrs, narrow.nonce, {}).ok, true);
  // Bank order matters: a sha1 bank first is another selection.
  const other = verifyQuote(good.ak, good.msg, good.sig, good.pcrs, good.nonce, {
    selection: [
      { hashAlg: TPM_ALG.SHA1, pcrs: [0] },
      { hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] },
    ],
  });
  t.same(codesOf(other), ['QUOTE_PCR_SELECTION_MISMATCH']);
});

t.test('several findings at once, in order', async (t) => {
  const narrow = await loadQuoteFixture('rsa-selection-0-7');
  const good = await loadQuoteFixture('rsa-rsassa-sha256');
  const r = verifyFixture(narrow, { nonce: new Uint8Array(32), pcrs: good.pcrs });
  t.same(codesOf(r), ['QUOTE_NONCE_MISMATCH', 'QUOTE_PCR_SELECTION_MISMATCH', 'QUOTE_PCR_SELECTION_MISMATCH']);
});

t.test('nonce: different value, shorter, longer', async (t) => {
  const f = await loadQuoteFixture('ecc-p256-ecdsa-sha256');
  t.same(codesOf(verifyFixture(f, { nonce: flip(f.nonce, 31, 7) })), ['QUOTE_NONCE_MISMATCH']);
  t.same(codesOf(verifyFixture(f, { nonce: f.nonce.subarray(0, 31) })), ['QUOTE_NONCE_MISMATCH']);
  const longer = new Uint8Array(33);
  longer.set(f.nonce);
  t.same(codesOf(verifyFixture(f, { nonce: longer })), ['QUOTE_NONCE_MISMATCH']);
  t.throws(() => verifyFixture(f, { nonce: new Uint8Array(0) }), { code: 'USAGE' }, 'an empty nonce is a caller bug');
});

t.test('a key that cannot have made the signature is QUOTE_SIGNATURE_SCHEME_MISMATCH', async (t) => {
  const rsa = await loadQuoteFixture('rsa-rsassa-sha256');
  const pss = await loadQuoteFixture('rsa-rsapss-sha256');
  const ecc = await loadQuoteFixture('ecc-p256-ecdsa-sha256');
  t.same(codesOf(verifyFixture(ecc, { ak: rsa.ak })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'ECDSA with an RSA key');
  t.same(codesOf(verifyFixture(rsa, { ak: ecc.ak })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'RSASSA with an EC key');
  t.same(codesOf(verifyFixture(pss, { ak: ecc.ak })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'RSAPSS with an EC key');
  const ed = generateKeyPairSync('ed25519').publicKey;
  t.same(codesOf(verifyFixture(rsa, { ak: ed })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'Ed25519');
  const pssOnly = generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey;
  t.same(codesOf(verifyFixture(rsa, { ak: pssOnly })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'RSASSA with an RSA-PSS-only key');
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
  t.same(codesOf(verifyFixture(ecc, { ak: p384 })), ['QUOTE_SIGNATURE_INVALID'], 'P-256 signature, P-384 key');
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  t.same(codesOf(verifyFixture(ecc, { ak: k1 })), ['QUOTE_SIGNATURE_SCHEME_MISMATCH'], 'unsupported curve');
  // Same type, another key: the signature fails.
  t.same(codesOf(verifyFixture(rsa, { ak: pss.ak })), ['QUOTE_SIGNATURE_INVALID'], 'RSASSA, another RSA key');
  t.same(codesOf(verifyFixture(pss, { ak: rsa.ak })), ['QUOTE_SIGNATURE_INVALID'], 'RSAPSS, another RSA key');
});

t.test('malformed inputs and a non-public AK throw BulwarkError', async (t) => {
  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  t.throws(() => verifyFixture(f, { msg: f.msg.subarray(0, 100) }), { code: 'TPM_ATTEST_MALFORMED' });
  t.throws(() => verifyFixture(f, { sig: f.sig.subarray(0, 100) }), { code: 'TPM_SIGNATURE_MALFORMED' });
  t.throws(() => verifyFixture(f, { pcrs: f.pcrs.subarray(0, 1000) }), { code: 'TPM_PCRS_MALFORMED' });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  t.throws(() => verifyFixture(f, { ak: privateKey }), { code: 'KEY_INVALID' });
  t.throws(() => verifyFixture(f, { ak: createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })) }), { code: 'KEY_INVALID' });
});

t.test('QuotedPcrs are copies: later changes to the input do not change what was proven', async (t) => {
  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  const pcrs = new Uint8Array(f.pcrs);
  const r = verifyFixture(f, { pcrs });
  if (!r.ok) return t.fail('fixture did not verify');
  const before = toHex(r.pcrs.get(TPM_ALG.SHA256)?.get(10) ?? new Uint8Array(0));
  pcrs.fill(0);
  t.equal(toHex(r.pcrs.get(TPM_ALG.SHA256)?.get(10) ?? new Uint8Array(0)), before);
});

// Quotes signed by node:crypto keys, for shapes swtpm does not produce.
interface Signer {
  readonly pub: KeyObject;
  sign(data: Uint8Array, hashAlg: number): TpmtSignature;
}

const HASH_NAME = new Map<number, string>([
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
]);

function ecSigner(stripLeadingZeroOfR: boolean): Signer {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    pub: publicKey,
    sign(data, hashAlg) {
      for (let i = 0; i < 5000; i++) {
        const p1363 = sign(HASH_NAME.get(hashAlg) ?? 'sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const r = new Uint8Array(p1363.subarray(0, 32));
        const s = new Uint8Array(p1363.subarray(32));
        if (!stripLeadingZeroOfR) return { sigAlg: TPM_ALG.ECDSA, hashAlg, r, s };
        if (r[0] === 0) return { sigAlg: TPM_ALG.ECDSA, hashAlg, r: r.subarray(1), s };
      }
      throw new Error('no r with a leading zero in 5000 signatures');
    },
  };
}

/** A quote over the builder's default PCR file values, signed by `signer`. */
function syntheticQuote(signer: Signer, hashAlg: number, nonce: Uint8Array): { attest: Uint8Array; sig: Uint8Array; pcrs: Uint8Array } {
  const pcrs = buildSerializedPcrs();
  const digest = computePcrDigest(hashAlg, [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }], decodeSerializedPcrs(pcrs));
  const attest = buildQuoteAttest({ extraData: nonce, pcrDigest: digest });
  return { attest, sig: encodeTpmtSignature(signer.sign(attest, hashAlg)), pcrs };
}

t.test('ECDSA r and s are left-padded to the curve size (TPM2B drops leading zeros)', async (t) => {
  const nonce = new Uint8Array(32).fill(7);
  const signer = ecSigner(true);
  const q = syntheticQuote(signer, TPM_ALG.SHA256, nonce);
  t.equal(q.sig[5], 31, 'r is 31 bytes on the wire');
  t.equal(verifyQuote(signer.pub, q.attest, q.sig, q.pcrs, nonce).ok, true);
  // An r longer than the curve (a zero octet added in front) is refused, not truncated.
  const plain = ecSigner(false);
  const q2 = syntheticQuote(plain, TPM_ALG.SHA256, nonce);
  const sig = plain.sign(q2.attest, TPM_ALG.SHA256);
  if (sig.sigAlg !== TPM_ALG.ECDSA) return t.fail('not ECDSA');
  const padded = encodeTpmtSignature({ ...sig, r: new Uint8Array([0, ...sig.r]) });
  t.same(codesOf(verifyQuote(plain.pub, q2.attest, padded, q2.pcrs, nonce)), ['QUOTE_SIGNATURE_INVALID']);
});

t.test('the PCR digest uses the signature hash (sha384 signature → sha384 pcrDigest)', async (t) => {
  const nonce = new Uint8Array(16).fill(9);
  const signer = ecSigner(false);
  const q = syntheticQuote(signer, TPM_ALG.SHA384, nonce);
  const r = verifyQuote(signer.pub, q.attest, q.sig, q.pcrs, nonce);
  t.equal(r.ok, true);
  if (r.ok) t.equal(r.attest.pcrDigest.length, 48);
  // The same digest claimed under a sha256 signature does not match.
  const sig256 = encodeTpmtSignature(signer.sign(q.attest, TPM_ALG.SHA256));
  t.same(codesOf(verifyQuote(signer.pub, q.attest, sig256, q.pcrs, nonce)), ['QUOTE_PCR_DIGEST_MISMATCH']);
});

t.test('RSA-PSS with the maximum salt length also verifies (salt length AUTO)', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const nonce = new Uint8Array(32).fill(3);
  const signer: Signer = {
    pub: publicKey,
    sign: (data, hashAlg) => ({
      sigAlg: TPM_ALG.RSAPSS,
      hashAlg,
      sig: sign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN }),
    }),
  };
  const q = syntheticQuote(signer, TPM_ALG.SHA256, nonce);
  t.equal(verifyQuote(publicKey, q.attest, q.sig, q.pcrs, nonce).ok, true);
  // The same bytes as PKCS#1 v1.5 do not verify.
  const asSsa = new Uint8Array(q.sig);
  asSsa[1] = TPM_ALG.RSASSA;
  t.same(codesOf(verifyQuote(publicKey, q.attest, asSsa, q.pcrs, nonce)), ['QUOTE_SIGNATURE_INVALID']);
  // A signature longer than the modulus: OpenSSL may throw; it is an invalid signature, not a crash.
  const long = new ByteWriter().u16be(TPM_ALG.RSASSA).u16be(TPM_ALG.SHA256).tpm2b(new Uint8Array(512).fill(0xff)).finish();
  t.same(codesOf(verifyQuote(publicKey, q.attest, long, q.pcrs, nonce)), ['QUOTE_SIGNATURE_INVALID']);
});
