import t from 'tap';
import { createHash, createHmac, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { concatBytes, fromHex, toHex } from '../../../lib/bytes.js';
import { kdfa, kdfe, makeCredential, protectCredential } from '../../../lib/tpm/credential.js';
import { decodeTpm2ToolsCredential, encodeTpm2ToolsCredential } from '../../../lib/tpm/credential-file.js';
import { computeName, decodeTpm2bPublic, decodeTpmtPublic } from '../../../lib/tpm/public.js';
import { HASH_ALGS, TPM_ALG, type EccPublic } from '../../../lib/tpm/types.js';
import { makeTempDir, removeDir, startTestTpms } from '../../helpers/swtpm.js';
import { readFixture, readFixtureJson, readFixtureText, str } from './fixture-files.js';
import { activateCredential, createPersistentAk, HANDLE, readPublic } from './swtpm-objects.js';
import { recoverSeed, softwareActivate } from './software-activate.js';
import { wrapTpm2b } from './tpmt-builder.js';

function u32(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}


t.test('KDFa follows SP800-108 counter mode as Part 1, 11.4.10.2 states it', async (t) => {
  const key = fromHex('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');
  const u = fromHex('000b0102');
  const v = fromHex('0304');
  // K(1) || K(2) with K(i) = HMAC(key, [i]32 || "STORAGE" || 00 || u || v || [bits]32)
  const block = (i: number, bits: number): Uint8Array =>
    new Uint8Array(createHmac('sha256', key).update(concatBytes(u32(i), new TextEncoder().encode('STORAGE'), Uint8Array.of(0), u, v, u32(bits))).digest());
  t.equal(toHex(kdfa(TPM_ALG.SHA256, key, 'STORAGE', u, v, 128)), toHex(block(1, 128).subarray(0, 16)));
  t.equal(toHex(kdfa(TPM_ALG.SHA256, key, 'STORAGE', u, v, 384)), toHex(concatBytes(block(1, 384), block(2, 384)).subarray(0, 48)));
  t.equal(toHex(kdfa(TPM_ALG.SHA256, key, 'STORAGE\0', u, v, 128)), toHex(kdfa(TPM_ALG.SHA256, key, 'STORAGE', u, v, 128)), 'a NUL-terminated label gets no second NUL');
  t.not(toHex(kdfa(TPM_ALG.SHA256, key, 'INTEGRITY', u, v, 128)), toHex(kdfa(TPM_ALG.SHA256, key, 'STORAGE', u, v, 128)));
  const twelve = kdfa(TPM_ALG.SHA256, key, 'STORAGE', u, v, 12);
  t.equal(twelve.length, 2);
  t.equal((twelve[0] ?? 0xff) & 0xf0, 0, 'the top bits beyond the requested 12 are cleared');
  t.equal(kdfa(TPM_ALG.SHA384, key, 'X', u, v, 384).length, 48);
  for (const bits of [0, -8, 1.5, 1 << 20, Number.NaN]) t.throws(() => kdfa(TPM_ALG.SHA256, key, 'X', u, v, bits), { code: 'USAGE' }, `bits ${bits}`);
  t.throws(() => kdfa(0x0012, key, 'X', u, v, 128), { code: 'TPM_ALG_UNSUPPORTED' });
});

t.test('KDFe follows SP800-56A as Part 1, 11.4.10.3 states it', async (t) => {
  const z = randomBytes(48);
  const pu = randomBytes(48);
  const pv = randomBytes(48);
  // K(i) = H([i]32 || Z || "IDENTITY" || 00 || partyUInfo || partyVInfo)
  const block = (i: number): Uint8Array => new Uint8Array(createHash('sha384').update(concatBytes(u32(i), z, new TextEncoder().encode('IDENTITY'), Uint8Array.of(0), pu, pv)).digest());
  t.equal(toHex(kdfe(TPM_ALG.SHA384, z, 'IDENTITY', pu, pv, 384)), toHex(block(1)));
  t.equal(toHex(kdfe(TPM_ALG.SHA384, z, 'IDENTITY', pu, pv, 512)), toHex(concatBytes(block(1), block(2)).subarray(0, 64)));
  t.equal(toHex(kdfe(TPM_ALG.SHA384, z, 'IDENTITY\0', pu, pv, 384)), toHex(block(1)));
  t.throws(() => kdfe(TPM_ALG.SHA384, z, 'IDENTITY', pu, pv, 0), { code: 'USAGE' });
});

/** Known answers from tpm2_makecredential (tpm2-tools 5.4) for software EKs whose private keys the fixtures hold. */
for (const base of ['sw-rsa-ek', 'sw-ecc-p384-ek']) {
  t.test(`${base}: byte-exact with tpm2_makecredential`, async (t) => {
    const ek = decodeTpmtPublic(await readFixture('tpm', `${base}.tpmt`));
    const ekPrivate = createPrivateKey(await readFixtureText('tpm', `${base}.key.pem`));
    const meta = await readFixtureJson('tpm', `${base}.json`);
    const akName = fromHex(str(meta, 'akName'));
    const secret = fromHex(str(meta, 'secret'));
    const theirs = decodeTpm2ToolsCredential(await readFixture('tpm', `${base}.cred`));

    const seed = recoverSeed(ek, ekPrivate, theirs.encryptedSecret);
    t.equal(seed.length, HASH_ALGS.get(ek.nameAlg)?.size, 'the seed is one nameAlg digest long');
    t.equal(toHex(protectCredential(ek.nameAlg, ek.symmetric, seed, akName, secret)), toHex(theirs.idObject), 'KDFa, AES-CFB and HMAC give tpm2-tools’ idObject');
    if (ek.type === 'rsa') {
      const ours = makeCredential(ek, akName, secret, () => seed);
      t.equal(toHex(ours.idObject), toHex(theirs.idObject), 'makeCredential with the same seed gives the same idObject');
    }

    const ours = makeCredential(ek, akName, secret);
    const recovered = softwareActivate(ek, ekPrivate, akName, ours);
    t.equal(recovered === null ? 'integrity failure' : toHex(recovered), toHex(secret), 'our credential activates in software');
    const otherName = concatBytes(akName.subarray(0, 2), new Uint8Array(akName.length - 2).fill(7));
    t.equal(softwareActivate(ek, ekPrivate, otherName, ours), null, 'with another AK name the integrity check fails');
    t.equal(softwareActivate(ek, ekPrivate, akName, theirs) === null ? 'fail' : 'ok', 'ok', 'the software activation accepts tpm2-tools’ credential too');
  });
}

t.test('makeCredential refuses what the TPM would refuse', async (t) => {
  const rsaEk = decodeTpmtPublic(await readFixture('tpm', 'rsa-ek.tpmt'));
  const eccEk = decodeTpmtPublic(await readFixture('tpm', 'ecc-p384-ek.tpmt'));
  const ak = decodeTpmtPublic(await readFixture('tpm', 'rsa-ak.tpmt'));
  const name = computeName(ak);
  t.doesNotThrow(() => makeCredential(rsaEk, name, new Uint8Array(32)), '32 bytes fit a sha256 EK');
  t.throws(() => makeCredential(rsaEk, name, new Uint8Array(33)), { code: 'USAGE' }, '33 bytes do not fit a sha256 EK (TPM_RC_SIZE)');
  t.doesNotThrow(() => makeCredential(eccEk, name, new Uint8Array(48)), '48 bytes fit the sha384 P-384 EK');
  t.throws(() => makeCredential(eccEk, name, new Uint8Array(49)), { code: 'USAGE' });
  t.throws(() => makeCredential(rsaEk, name, new Uint8Array(0)), { code: 'USAGE' }, 'an empty secret');
  t.throws(() => makeCredential(rsaEk, name.subarray(0, 20), new Uint8Array(32)), { code: 'USAGE' }, 'a truncated Name');
  t.throws(() => makeCredential(rsaEk, Uint8Array.of(0x00, 0x12, ...new Uint8Array(32)), new Uint8Array(32)), { code: 'USAGE' }, 'a Name with an unknown nameAlg');
  t.throws(() => makeCredential(ak, name, new Uint8Array(32)), { code: 'KEY_INVALID' }, 'an AK is not a decryption key');
  t.throws(() => makeCredential({ ...rsaEk, symmetric: null }, name, new Uint8Array(32)), { code: 'TPM_ALG_UNSUPPORTED' }, 'an EK without a symmetric algorithm');
  t.throws(() => makeCredential({ ...rsaEk, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: 0x0044 } }, name, new Uint8Array(32)), { code: 'TPM_ALG_UNSUPPORTED' }, 'AES-CBC');
  t.throws(() => makeCredential({ ...rsaEk, nameAlg: TPM_ALG.NULL }, name, new Uint8Array(32)), { code: 'TPM_ALG_UNSUPPORTED' });
  if (eccEk.type !== 'ecc') throw new Error('not ECC');
  const offCurve: EccPublic = { ...eccEk, y: eccEk.x };
  t.throws(() => makeCredential(offCurve, name, new Uint8Array(32)), { code: 'KEY_INVALID' }, 'an EK point off the curve');
  t.throws(() => makeCredential(rsaEk, name, new Uint8Array(32), (n) => new Uint8Array(n - 1)), { code: 'USAGE' }, 'random() of the wrong length');
  t.throws(() => makeCredential(eccEk, name, new Uint8Array(32), (n) => new Uint8Array(n).fill(0xff)), { code: 'INTERNAL' }, 'no valid ephemeral scalar');
});

t.test('the ECC ephemeral key comes from random(), so a scripted random() repeats', async (t) => {
  const eccEk = decodeTpmtPublic(await readFixture('tpm', 'ecc-p384-ek.tpmt'));
  const name = computeName(decodeTpmtPublic(await readFixture('tpm', 'ecc-ak.tpmt')));
  const scripted = (): ((n: number) => Uint8Array) => {
    let call = 0;
    // First draw is not below the group order and must be drawn again.
    return (n) => (call++ === 0 ? new Uint8Array(n).fill(0xff) : new Uint8Array(n).fill(0x11));
  };
  const a = makeCredential(eccEk, name, new Uint8Array(32).fill(1), scripted());
  const b = makeCredential(eccEk, name, new Uint8Array(32).fill(1), scripted());
  t.equal(toHex(a.encryptedSecret), toHex(b.encryptedSecret));
  t.equal(toHex(a.idObject), toHex(b.idObject));
  const c = makeCredential(eccEk, name, new Uint8Array(32).fill(1));
  t.not(toHex(c.encryptedSecret), toHex(a.encryptedSecret), 'the default random differs');
  t.equal(a.encryptedSecret.length, 2 + 48 + 2 + 48, 'TPMS_ECC_POINT of a P-384 point');
  // A software P-256 EK-shaped key exercises the other curve size.
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  if (eccEk.type !== 'ecc') throw new Error('fixture is not ECC');
  const p256Ek: EccPublic = {
    ...eccEk,
    curveId: 0x0003,
    nameAlg: TPM_ALG.SHA256,
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    x: new Uint8Array(Buffer.from(p256.x ?? '', 'base64url')),
    y: new Uint8Array(Buffer.from(p256.y ?? '', 'base64url')),
  };
  t.equal(makeCredential(p256Ek, name, new Uint8Array(32)).encryptedSecret.length, 2 + 32 + 2 + 32);
});

t.test('a real swtpm activates our credentials (RSA EK and ECC P-384 EK)', async (t) => {
  const root = await makeTempDir('credential');
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
  const rsaEk = decodeTpm2bPublic((await readPublic(tpm, HANDLE.rsaEk, work)).tpm2b);
  const eccEk = decodeTpm2bPublic((await readPublic(tpm, HANDLE.eccP384Ek, work)).tpm2b);
  t.same(eccEk.symmetric, { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB }, 'swtpm’s P-384 EK protects with AES-256-CFB');
  t.equal(eccEk.nameAlg, TPM_ALG.SHA384, 'and uses sha384 as nameAlg');

  const aks = [
    { what: 'RSA AK', handle: HANDLE.rsaAk, name: computeName(decodeTpm2bPublic(rsaAk.tpm2b)) },
    { what: 'ECC AK', handle: HANDLE.eccAk, name: computeName(decodeTpm2bPublic(eccAk.tpm2b)) },
  ];
  const eks = [
    { what: 'RSA EK', handle: HANDLE.rsaEk, pub: rsaEk, secretSize: 32 },
    { what: 'P-384 EK', handle: HANDLE.eccP384Ek, pub: eccEk, secretSize: 48 },
  ];
  for (const ek of eks) {
    for (const ak of aks) {
      const secret = new Uint8Array(randomBytes(ek.secretSize));
      const file = encodeTpm2ToolsCredential(makeCredential(ek.pub, ak.name, secret));
      const out = await activateCredential(tpm, work, ak.handle, ek.handle, ek.pub, file);
      t.equal(toHex(out), toHex(secret), `${ek.what} + ${ak.what}: the TPM recovers the secret`);
    }
    // Wrapped for the ECC AK's name, activated with the RSA AK: the TPM's integrity check fails.
    const wrong = encodeTpm2ToolsCredential(makeCredential(ek.pub, aks[1]?.name ?? new Uint8Array(0), new Uint8Array(16).fill(9)));
    const err = await activateCredential(tpm, work, HANDLE.rsaAk, ek.handle, ek.pub, wrong).then(
      () => 'activated',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    t.match(err, /integrity check failed/, `${ek.what}: a credential for another AK name is refused by the TPM`);
  }

  // tpm2_makecredential's own output: decodes, re-encodes byte for byte, and activates.
  for (const ek of eks) {
    const secret = new Uint8Array(randomBytes(32));
    await writeFile(join(work, 'tool.secret'), secret);
    await writeFile(join(work, 'tool-ek.pub'), wrapTpm2b(ek.pub.encoded));
    await tpm.tool('tpm2_makecredential', ['-T', 'none', '-u', join(work, 'tool-ek.pub'), '-s', join(work, 'tool.secret'), '-n', toHex(aks[0]?.name ?? new Uint8Array(0)), '-o', join(work, 'tool.cred')]);
    const fileBytes = new Uint8Array(await readFile(join(work, 'tool.cred')));
    const blob = decodeTpm2ToolsCredential(fileBytes);
    t.equal(toHex(encodeTpm2ToolsCredential(blob)), toHex(fileBytes), `${ek.what}: the tpm2-tools credential file round-trips`);
    t.equal(blob.encryptedSecret.length, ek.pub.type === 'rsa' ? 256 : 2 + 48 + 2 + 48, `${ek.what}: encryptedSecret has the same shape as ours`);
    const ours = makeCredential(ek.pub, aks[0]?.name ?? new Uint8Array(0), secret);
    t.equal(ours.idObject.length, blob.idObject.length, `${ek.what}: idObject has the same length as ours`);
    const out = await activateCredential(tpm, work, HANDLE.rsaAk, ek.handle, ek.pub, fileBytes);
    t.equal(toHex(out), toHex(secret), `${ek.what}: tpm2_makecredential’s credential activates too`);
  }
});
