import t from 'tap';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import type { ErrorCode } from '../../../lib/errors.js';
import { checkAkAttributes, computeName, decodeTpm2bPublic, decodeTpmtPublic, tpmtPublicToKeyObject } from '../../../lib/tpm/public.js';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT, type EccPublic, type RsaPublic, type TpmtPublic } from '../../../lib/tpm/types.js';
import { makeTempDir, removeDir, startTestTpms } from '../../helpers/swtpm.js';
import { fixturePath, num, readFixture, readFixtureJson, readFixtureText, str, strArray } from './fixture-files.js';
import { createPersistentAk, HANDLE, readPublic } from './swtpm-objects.js';
import { AK_ATTRIBUTES, writeEccPublic, writeRsaPublic, wrapTpm2b, type EccFields, type RsaFields } from './tpmt-builder.js';

function jwkOf(key: KeyObject): Record<string, unknown> {
  return { ...key.export({ format: 'jwk' }) };
}

async function fixtureRsa(name: string): Promise<RsaPublic> {
  const pub = decodeTpmtPublic(await readFixture('tpm', `${name}.tpmt`));
  if (pub.type !== 'rsa') throw new Error(`${name} is not RSA`);
  return pub;
}

async function fixtureEcc(name: string): Promise<EccPublic> {
  const pub = decodeTpmtPublic(await readFixture('tpm', `${name}.tpmt`));
  if (pub.type !== 'ecc') throw new Error(`${name} is not ECC`);
  return pub;
}

/** Each captured TPM object becomes a test: its Name, attributes and AK verdict as the TPM reported them. */
t.test('captured public areas decode to the Name the TPM reported', async (t) => {
  const files = (await readdir(fixturePath('tpm', ''))).filter((f) => f.endsWith('.tpmt') && !f.startsWith('sw-'));
  t.same(files.sort(), ['ecc-ak.tpmt', 'ecc-p384-ek.tpmt', 'rsa-ak.tpmt', 'rsa-ek.tpmt']);
  for (const file of files) {
    const base = file.replace(/\.tpmt$/, '');
    t.test(base, async (t) => {
      const bytes = await readFixture('tpm', file);
      const expected = await readFixtureJson('tpm', `${base}.json`);
      const pub = decodeTpmtPublic(bytes);
      t.equal(toHex(computeName(pub)), str(expected, 'name'), 'Name = nameAlg || H(TPMT_PUBLIC) as the TPM computed it');
      t.equal(pub.objectAttributes, num(expected, 'objectAttributes'));
      t.equal(toHex(pub.encoded), toHex(bytes));
      const findings = checkAkAttributes(pub);
      t.same(
        findings.map((f) => f.details?.['attribute']),
        strArray(expected, 'akFindings'),
      );
      t.ok(findings.every((f) => f.code === 'AK_ATTRIBUTES_INVALID'));
      const viaTpm2b = decodeTpm2bPublic(wrapTpm2b(bytes));
      t.equal(toHex(computeName(viaTpm2b)), str(expected, 'name'), 'the TPM2B_PUBLIC form decodes to the same object');
      t.equal(tpmtPublicToKeyObject(pub).asymmetricKeyType, pub.type === 'rsa' ? 'rsa' : 'ec');
    });
  }
});

t.test('decoded fields of the swtpm EKs and AKs', async (t) => {
  const rsaEk = await fixtureRsa('rsa-ek');
  t.equal(rsaEk.nameAlg, TPM_ALG.SHA256);
  t.same(rsaEk.symmetric, { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
  t.equal(rsaEk.scheme, null);
  t.equal(rsaEk.keyBits, 2048);
  t.equal(rsaEk.exponent, 65537, 'the TPM encodes exponent 0 for 65537');
  t.equal(rsaEk.modulus.length, 256);
  t.equal(rsaEk.authPolicy.length, 32);

  const eccEk = await fixtureEcc('ecc-p384-ek');
  t.equal(eccEk.nameAlg, TPM_ALG.SHA384);
  t.same(eccEk.symmetric, { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB });
  t.equal(eccEk.curveId, TPM_ECC_CURVE.NIST_P384);
  t.equal(eccEk.kdf, null);
  t.equal(eccEk.x.length, 48);
  t.equal(eccEk.y.length, 48);
  t.equal(computeName(eccEk).length, 2 + 48);

  const rsaAk = await fixtureRsa('rsa-ak');
  t.same(rsaAk.scheme, { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
  t.equal(rsaAk.symmetric, null);
  const eccAk = await fixtureEcc('ecc-ak');
  t.same(eccAk.scheme, { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 });
  t.equal(eccAk.curveId, TPM_ECC_CURVE.NIST_P256);
});

t.test('software-key public areas carry exactly the key of their PEM', async (t) => {
  for (const base of ['sw-rsa-ek', 'sw-ecc-p384-ek']) {
    const pub = decodeTpmtPublic(await readFixture('tpm', `${base}.tpmt`));
    const expected = createPublicKey(await readFixtureText('tpm', `${base}.key.pem`));
    t.same(jwkOf(tpmtPublicToKeyObject(pub)), jwkOf(expected), base);
  }
});

t.test('truncation at every offset, and trailing bytes, are typed errors', async (t) => {
  for (const name of ['rsa-ak', 'ecc-ak', 'rsa-ek', 'ecc-p384-ek']) {
    const bytes = await readFixture('tpm', `${name}.tpmt`);
    for (let n = 0; n < bytes.length; n++) t.throws(() => decodeTpmtPublic(bytes.subarray(0, n)), { code: 'TPM_PUBLIC_MALFORMED' }, `${name}: prefix of ${n} bytes`);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    t.throws(() => decodeTpmtPublic(longer), { code: 'BYTES_TRAILING' }, `${name}: one trailing byte`);
    const wrapped = wrapTpm2b(bytes);
    t.throws(() => decodeTpm2bPublic(wrapped.subarray(0, wrapped.length - 1)), { code: 'TPM_PUBLIC_MALFORMED' }, `${name}: TPM2B size beyond the bytes`);
    t.throws(() => decodeTpm2bPublic(Uint8Array.of(...wrapped, 0)), { code: 'BYTES_TRAILING' }, `${name}: bytes after the TPM2B`);
  }
});

t.test('the decoded object does not change when the caller reuses its buffer', async (t) => {
  const bytes = await readFixture('tpm', 'rsa-ak.tpmt');
  const pub = decodeTpmtPublic(bytes);
  const name = toHex(computeName(pub));
  bytes.fill(0);
  t.equal(toHex(computeName(pub)), name);
  t.not(toHex(pub.encoded), toHex(bytes));
});

/** A valid AK-like RSA public area, field by field; each edge case changes one field. */
function rsaFields(over: Partial<RsaFields> = {}): RsaFields {
  const modulus = new Uint8Array(256).fill(0xa5);
  modulus[0] = 0xc1; // top bit set
  modulus[255] = 0x01; // odd
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    symmetric: null,
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
    modulus,
    ...over,
  };
}

function eccFieldsFor(key: KeyObject, over: Partial<EccFields> = {}): EccFields {
  const jwk = key.export({ format: 'jwk' });
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    symmetric: null,
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: null,
    x: new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url')),
    y: new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url')),
    ...over,
  };
}

t.test('edge cases built field by field', async (t) => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  t.doesNotThrow(() => decodeTpmtPublic(writeRsaPublic(rsaFields())), 'the base case decodes');
  t.doesNotThrow(() => decodeTpmtPublic(writeEccPublic(eccFieldsFor(p256))), 'the ECC base case decodes');

  const cases: ReadonlyArray<readonly [string, Uint8Array, ErrorCode]> = [
    ['modulus shorter than keyBits', writeRsaPublic(rsaFields({ modulus: new Uint8Array(255).fill(0x81) })), 'TPM_PUBLIC_MALFORMED'],
    ['keyBits 0 with an empty modulus', writeRsaPublic(rsaFields({ keyBits: 0, modulus: new Uint8Array(0) })), 'TPM_PUBLIC_MALFORMED'],
    ['keyBits not a multiple of 8', writeRsaPublic(rsaFields({ keyBits: 2047 })), 'TPM_PUBLIC_MALFORMED'],
    ['modulus over MAX_RSA_KEY_BYTES', writeRsaPublic(rsaFields({ keyBits: 4104, modulus: new Uint8Array(513).fill(0x81) })), 'BYTES_LENGTH_EXCEEDS_CAP'],
    ['authPolicy over a SHA-512 digest', writeRsaPublic(rsaFields({ authPolicy: new Uint8Array(65) })), 'BYTES_LENGTH_EXCEEDS_CAP'],
    ['authPolicy not of nameAlg size', writeRsaPublic(rsaFields({ authPolicy: new Uint8Array(20) })), 'TPM_PUBLIC_MALFORMED'],
    ['symmetric XOR (not a TPMI_ALG_SYM_OBJECT)', writeRsaPublic(rsaFields({ symmetric: { algorithm: 0x000a, keyBits: 128, mode: TPM_ALG.CFB } })), 'TPM_PUBLIC_UNSUPPORTED'],
    ['RSA key with an ECDSA scheme', writeRsaPublic(rsaFields({ scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } })), 'TPM_PUBLIC_UNSUPPORTED'],
    ['ECC key with an RSASSA scheme', writeEccPublic(eccFieldsFor(p256, { scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 } })), 'TPM_PUBLIC_UNSUPPORTED'],
    ['unknown KDF scheme', writeEccPublic(eccFieldsFor(p256, { kdf: { scheme: 0x7777, hashAlg: TPM_ALG.SHA256 } })), 'TPM_PUBLIC_UNSUPPORTED'],
    ['P-256 coordinate of 33 bytes', writeEccPublic(eccFieldsFor(p256, { x: new Uint8Array(33) })), 'BYTES_LENGTH_EXCEEDS_CAP'],
    ['empty y coordinate', writeEccPublic(eccFieldsFor(p256, { y: new Uint8Array(0) })), 'TPM_PUBLIC_MALFORMED'],
    ['KEYEDHASH object', Uint8Array.of(0x00, 0x08, 0x00, 0x0b, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x10, 0, 0), 'TPM_PUBLIC_UNSUPPORTED'],
    ['more than 1024 bytes', new Uint8Array(1025), 'BYTES_LENGTH_EXCEEDS_CAP'],
    ['empty input', new Uint8Array(0), 'TPM_PUBLIC_MALFORMED'],
  ];
  for (const [what, bytes, code] of cases) t.throws(() => decodeTpmtPublic(bytes), { code }, what);
  t.throws(() => decodeTpm2bPublic(Uint8Array.of(0xff, 0xff)), { code: 'BYTES_LENGTH_EXCEEDS_CAP' }, 'TPM2B_PUBLIC declaring 65535 bytes');

  const rsaes = decodeTpmtPublic(writeRsaPublic(rsaFields({ scheme: { scheme: TPM_ALG.RSAES, hashAlg: TPM_ALG.NULL } })));
  t.same(rsaes.scheme, { scheme: TPM_ALG.RSAES, hashAlg: TPM_ALG.NULL }, 'RSAES has no hash on the wire');
  const three = decodeTpmtPublic(writeRsaPublic(rsaFields({ exponent: 3 })));
  t.equal(three.type === 'rsa' ? three.exponent : 0, 3, 'a non-default exponent is kept');

  // TPMS_SCHEME_ECDAA: hashAlg then a u16 count — the only scheme with two fields.
  const ecdaa = writeEccPublic(eccFieldsFor(p256, { scheme: null }));
  // Offsets: type 0, nameAlg 2, objectAttributes 4, authPolicy (empty) 8, symmetric 10, scheme 12.
  const withCount = Uint8Array.of(...ecdaa.subarray(0, 12), 0x00, 0x1a, 0x00, 0x0b, 0x00, 0x07, ...ecdaa.subarray(14));
  const decodedEcdaa = decodeTpmtPublic(withCount);
  t.same(decodedEcdaa.scheme, { scheme: 0x001a, hashAlg: TPM_ALG.SHA256 });
  t.equal(toHex(decodedEcdaa.encoded), toHex(withCount));
});

t.test('key conversion refuses keys that are not keys', async (t) => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const good = decodeTpmtPublic(writeEccPublic(eccFieldsFor(p256)));
  t.same(jwkOf(tpmtPublicToKeyObject(good)), jwkOf(p256), 'a P-256 point converts to the same key');
  const offCurve = eccFieldsFor(p256);
  const cases: ReadonlyArray<readonly [string, TpmtPublic]> = [
    ['ECC point off the curve', decodeTpmtPublic(writeEccPublic({ ...offCurve, y: offCurve.x }))],
    ['curve BN P-256 (not NIST)', decodeTpmtPublic(writeEccPublic(eccFieldsFor(p256, { curveId: 0x0010 })))],
    ['even modulus', decodeTpmtPublic(writeRsaPublic(rsaFields({ modulus: Uint8Array.of(0xc1, ...new Uint8Array(254).fill(0xa5), 0x02) })))],
    ['modulus top bit clear', decodeTpmtPublic(writeRsaPublic(rsaFields({ modulus: Uint8Array.of(0x41, ...new Uint8Array(254).fill(0xa5), 0x01) })))],
    ['even exponent', decodeTpmtPublic(writeRsaPublic(rsaFields({ exponent: 65536 })))],
    ['exponent 1', decodeTpmtPublic(writeRsaPublic(rsaFields({ exponent: 1 })))],
  ];
  for (const [what, pub] of cases) t.throws(() => tpmtPublicToKeyObject(pub), { code: 'KEY_INVALID' }, what);

  // A coordinate the TPM sent without its leading zero octet is padded back.
  let withZero: KeyObject | undefined;
  for (let i = 0; i < 5000 && withZero === undefined; i++) {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    if (Buffer.from(k.export({ format: 'jwk' }).x ?? '', 'base64url')[0] === 0) withZero = k;
  }
  if (withZero === undefined) throw new Error('no P-256 key with a leading zero x found');
  const fields = eccFieldsFor(withZero);
  const short = decodeTpmtPublic(writeEccPublic({ ...fields, x: fields.x.subarray(1) }));
  t.same(jwkOf(tpmtPublicToKeyObject(short)), jwkOf(withZero), 'a 31-byte x is the same key');
});

t.test('computeName needs a nameAlg with a known hash', async (t) => {
  const ak = await fixtureRsa('rsa-ak');
  t.throws(() => computeName({ ...ak, nameAlg: TPM_ALG.NULL }), { code: 'TPM_ALG_UNSUPPORTED' });
  t.throws(() => computeName({ ...ak, nameAlg: 0x0012 /* SM3_256 */ }), { code: 'TPM_ALG_UNSUPPORTED' });
});

t.test('checkAkAttributes names each violation', async (t) => {
  const rsa = await fixtureRsa('rsa-ak');
  const ecc = await fixtureEcc('ecc-ak');
  t.same(checkAkAttributes(rsa), [], 'the tpm2_createak RSA AK passes');
  t.same(checkAkAttributes(ecc), [], 'the tpm2_createak ECC AK passes');
  const attrs = rsa.objectAttributes;
  const cases: ReadonlyArray<readonly [string, TpmtPublic, readonly string[]]> = [
    ['decrypt set', { ...rsa, objectAttributes: attrs | TPMA_OBJECT.decrypt }, ['decrypt']],
    ['restricted clear', { ...rsa, objectAttributes: attrs & ~TPMA_OBJECT.restricted }, ['restricted']],
    ['sign clear', { ...rsa, objectAttributes: attrs & ~TPMA_OBJECT.sign }, ['sign']],
    ['fixedTPM clear (duplicable)', { ...rsa, objectAttributes: attrs & ~TPMA_OBJECT.fixedTPM }, ['fixedTPM']],
    ['fixedParent clear', { ...rsa, objectAttributes: attrs & ~TPMA_OBJECT.fixedParent }, ['fixedParent']],
    ['sensitiveDataOrigin clear (imported key)', { ...rsa, objectAttributes: attrs & ~TPMA_OBJECT.sensitiveDataOrigin }, ['sensitiveDataOrigin']],
    ['nameAlg sha1', { ...rsa, nameAlg: TPM_ALG.SHA1 }, ['nameAlg']],
    ['no signing scheme', { ...rsa, scheme: null }, ['scheme']],
    ['RSAES scheme', { ...rsa, scheme: { scheme: TPM_ALG.RSAES, hashAlg: TPM_ALG.NULL } }, ['scheme']],
    ['RSASSA with sha1', { ...rsa, scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA1 } }, ['scheme.hashAlg']],
    ['a symmetric algorithm', { ...rsa, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } }, ['symmetric']],
    ['RSA-1024', { ...rsa, keyBits: 1024 }, ['keyBits']],
    ['ECDH scheme', { ...ecc, scheme: { scheme: TPM_ALG.ECDH, hashAlg: TPM_ALG.SHA256 } }, ['scheme']],
    ['BN P-256 curve', { ...ecc, curveId: 0x0010 }, ['curveId']],
    ['a storage key', { ...rsa, objectAttributes: (attrs | TPMA_OBJECT.decrypt) & ~TPMA_OBJECT.sign, scheme: null }, ['sign', 'decrypt', 'scheme']],
  ];
  for (const [what, pub, attributes] of cases) {
    const findings = checkAkAttributes(pub);
    t.same(
      findings.map((f) => f.details?.['attribute']),
      attributes,
      what,
    );
    t.ok(findings.every((f) => f.code === 'AK_ATTRIBUTES_INVALID'));
  }
  t.same(checkAkAttributes({ ...rsa, scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA384 } }), [], 'RSAPSS with sha384 is fine');
  t.same(checkAkAttributes({ ...ecc, nameAlg: TPM_ALG.SHA512, scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA512 } }), [], 'sha512 is fine');
});

t.test('a real swtpm: AKs from tpm2_createak and the provisioned EKs', async (t) => {
  const root = await makeTempDir('public');
  const fleet = await startTestTpms(root, 1);
  t.teardown(async () => {
    await fleet.stop();
    await removeDir(root);
  });
  const tpm = fleet.tpms[0];
  if (tpm === undefined) throw new Error('no TPM');
  const work = join(root, 'work');
  await mkdir(work);
  const rsaAk = await createPersistentAk(tpm, work, 'rsa', HANDLE.rsaAk);
  const eccAk = await createPersistentAk(tpm, work, 'ecc', HANDLE.eccAk);

  for (const [what, handle, isAk] of [
    ['RSA AK', HANDLE.rsaAk, true],
    ['ECC P-256 AK', HANDLE.eccAk, true],
    ['RSA EK', HANDLE.rsaEk, false],
    ['ECC P-384 EK', HANDLE.eccP384Ek, false],
  ] as const) {
    const read = await readPublic(tpm, handle, work);
    const pub = decodeTpm2bPublic(read.tpm2b);
    t.equal(toHex(computeName(pub)), toHex(read.name), `${what}: Name equals tpm2_readpublic -n`);
    t.equal(toHex(computeName(pub)), read.printedName, `${what}: Name equals the printed name`);
    t.equal(pub.objectAttributes, read.printedAttributes, `${what}: attributes as printed`);
    const pemFile = join(work, `${handle}.pem`);
    await tpm.tool('tpm2_readpublic', ['-c', handle, '-f', 'pem', '-o', pemFile]);
    const toolKey = createPublicKey(await readFile(pemFile));
    t.same(jwkOf(tpmtPublicToKeyObject(pub)), jwkOf(toolKey), `${what}: key equals tpm2_readpublic -f pem`);
    const findings = checkAkAttributes(pub);
    if (isAk) {
      t.same(findings, [], `${what}: passes the AK checks`);
    } else {
      t.ok(
        findings.some((f) => f.code === 'AK_ATTRIBUTES_INVALID' && f.details?.['attribute'] === 'decrypt'),
        `${what}: refused as an AK because it decrypts`,
      );
    }
  }
  t.equal(toHex(computeName(decodeTpm2bPublic(rsaAk.tpm2b))), toHex(rsaAk.name), 'tpm2_createak -n agrees for the RSA AK');
  t.equal(toHex(computeName(decodeTpm2bPublic(eccAk.tpm2b))), toHex(eccAk.name), 'tpm2_createak -n agrees for the ECC AK');
});
