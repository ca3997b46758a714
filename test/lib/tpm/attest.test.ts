import t from 'tap';
import { ByteReader, ByteWriter, toHex } from '../../../lib/bytes.js';
import { BulwarkError } from '../../../lib/errors.js';
import {
  decodeQuoteAttest,
  decodeTpmlPcrSelection,
  decodeTpmsPcrSelection,
  encodeTpmlPcrSelection,
  encodeTpmsPcrSelection,
  pcrSelectionsEqual,
  pcrsFromBitmap,
} from '../../../lib/tpm/attest.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../../lib/tpm/types.js';
import { SAMPLE_NAME, SHA256_0_7_10, buildQuoteAttest } from './quote-builders.js';
import { listQuoteFixtures, loadQuoteFixture } from './quote-helpers.js';

const NINE = [0, 1, 2, 3, 4, 5, 6, 7, 10];

t.test('every real tpm2_quote -m fixture decodes as TPMS_ATTEST without a size prefix', async (t) => {
  for (const name of await listQuoteFixtures()) {
    const f = await loadQuoteFixture(name);
    if (name === 'rsa-certify-not-quote') {
      t.throws(() => decodeQuoteAttest(f.msg), { code: 'QUOTE_TYPE_INVALID' }, name);
      continue;
    }
    const a = decodeQuoteAttest(f.msg);
    // The file starts with the magic itself: tpm2-tools drops the TPM2B_ATTEST size.
    t.equal(f.msg[0], 0xff, `${name}: no size prefix`);
    t.equal(a.type, TPM_ST.ATTEST_QUOTE, name);
    t.equal(a.magic, name === 'rsa-forged-magic' ? 0xff544346 : TPM_GENERATED_VALUE, `${name} magic`);
    t.equal(a.qualifiedSigner.length, 34, `${name}: sha256 qualified name`);
    t.equal(a.qualifiedSigner[1], 0x0b, `${name}: name alg sha256`);
    t.equal(a.extraData.length, 32, `${name}: 32-byte nonce`);
    t.equal(a.pcrDigest.length, 32, `${name}: sha256 pcrDigest`);
    t.equal(a.pcrSelect.length, 1);
    t.equal(a.pcrSelect[0]?.hashAlg, TPM_ALG.SHA256);
    t.same(a.pcrSelect[0]?.pcrs, name === 'rsa-selection-0-7' ? [0, 1, 2, 3, 4, 5, 6, 7] : NINE, `${name} selection`);
    t.equal(a.encoded, f.msg, 'encoded is the input itself (the signed bytes)');
    t.ok(a.clockInfo.resetCount >= 0 && a.clockInfo.clock > 0n);
    if (f.ok) t.equal(toHex(a.extraData), toHex(f.nonce), `${name}: extraData is the nonce`);
  }
});

t.test('a built quote decodes field by field', async (t) => {
  const nonce = new Uint8Array(20).fill(0x5a);
  const digest = new Uint8Array(48).fill(0x33);
  const a = decodeQuoteAttest(
    buildQuoteAttest({
      extraData: nonce,
      clock: 0xfedcba9876543210n,
      resetCount: 0xffffffff,
      restartCount: 7,
      safe: 0,
      firmwareVersion: 0x0102030405060708n,
      selections: [
        { hash: TPM_ALG.SHA1, sizeofSelect: 3, bitmap: [0x01, 0x00, 0x80] },
        { hash: TPM_ALG.SHA384, sizeofSelect: 4, bitmap: [0x00, 0x00, 0x00, 0x80] },
      ],
      pcrDigest: digest,
    }),
  );
  t.equal(a.magic, TPM_GENERATED_VALUE);
  t.same([...a.qualifiedSigner], [...SAMPLE_NAME]);
  t.same([...a.extraData], [...nonce]);
  t.same(a.clockInfo, { clock: 0xfedcba9876543210n, resetCount: 0xffffffff, restartCount: 7, safe: false });
  t.equal(a.firmwareVersion, 0x0102030405060708n);
  t.same(a.pcrSelect, [
    { hashAlg: TPM_ALG.SHA1, pcrs: [0, 23] },
    { hashAlg: TPM_ALG.SHA384, pcrs: [31] },
  ]);
  t.same([...a.pcrDigest], [...digest]);
});

t.test('empty TPM2Bs, no banks and a zero-size select are well-formed', async (t) => {
  const a = decodeQuoteAttest(
    buildQuoteAttest({
      qualifiedSigner: new Uint8Array(0),
      extraData: new Uint8Array(0),
      selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 0, bitmap: [] }],
      pcrDigest: new Uint8Array(0),
    }),
  );
  t.same(a.pcrSelect, [{ hashAlg: TPM_ALG.SHA256, pcrs: [] }]);
  t.same(decodeQuoteAttest(buildQuoteAttest({ selections: [] })).pcrSelect, []);
});

t.test('the magic is decoded, not judged (verifyQuote judges it after the signature)', async (t) => {
  t.equal(decodeQuoteAttest(buildQuoteAttest({ magic: 0xdeadbeef })).magic, 0xdeadbeef);
});

t.test('other attestation types are refused as QUOTE_TYPE_INVALID right after the type', async (t) => {
  for (const type of [TPM_ST.ATTEST_CERTIFY, TPM_ST.ATTEST_CREATION, 0x8016, 0x8019, 0x0000, 0xffff]) {
    // Only magic and type exist: the rest is never read.
    const bytes = new ByteWriter().u32be(TPM_GENERATED_VALUE).u16be(type).finish();
    try {
      decodeQuoteAttest(bytes);
      t.fail('decoded');
    } catch (err) {
      t.ok(err instanceof BulwarkError);
      if (!(err instanceof BulwarkError)) continue;
      t.equal(err.code, 'QUOTE_TYPE_INVALID');
      t.equal(err.details['type'], type);
      t.equal(err.details['magic'], TPM_GENERATED_VALUE);
      t.equal(err.kind, 'refused');
    }
  }
});

t.test('clockInfo.safe must be a TPMI_YES_NO', async (t) => {
  t.equal(decodeQuoteAttest(buildQuoteAttest({ safe: 1 })).clockInfo.safe, true);
  for (const safe of [2, 0x80, 0xff]) t.throws(() => decodeQuoteAttest(buildQuoteAttest({ safe })), { code: 'TPM_ATTEST_MALFORMED' }, `safe=${safe}`);
});

t.test('trailing bytes are refused', async (t) => {
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ trailing: new Uint8Array([0]) })), { code: 'BYTES_TRAILING' });
  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  const longer = new Uint8Array(f.msg.length + 1);
  longer.set(f.msg);
  t.throws(() => decodeQuoteAttest(longer), { code: 'BYTES_TRAILING' });
});

t.test('truncation at every offset of a real quote is TPM_ATTEST_MALFORMED', async (t) => {
  const f = await loadQuoteFixture('ecc-p256-ecdsa-sha256');
  for (let n = 0; n < f.msg.length; n++) t.throws(() => decodeQuoteAttest(f.msg.subarray(0, n)), { code: 'TPM_ATTEST_MALFORMED' }, `prefix of ${n} bytes`);
});

t.test('sizes and counts beyond their caps are refused before anything is read for them', async (t) => {
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ qualifiedSigner: new Uint8Array(67) })), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'name > 66');
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ extraData: new Uint8Array(67) })), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'data > 66');
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ pcrDigest: new Uint8Array(65) })), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'digest > 64');
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ selectionCount: 17 })), { code: 'TPM_ATTEST_MALFORMED' }, '17 banks');
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ selectionCount: 0xffffffff })), { code: 'TPM_ATTEST_MALFORMED' }, '2^32-1 banks');
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 5, bitmap: [1, 2, 3, 4, 5] }] })), { code: 'TPM_ATTEST_MALFORMED' }, 'sizeofSelect 5');
  // A count larger than the banks present: truncated, not an allocation.
  t.throws(() => decodeQuoteAttest(buildQuoteAttest({ selectionCount: 16 })), { code: 'TPM_ATTEST_MALFORMED' }, 'count 16, one bank');
  // A TPM2B size larger than what is left.
  const bytes = buildQuoteAttest();
  bytes[6] = 0xff; // qualifiedSigner.size high octet: 0xff22
  t.throws(() => decodeQuoteAttest(bytes), { code: 'BYTES_LENGTH_EXCEEDS_CAP' });
});

t.test('TPMS_PCR_SELECTION helpers', async (t) => {
  t.same(pcrsFromBitmap(new Uint8Array([0xff, 0x04, 0x00])), [0, 1, 2, 3, 4, 5, 6, 7, 10]);
  t.same(pcrsFromBitmap(new Uint8Array([0x00, 0x00, 0x00, 0x80])), [31]);
  t.same(pcrsFromBitmap(new Uint8Array(0)), []);

  const w = new ByteWriter();
  encodeTpmsPcrSelection(w, { hashAlg: TPM_ALG.SHA256, pcrs: NINE });
  const bytes = w.finish();
  // hash 0x000b, sizeofSelect 3 (PCR_SELECT_MIN), bitmap ff 04 00: exactly what the TPM echoes.
  t.equal(toHex(bytes), '000b03ff0400');
  t.same(decodeTpmsPcrSelection(new ByteReader(bytes, 'TPM_ATTEST_MALFORMED'), 'TPM_ATTEST_MALFORMED'), { hashAlg: TPM_ALG.SHA256, pcrs: NINE });

  const w31 = new ByteWriter();
  encodeTpmsPcrSelection(w31, { hashAlg: TPM_ALG.SHA1, pcrs: [31] });
  t.equal(toHex(w31.finish()), '00040400000080', 'PCR 31 needs four octets');
  t.throws(() => encodeTpmsPcrSelection(new ByteWriter(), { hashAlg: TPM_ALG.SHA1, pcrs: [32] }), { code: 'BYTES_VALUE_OUT_OF_RANGE' });
  t.throws(() => encodeTpmsPcrSelection(new ByteWriter(), { hashAlg: TPM_ALG.SHA1, pcrs: [-1] }), { code: 'BYTES_VALUE_OUT_OF_RANGE' });
  t.throws(() => encodeTpmsPcrSelection(new ByteWriter(), { hashAlg: TPM_ALG.SHA1, pcrs: [23] }, 2), { code: 'BYTES_VALUE_OUT_OF_RANGE' }, 'select too small');

  const list = [
    { hashAlg: TPM_ALG.SHA1, pcrs: [0, 1] },
    { hashAlg: TPM_ALG.SHA256, pcrs: [10, 23] },
  ];
  const lw = new ByteWriter();
  encodeTpmlPcrSelection(lw, list);
  const lbytes = lw.finish();
  const r = new ByteReader(lbytes, 'TPM_ATTEST_MALFORMED');
  t.same(decodeTpmlPcrSelection(r, 'TPM_ATTEST_MALFORMED'), list);
  t.ok(r.atEnd);
  t.throws(() => encodeTpmlPcrSelection(new ByteWriter(), Array.from({ length: 17 }, () => list[0] ?? { hashAlg: 0, pcrs: [] })), { code: 'BYTES_VALUE_OUT_OF_RANGE' });

  t.ok(pcrSelectionsEqual(list, [{ hashAlg: TPM_ALG.SHA1, pcrs: [0, 1] }, { hashAlg: TPM_ALG.SHA256, pcrs: [10, 23] }]));
  t.notOk(pcrSelectionsEqual(list, [...list].reverse()), 'bank order matters (it orders the digest)');
  t.notOk(pcrSelectionsEqual(list, list.slice(0, 1)));
  t.notOk(pcrSelectionsEqual([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1] }], [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 2] }]));
  t.notOk(pcrSelectionsEqual([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1] }], [{ hashAlg: TPM_ALG.SHA1, pcrs: [0, 1] }]));
  t.ok(pcrSelectionsEqual([], []));
  t.equal(SHA256_0_7_10.sizeofSelect, 3);
});
