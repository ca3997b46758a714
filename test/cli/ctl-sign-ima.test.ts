/**
 * `bulwarkctl sign ima`: IMA v2 signatures made through a SoftHSM2 key (RSA-2048, ECDSA
 * P-256 and P-384: CKM_ECDSA's raw r||s made DER) are accepted by `evmctl ima_verify`
 * (ima-evm-utils, independent) and by lib/ima, name the key id
 * evmctl computes, are refused for an altered file or another key, and the manifest mode
 * writes no xattr. Needs root (security.* xattrs).
 */
import t from 'tap';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { fromHex } from '../../lib/bytes.js';
import {
  buildRuntimePolicy,
  computeImaKeyId,
  decodeImaSignature,
  evaluateImaEntries,
  formatRuntimePolicy,
  HASH_ALGO,
  initialImaReplayState,
  parseImaBinary,
  parseRuntimePolicy,
  replayImaEntries,
  verifyImaSignature,
} from '../../lib/ima/index.js';
import { TPM_ALG } from '../../lib/tpm/index.js';
import { ImaLogBuilder } from '../helpers/ima-builder.js';
import { softwareQuote } from '../lib/eventlog/eventlog-helpers.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));
const PIN = '55443322';
const soft = await startSoftHsm('sign-ima');
t.teardown(() => soft.cleanup());
await soft.initToken('ima', PIN);
const env = { ...soft.env, BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN };

async function ctl(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await execa('node', [CTL_MAIN, ...args], { env, extendEnv: false, reject: false, stripFinalNewline: false, timeout: 120_000 });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr };
}

/** A root filesystem with a few files, a nested directory and a symlink (not signed). */
async function makeRootfs(name: string): Promise<{ dir: string; files: string[] }> {
  const dir = join(soft.dir, name);
  await mkdir(join(dir, 'usr', 'bin'), { recursive: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  const files = [join(dir, 'usr', 'bin', 'tool'), join(dir, 'etc', 'app.conf'), join(dir, 'empty')];
  await writeFile(files[0] ?? '', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(5000, 7)]), { mode: 0o755 });
  await writeFile(files[1] ?? '', 'key = value\n');
  await writeFile(files[2] ?? '', '');
  await symlink('usr/bin/tool', join(dir, 'link'));
  return { dir, files };
}

/** evmctl wants the key as a DER X.509 certificate: one over the HSM public key, issued by a throwaway CA. */
async function certificateFor(pem: string, name: string): Promise<string> {
  const caKey = join(soft.dir, `${name}-ca.pem`);
  const pub = join(soft.dir, `${name}.pub.pem`);
  const cert = join(soft.dir, `${name}.der`);
  await writeFile(caKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  await writeFile(pub, pem);
  await execa('openssl', ['x509', '-new', '-subj', `/CN=${name}`, '-key', caKey, '-force_pubkey', pub, '-days', '30', '-outform', 'DER', '-out', cert]);
  return cert;
}

async function imaVerify(cert: string, file: string): Promise<{ ok: boolean; text: string }> {
  const r = await execa('evmctl', ['ima_verify', '--key', cert, file], { reject: false, timeout: 30_000 });
  return { ok: r.exitCode === 0, text: `${r.stdout}\n${r.stderr}` };
}

async function xattr(file: string): Promise<Uint8Array | undefined> {
  // -h: a symlink's own attributes, not its target's.
  const r = await execa('getfattr', ['-h', '-n', 'security.ima', '-e', 'hex', file], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const m = /^security\.ima=0x([0-9a-f]+)$/m.exec(r.stdout);
  if (m === null) throw new Error(`getfattr printed ${r.stdout}`);
  return fromHex(m[1] ?? '');
}

for (const type of ['rsa-2048', 'ec-p256', 'ec-p384'] as const) {
  t.test(`${type}: evmctl ima_verify accepts what the HSM signed`, async (t) => {
    const made = await ctl(['hsm', 'keygen', '--token', 'ima', '--label', `ima-${type}`, '--type', type]);
    t.equal(made.code, 0, made.err);
    const uri = made.out.trim();
    const pem = await ctl(['hsm', 'pubkey', uri]);
    t.equal(pem.code, 0, pem.err);
    const publicKey = createPublicKey(pem.out);
    const cert = await certificateFor(pem.out, type);
    const { dir, files } = await makeRootfs(`root-${type}`);

    const signed = await ctl(['sign', 'ima', '--rootfs', dir, '--key', uri]);
    t.equal(signed.code, 0, signed.err);
    t.match(signed.err, /^signed 3 files with pkcs11:token=ima;object=ima-/);
    t.equal(await xattr(join(dir, 'link')), undefined, 'the symlink is not signed (its target is)');
    for (const file of files) {
      const v = await imaVerify(cert, file);
      t.ok(v.ok, `evmctl ima_verify ${file.slice(dir.length)}: ${v.text.trim()}`);
      const bytes = await xattr(file);
      if (bytes === undefined) throw new Error('no xattr');
      const sig = decodeImaSignature(bytes);
      t.equal(sig.hashAlgo, HASH_ALGO.SHA256);
      t.equal(sig.keyId, computeImaKeyId(publicKey), 'the keyid of the public key');
      // evmctl prints the key id with %x (no leading zeros).
      t.match(v.text, new RegExp(`key 1: 0*${sig.keyId.toString(16)} `), 'evmctl computes the same keyid');
      if (type !== 'rsa-2048') t.equal(sig.signature[0], 0x30, 'ECDSA leaves the HSM as DER (a SEQUENCE), not raw r||s');
      const { createHash } = await import('node:crypto');
      const digest = createHash('sha256').update(await readFile(file)).digest();
      t.same(verifyImaSignature(bytes, 'sha256', digest, new Map([[sig.keyId, publicKey]])), { ok: true, keyId: sig.keyId }, 'lib/ima verifies it too');
    }
    // An altered file, and a certificate of another key: refused.
    await writeFile(files[1] ?? '', 'key = other\n');
    t.notOk((await imaVerify(cert, files[1] ?? '')).ok, 'an altered file does not verify');
    const other = type === 'rsa-2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384' });
    const otherCert = await certificateFor(other.publicKey.export({ format: 'pem', type: 'spki' }).toString(), `other-${type}`);
    t.notOk((await imaVerify(otherCert, files[0] ?? '')).ok, 'an untrusted key does not verify it');
  });
}

t.test('--manifest lists the signatures and writes no xattr', async (t) => {
  const { dir, files } = await makeRootfs('root-manifest');
  const manifest = join(soft.dir, 'manifest.json');
  const r = await ctl(['sign', 'ima', '--rootfs', dir, '--key', 'pkcs11:token=ima;object=ima-ec-p256', '--manifest', manifest]);
  t.equal(r.code, 0, r.err);
  const text = await readFile(manifest, 'utf8');
  t.match(text, /"kind": "bulwark-ima-signatures"/);
  t.match(text, /"path": "\/usr\/bin\/tool"/);
  t.match(text, /"signature": "030204/, 'type 3, version 2, sha256');
  for (const file of files) t.equal(await xattr(file), undefined, 'no xattr written');
});

t.test('failures leave no file signed', async (t) => {
  const { dir, files } = await makeRootfs('root-fail');
  const r = await ctl(['sign', 'ima', '--rootfs', dir, '--key', 'pkcs11:token=ima;object=no-such-key']);
  t.equal(r.code, 1);
  t.match(r.err, /^bulwarkctl: PKCS11_KEY_NOT_FOUND: /);
  for (const file of files) t.equal(await xattr(file), undefined, 'nothing written');
});

for (const [label, hash] of [
  ['ima-rsa-2048', 'sha256'],
  ['ima-ec-p384', 'sha384'],
  ['ima-ec-p256', 'sha256'],
] as const) {
t.test(`${label} (${hash}): a runtime policy that trusts the HSM key needs no digest list; a binary signed by another key is IMA_SIGNATURE_INVALID`, async (t) => {
  const { dir, files } = await makeRootfs(`root-policy-${label}`);
  const manifestPath = join(soft.dir, `policy-manifest-${label}.json`);
  const r = await ctl(['sign', 'ima', '--rootfs', dir, '--key', `pkcs11:token=ima;object=${label}`, '--hash', hash, '--manifest', manifestPath]);
  t.equal(r.code, 0, r.err);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { files: { path: string; digest: string; signature: string }[] };
  const pem = (await ctl(['hsm', 'pubkey', `pkcs11:token=ima;object=${label}`])).out;
  const hsmKey = createPublicKey(pem);

  // The IMA list a host running these files writes (ima-sig entries carrying the HSM's signatures), replayed against its quote.
  const b = new ImaLogBuilder();
  for (const f of manifest.files) b.file(f.path, { digest: Buffer.from(f.digest, 'hex'), algorithm: hash, template: 'ima-sig', signature: Buffer.from(f.signature, 'hex') });
  const quoted = softwareQuote(new Map([[TPM_ALG.SHA256, new Map([[10, b.pcr10('sha256')]])]]));
  const replay = replayImaEntries(initialImaReplayState(), parseImaBinary(b.binary()).entries, quoted);
  if (!replay.ok) throw new Error(`replay failed: ${replay.findings.map((f) => f.code).join(',')}`);

  const policyTrusting = (key: KeyObject) =>
    parseRuntimePolicy({
      ...formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2026-12-01T00:00:00.000Z', generator: 'test' })),
      verificationKeys: [{ keyId: computeImaKeyId(key).toString(16).padStart(8, '0'), publicKey: key.export({ format: 'pem', type: 'spki' }).toString() }],
    });
  t.same(evaluateImaEntries(policyTrusting(hsmKey), replay.verified), [], 'every file allowed by its HSM signature alone (the policy lists no digest)');

  const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
  const refused = evaluateImaEntries(policyTrusting(other), replay.verified);
  t.same(
    refused.map((f) => [f.code, f.details?.['path'], f.details?.['reason']]),
    manifest.files.map((f) => ['IMA_SIGNATURE_INVALID', f.path, 'untrusted-key']),
    'signed by a key the policy does not trust: IMA_SIGNATURE_INVALID for each',
  );
  t.equal(files.length, manifest.files.length);
});
}
