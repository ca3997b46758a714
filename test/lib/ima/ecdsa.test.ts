/**
 * ECDSA ima-sig signatures (P-256, P-384) made by the real `evmctl ima_sign` (ima-evm-utils,
 * independent of Bulwark): the key id evmctl writes is computeImaKeyId's, the signature
 * verifies (lib/ima verifyImaSignature, ECDSA over the prehashed file digest) and makes the
 * entry trusted under a runtime policy trusting the key; one signature byte changed, another
 * file's digest, a wrong algorithm or an untrusted key make it IMA_SIGNATURE_INVALID.
 */
import t from 'tap';
import { execa } from 'execa';
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildRuntimePolicy,
  computeImaKeyId,
  decodeImaSignature,
  encodeImaSignature,
  evaluateImaEntries,
  formatRuntimePolicy,
  HASH_ALGO,
  parseRuntimePolicy,
  verifyImaSignature,
  type RuntimePolicy,
} from '../../../lib/ima/index.js';
import { findingRows, verifiedEntries } from './ima-test-logs.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';

const dir = await mkdtemp(join(tmpdir(), 'bulwark-ima-ecdsa-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

function policyTrusting(...keys: KeyObject[]): RuntimePolicy {
  return parseRuntimePolicy({
    ...formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2026-12-01T00:00:00.000Z', generator: 'test' })),
    verificationKeys: keys.map((key) => ({ keyId: computeImaKeyId(key).toString(16).padStart(8, '0'), publicKey: key.export({ format: 'pem', type: 'spki' }).toString() })),
  });
}

/** An EC key and self-signed certificate made by openssl, as a distribution's IMA signing key is. */
async function opensslEcKey(curve: 'P-256' | 'P-384'): Promise<{ key: string; certDer: string; cert: X509Certificate }> {
  const key = join(dir, `${curve}.key.pem`);
  const certPem = join(dir, `${curve}.cert.pem`);
  const certDer = join(dir, `${curve}.cert.der`);
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-keyout', key, '-out', certPem, '-days', '2', '-nodes', '-subj', `/CN=bulwark-ima-${curve}`], {
    timeout: 30_000,
  });
  await execa('openssl', ['x509', '-in', certPem, '-outform', 'der', '-out', certDer], { timeout: 10_000 });
  return { key, certDer, cert: new X509Certificate(await readFile(certPem)) };
}

for (const [curve, hash] of [
  ['P-256', 'sha256'],
  ['P-384', 'sha384'],
  ['P-384', 'sha256'],
] as const) {
  t.test(`evmctl ima_sign with an ECDSA ${curve} key (${hash}) → trusted; one signature byte changed → IMA_SIGNATURE_INVALID`, async (t) => {
    const { key, certDer, cert } = await opensslEcKey(curve);
    const file = join(dir, `ls-${curve}-${hash}`);
    await copyFile('/usr/bin/ls', file);
    const signed = await execa('evmctl', ['ima_sign', '-v', '--sigfile', '--key', key, '-a', hash, file], { timeout: 20_000 });
    const xattr = await readFile(`${file}.sig`);
    const header = decodeImaSignature(xattr);
    const keyId = computeImaKeyId(cert.publicKey);
    t.equal(header.keyId, keyId, 'the key id evmctl wrote is computeImaKeyId of the EC key');
    t.match(`${signed.stdout}${signed.stderr}`, new RegExp(`keyid: ${keyId.toString(16).padStart(8, '0')}`), 'evmctl prints the same key id');
    t.equal(header.hashAlgo, hash === 'sha256' ? HASH_ALGO.SHA256 : HASH_ALGO.SHA384);
    t.equal(header.signature[0], 0x30, 'a DER SEQUENCE (Ecdsa-Sig-Value)');
    const v = await execa('evmctl', ['ima_verify', '--sigfile', '--key', certDer, file], { reject: false, timeout: 20_000 });
    t.equal(v.exitCode, 0, `evmctl ima_verify accepts it: ${v.stdout}${v.stderr}`);

    const digest = createHash(hash).update(await readFile(file)).digest();
    const keys = new Map([[keyId, cert.publicKey]]);
    t.same(verifyImaSignature(xattr, hash, digest, keys), { ok: true, keyId });

    // Every byte of the DER signature changed in turn: never accepted.
    let accepted = 0;
    for (let i = 9; i < xattr.length; i++) {
      const bad = Buffer.from(xattr);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      if (verifyImaSignature(bad, hash, digest, keys).ok) accepted++;
    }
    t.equal(accepted, 0, 'no single-bit change of the signature verifies');
    const otherDigest = createHash(hash).update('another file').digest();
    t.same(verifyImaSignature(xattr, hash, otherDigest, keys), { ok: false, reason: 'bad-signature', keyId }, 'another file digest');
    t.same(verifyImaSignature(xattr, hash === 'sha256' ? 'sha384' : 'sha256', digest, keys), { ok: false, reason: 'algorithm-mismatch', keyId }, 'the header names another algorithm');

    // Through the replay and the policy: trusted; one signature byte changed: IMA_SIGNATURE_INVALID.
    const bad = Buffer.from(xattr);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0x01;
    const b = new ImaLogBuilder();
    b.file('/usr/bin/ls', { digest, algorithm: hash, template: 'ima-sig', signature: xattr });
    const policy = policyTrusting(cert.publicKey);
    t.same(evaluateImaEntries(policy, verifiedEntries(b)), [], 'trusted by its ECDSA signature (no digest listed)');
    t.same(evaluateImaEntries(policy, verifiedEntries(b, 'ascii')), [], 'the same from the ASCII list');
    const tampered = new ImaLogBuilder();
    tampered.file('/usr/bin/ls', { digest, algorithm: hash, template: 'ima-sig', signature: bad });
    t.same(findingRows(evaluateImaEntries(policy, verifiedEntries(tampered))), [['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'bad-signature']], 'one signature byte changed');
    const other = generateKeyPairSync('ec', { namedCurve: curve }).publicKey;
    t.same(findingRows(evaluateImaEntries(policyTrusting(other), verifiedEntries(b))), [['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'untrusted-key']], 'a policy trusting another key');
    // The private key evmctl used signs what lib/ima verifies (and a raw r||s is not DER: refused).
    const priv = createPrivateKey(await readFile(key));
    const der = sign(null, digest, { key: priv, dsaEncoding: 'der' });
    t.notOk(verifyImaSignature(encodeImaSignature(header.hashAlgo, keyId, der), hash, digest, keys).ok, 'node signs the digest hashed again: not a signature over the digest itself');
    const rs = sign(hash, await readFile(file), { key: priv, dsaEncoding: 'ieee-p1363' });
    t.same(verifyImaSignature(encodeImaSignature(header.hashAlgo, keyId, rs), hash, digest, keys), { ok: false, reason: 'bad-signature', keyId }, 'raw r||s in the header is refused');
    const good = sign(hash, await readFile(file), { key: priv, dsaEncoding: 'der' });
    t.same(verifyImaSignature(encodeImaSignature(header.hashAlgo, keyId, good), hash, digest, keys), { ok: true, keyId }, 'a DER signature by node over the file verifies');
    t.same(
      verifyImaSignature(encodeImaSignature(header.hashAlgo, keyId, Buffer.concat([good, Buffer.of(0)])), hash, digest, keys),
      { ok: false, reason: 'bad-signature', keyId },
      'a byte after the DER signature is refused',
    );
  });
}

t.test('an EC key on a curve the kernel does not verify (secp256k1) is unsupported', async (t) => {
  const k = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const digest = createHash('sha256').update('x').digest();
  const sig = sign('sha256', Buffer.from('x'), { key: k.privateKey, dsaEncoding: 'der' });
  const keyId = computeImaKeyId(k.publicKey);
  t.same(verifyImaSignature(encodeImaSignature(HASH_ALGO.SHA256, keyId, sig), 'sha256', digest, new Map([[keyId, k.publicKey]])), { ok: false, reason: 'unsupported-key', keyId });
});
