import t from 'tap';
import { createHash } from 'node:crypto';
import { concatBytes, toHex } from '../../../lib/bytes.js';
import { decodeQuoteAttest } from '../../../lib/tpm/attest.js';
import { computePcrDigest, decodeSerializedPcrFile, decodeSerializedPcrs, formatPcrSelectionSpec, parsePcrSelectionSpec } from '../../../lib/tpm/pcrs.js';
import { decodeTpmtSignature } from '../../../lib/tpm/signature.js';
import { TPM_ALG, type PcrBanks } from '../../../lib/tpm/types.js';
import { SHA256_0_7_10, buildSerializedPcrs, samplePcrValues } from './quote-builders.js';
import { DEFAULT_SPEC, loadQuoteFixture } from './quote-helpers.js';

const NINE = [0, 1, 2, 3, 4, 5, 6, 7, 10];

t.test('a real serialized PCR file: 1200 bytes, values equal tpm2_pcrread', async (t) => {
  for (const name of ['rsa-rsassa-sha256', 'rsa-rsapss-sha256', 'ecc-p256-ecdsa-sha256']) {
    const f = await loadQuoteFixture(name);
    // 132 (TPML_PCR_SELECTION) + 4 (count) + 2 x 532 (TPML_DIGEST: 8 + 1 values).
    t.equal(f.pcrs.length, 1200);
    const { selection, banks } = decodeSerializedPcrFile(f.pcrs);
    t.same(selection, [{ hashAlg: TPM_ALG.SHA256, pcrs: NINE }]);
    const bank = banks.get(TPM_ALG.SHA256);
    t.same([...(bank?.keys() ?? [])], NINE, 'PCRs ascending');
    t.equal(f.pcrValues.size, 9);
    for (const [pcr, hex] of f.pcrValues) t.equal(toHex(bank?.get(pcr) ?? new Uint8Array(0)), hex, `${name} PCR ${pcr}`);
    t.same(decodeSerializedPcrs(f.pcrs), banks);
  }
  const small = await loadQuoteFixture('rsa-selection-0-7');
  t.equal(small.pcrs.length, 668, '8 values fit one TPML_DIGEST');
  t.same(decodeSerializedPcrFile(small.pcrs).selection, [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]);
});

t.test('computePcrDigest reproduces the pcrDigest of real quotes', async (t) => {
  for (const name of ['rsa-rsassa-sha256', 'ecc-p256-ecdsa-sha256', 'rsa-selection-0-7']) {
    const f = await loadQuoteFixture(name);
    const attest = decodeQuoteAttest(f.msg);
    const sig = decodeTpmtSignature(f.sig);
    const digest = computePcrDigest(sig.hashAlg, attest.pcrSelect, decodeSerializedPcrs(f.pcrs));
    t.equal(toHex(digest), toHex(attest.pcrDigest), name);
  }
});

t.test('computePcrDigest: selection order, missing values, bad input', async (t) => {
  const a = new Uint8Array(20).fill(1);
  const b = new Uint8Array(32).fill(2);
  const c = new Uint8Array(32).fill(3);
  const banks: PcrBanks = new Map([
    [TPM_ALG.SHA1, new Map([[5, a]])],
    [TPM_ALG.SHA256, new Map([[1, b], [7, c]])],
  ]);
  const sel = [
    { hashAlg: TPM_ALG.SHA256, pcrs: [1, 7] },
    { hashAlg: TPM_ALG.SHA1, pcrs: [5] },
  ];
  // Banks in selection order (sha256 first here), PCRs ascending, hashed with the given hash.
  t.equal(toHex(computePcrDigest(TPM_ALG.SHA256, sel, banks)), createHash('sha256').update(concatBytes(b, c, a)).digest('hex'));
  t.equal(toHex(computePcrDigest(TPM_ALG.SHA384, sel, banks)), createHash('sha384').update(concatBytes(b, c, a)).digest('hex'));
  t.equal(toHex(computePcrDigest(TPM_ALG.SHA256, [], banks)), createHash('sha256').digest('hex'), 'nothing selected');
  t.throws(() => computePcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA256, pcrs: [1, 2] }], banks), { code: 'TPM_PCRS_MALFORMED' }, 'missing value');
  t.throws(() => computePcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA384, pcrs: [1] }], banks), { code: 'TPM_PCRS_MALFORMED' }, 'missing bank');
  const wrongSize: PcrBanks = new Map([[TPM_ALG.SHA256, new Map([[1, a]])]]);
  t.throws(() => computePcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA256, pcrs: [1] }], wrongSize), { code: 'TPM_PCRS_MALFORMED' }, 'wrong size');
  t.throws(() => computePcrDigest(0x0012, sel, banks), { code: 'TPM_ALG_UNSUPPORTED' });
  t.throws(() => computePcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA256, pcrs: [7, 1] }], banks), { code: 'USAGE' }, 'not ascending');
});

t.test('a built serialized file decodes; padding and unused memory are ignored', async (t) => {
  const values = samplePcrValues();
  for (const filler of [0x00, 0xa5]) {
    const { selection, banks } = decodeSerializedPcrFile(buildSerializedPcrs({ filler }));
    t.same(selection, [{ hashAlg: TPM_ALG.SHA256, pcrs: NINE }]);
    NINE.forEach((pcr, i) => t.same([...(banks.get(TPM_ALG.SHA256)?.get(pcr) ?? [])], [...(values[i] ?? [])], `filler ${filler} PCR ${pcr}`));
  }
  // Bits past sizeofSelect in the 4-octet pcrSelect array do not count.
  const two = decodeSerializedPcrFile(
    buildSerializedPcrs({ selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 1, bitmap: [0x03, 0xff, 0xff, 0xff] }], lists: [values.slice(0, 2)] }),
  );
  t.same(two.selection, [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1] }]);
});

t.test('two banks: values pair with the banks in file order', async (t) => {
  const sha1 = [new Uint8Array(20).fill(0x10), new Uint8Array(20).fill(0x11)];
  const sha256 = [new Uint8Array(32).fill(0x20)];
  const bytes = buildSerializedPcrs({
    selections: [
      { hash: TPM_ALG.SHA1, sizeofSelect: 3, bitmap: [0x00, 0x00, 0x81] }, // PCRs 16, 23
      { hash: TPM_ALG.SHA256, sizeofSelect: 3, bitmap: [0x00, 0x04, 0x00] }, // PCR 10
    ],
    lists: [[...sha1, ...sha256]],
  });
  const { selection, banks } = decodeSerializedPcrFile(bytes);
  t.same(selection, [
    { hashAlg: TPM_ALG.SHA1, pcrs: [16, 23] },
    { hashAlg: TPM_ALG.SHA256, pcrs: [10] },
  ]);
  t.same([...banks.keys()], [TPM_ALG.SHA1, TPM_ALG.SHA256]);
  t.same([...(banks.get(TPM_ALG.SHA1)?.get(23) ?? [])], [...(sha1[1] ?? [])]);
  t.same([...(banks.get(TPM_ALG.SHA256)?.get(10) ?? [])], [...(sha256[0] ?? [])]);
  // A bank that selects nothing still appears, so banks mirror the selection.
  const empty = decodeSerializedPcrFile(
    buildSerializedPcrs({ selections: [{ hash: TPM_ALG.SHA1, sizeofSelect: 3, bitmap: [0, 0, 0] }, SHA256_0_7_10] }),
  );
  t.same([...empty.banks.keys()], [TPM_ALG.SHA1, TPM_ALG.SHA256]);
  t.equal(empty.banks.get(TPM_ALG.SHA1)?.size, 0);
});

t.test('malformed serialized files are TPM_PCRS_MALFORMED (or a more precise code)', async (t) => {
  const values = samplePcrValues();
  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'TPM_PCRS_MALFORMED'],
    ['17 banks', buildSerializedPcrs({ selectionCount: 17 }), 'TPM_PCRS_MALFORMED'],
    ['2^32-1 banks', buildSerializedPcrs({ selectionCount: 0xffffffff }), 'TPM_PCRS_MALFORMED'],
    ['sizeofSelect 5', buildSerializedPcrs({ selections: [{ hash: TPM_ALG.SHA256, sizeofSelect: 5, bitmap: [0xff, 4, 0, 0] }] }), 'TPM_PCRS_MALFORMED'],
    ['SM3 bank', buildSerializedPcrs({ selections: [{ hash: 0x0012, sizeofSelect: 3, bitmap: [0xff, 4, 0] }] }), 'TPM_ALG_UNSUPPORTED'],
    ['bank twice', buildSerializedPcrs({ selections: [SHA256_0_7_10, SHA256_0_7_10], lists: [values.slice(0, 8), values.slice(8), values.slice(0, 8), values.slice(8)] }), 'TPM_PCRS_MALFORMED'],
    ['33 lists', buildSerializedPcrs({ listCount: 33 }), 'TPM_PCRS_MALFORMED'],
    ['2^32-1 lists', buildSerializedPcrs({ listCount: 0xffffffff }), 'TPM_PCRS_MALFORMED'],
    ['list count says 3, 2 present', buildSerializedPcrs({ listCount: 3 }), 'TPM_PCRS_MALFORMED'],
    ['TPML_DIGEST.count 9', buildSerializedPcrs({ digestCounts: [9, 1] }), 'TPM_PCRS_MALFORMED'],
    ['value size 31', buildSerializedPcrs({ sizeOverride: [0, 3, 31] }), 'TPM_PCRS_MALFORMED'],
    ['value size 0xffff', buildSerializedPcrs({ sizeOverride: [1, 0, 0xffff] }), 'TPM_PCRS_MALFORMED'],
    ['fewer values than PCRs', buildSerializedPcrs({ lists: [values.slice(0, 8)] }), 'TPM_PCRS_MALFORMED'],
    ['more values than PCRs', buildSerializedPcrs({ lists: [values.slice(0, 8), values.slice(0, 2)] }), 'TPM_PCRS_MALFORMED'],
    ['a trailing byte', buildSerializedPcrs({ trailing: new Uint8Array(1) }), 'TPM_PCRS_MALFORMED'],
  ];
  for (const [what, bytes, code] of cases) t.throws(() => decodeSerializedPcrs(bytes), { code }, what);

  const f = await loadQuoteFixture('rsa-rsassa-sha256');
  for (let n = 0; n < f.pcrs.length; n++) t.throws(() => decodeSerializedPcrs(f.pcrs.subarray(0, n)), { code: 'TPM_PCRS_MALFORMED' }, `prefix of ${n} bytes of a real file`);
});

t.test('PCR selection text: parse and format', async (t) => {
  const nine = [{ hashAlg: TPM_ALG.SHA256, pcrs: NINE }];
  t.same(parsePcrSelectionSpec(DEFAULT_SPEC), nine);
  t.same(parsePcrSelectionSpec('sha256:0-7,10'), nine);
  t.same(parsePcrSelectionSpec('SHA256:10,7-0'.replace('7-0', '0-7')), nine, 'case-insensitive alg');
  t.same(parsePcrSelectionSpec('sha256:10,3,3,0-7'), nine, 'sorted, duplicates merged');
  t.same(parsePcrSelectionSpec('0x000b:1'), [{ hashAlg: TPM_ALG.SHA256, pcrs: [1] }]);
  t.same(parsePcrSelectionSpec('sha1:0,31+sha384:23'), [
    { hashAlg: TPM_ALG.SHA1, pcrs: [0, 31] },
    { hashAlg: TPM_ALG.SHA384, pcrs: [23] },
  ]);
  t.equal(formatPcrSelectionSpec(nine), DEFAULT_SPEC);
  t.equal(formatPcrSelectionSpec([{ hashAlg: 0x0012, pcrs: [1] }, { hashAlg: TPM_ALG.SHA512, pcrs: [2, 3] }]), '0x0012:1+sha512:2,3');
  for (const spec of ['sha256:0-7,10', 'sha1:1+sha256:2,3+sha512:31', '0x0012:4']) {
    t.same(parsePcrSelectionSpec(formatPcrSelectionSpec(parsePcrSelectionSpec(spec))), parsePcrSelectionSpec(spec), `round trip ${spec}`);
  }
  for (const bad of ['', 'sha256', 'sha256:', ':1', 'md5:1', 'sha256:32', 'sha256:7-3', 'sha256:1+sha256:2', 'sha256:a', ' sha256:1', 'sha256:1,', 'sha256:-1', 'sha256:100', 'sha256:1+', '0x:1', 'x'.repeat(2000)]) {
    t.throws(() => parsePcrSelectionSpec(bad), { code: 'TPM_PCR_SELECTION_SPEC_INVALID' }, JSON.stringify(bad.slice(0, 20)));
  }
  t.throws(() => parsePcrSelectionSpec(Array.from({ length: 17 }, (_, i) => `0x${(i + 1).toString(16)}:1`).join('+')), { code: 'TPM_PCR_SELECTION_SPEC_INVALID' }, '17 banks');
  t.throws(() => formatPcrSelectionSpec([{ hashAlg: TPM_ALG.SHA256, pcrs: [] }]), { code: 'TPM_PCR_SELECTION_SPEC_INVALID' });
});
