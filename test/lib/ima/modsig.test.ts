/**
 * ima-modsig appended signatures: PKCS#7 made by `openssl cms -sign` with the flags
 * scripts/sign-file uses (detached, binary, no certificates, no signed attributes), and with
 * signed attributes, with RSA and ECDSA P-256 keys: verified over d-modsig with the policy's
 * key; another key, another module, a changed byte are never trusted; hostile DER (every
 * truncation, bit flips, lengths overwritten) gives IMA_LOG_MALFORMED, never a crash or hang.
 */
import t from 'tap';
import { execa } from 'execa';
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BulwarkError } from '../../../lib/errors.js';
import {
  buildRuntimePolicy,
  computeImaKeyId,
  decodeImaModsig,
  evaluateImaEntries,
  formatRuntimePolicy,
  parseRuntimePolicy,
  verifyImaModsig,
  type RuntimePolicy,
} from '../../../lib/ima/index.js';
import { findingRows, verifiedEntries } from './ima-test-logs.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';
import { prng } from '../hostile.js';

const dir = await mkdtemp(join(tmpdir(), 'bulwark-modsig-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const sha256 = (d: Uint8Array): Buffer => createHash('sha256').update(d).digest();
const MODULE = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(3000, 0x5a)]);

async function keyAndCert(kind: 'rsa' | 'ec'): Promise<{ key: string; cert: string; publicKey: KeyObject }> {
  const key = join(dir, `${kind}.key.pem`);
  const cert = join(dir, `${kind}.cert.pem`);
  const newkey = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await execa('openssl', ['req', '-x509', ...newkey, '-keyout', key, '-out', cert, '-days', '2', '-nodes', '-subj', `/CN=bulwark-modsig-${kind}`], { timeout: 30_000 });
  return { key, cert, publicKey: new X509Certificate(await readFile(cert)).publicKey };
}

/** The PKCS#7 sign-file appends: `openssl cms -sign` detached, binary, without certificates and (by default) without signed attributes. */
async function signModule(k: { key: string; cert: string }, module: Buffer, attributes = false): Promise<Buffer> {
  const input = join(dir, 'module.ko');
  const out = join(dir, 'module.p7s');
  await writeFile(input, module);
  const flags = ['-nocerts', '-binary', '-nosmimecap', ...(attributes ? [] : ['-noattr'])];
  await execa('openssl', ['cms', '-sign', ...flags, '-md', 'sha256', '-signer', k.cert, '-inkey', k.key, '-in', input, '-outform', 'DER', '-out', out], { timeout: 30_000 });
  return readFile(out);
}

function trusting(...keys: KeyObject[]): RuntimePolicy {
  return parseRuntimePolicy({
    ...formatRuntimePolicy(buildRuntimePolicy([], { generatedAt: '2026-12-01T00:00:00.000Z', generator: 'test' })),
    verificationKeys: keys.map((k) => ({ keyId: computeImaKeyId(k).toString(16).padStart(8, '0'), publicKey: k.export({ format: 'pem', type: 'spki' }).toString() })),
  });
}

/** An ima-modsig entry as the kernel records a signed module: d-ng over the whole file, d-modsig over the module alone, modsig the PKCS#7. */
function modsigEntry(b: ImaLogBuilder, path: string, module: Buffer, p7: Buffer, modsigDigest = sha256(module)): void {
  const whole = Buffer.concat([module, p7, Buffer.alloc(12), Buffer.from('~Module signature appended~\n')]);
  b.file(path, { digest: sha256(whole), template: 'ima-modsig', modsig: { digest: modsigDigest, signature: p7 } });
}

const RSA = await keyAndCert('rsa');
const EC = await keyAndCert('ec');

for (const [name, k] of [
  ['RSA', RSA],
  ['ECDSA P-256', EC],
] as const) {
  for (const attributes of [false, true]) {
    t.test(`${name}, ${attributes ? 'with' : 'without'} signed attributes: trusted by the policy key; another key, module or byte never`, async (t) => {
      const p7 = await signModule(k, MODULE, attributes);
      const m = decodeImaModsig(p7);
      t.equal(m.digestAlgorithm, 'sha256');
      t.equal(m.keyType, name === 'RSA' ? 'rsa' : 'ec');
      t.equal(m.signedAttributes === null, !attributes);
      const keys = new Map([[computeImaKeyId(k.publicKey), k.publicKey]]);
      t.same(verifyImaModsig(p7, 'sha256', sha256(MODULE), keys), { ok: true, keyId: computeImaKeyId(k.publicKey) });
      const other = name === 'RSA' ? EC.publicKey : RSA.publicKey;
      t.same(verifyImaModsig(p7, 'sha256', sha256(MODULE), new Map([[computeImaKeyId(other), other]])), { ok: false, reason: 'unknown-key' }, 'a policy trusting another key');
      t.same(verifyImaModsig(p7, 'sha384', sha256(MODULE), keys), { ok: false, reason: 'algorithm-mismatch' });
      const otherModule = sha256(Buffer.from('another module'));
      t.same(verifyImaModsig(p7, 'sha256', otherModule, keys), { ok: false, reason: attributes ? 'digest-mismatch' : 'unknown-key' }, 'another module');
      const bad = Buffer.from(p7);
      bad[bad.length - 5] = (bad[bad.length - 5] ?? 0) ^ 0x01;
      t.notOk(verifyImaModsig(bad, 'sha256', sha256(MODULE), keys).ok, 'one signature byte changed');

      const b = new ImaLogBuilder();
      modsigEntry(b, '/usr/lib/modules/6.12.0/kernel/fs/fat/fat.ko', MODULE, p7);
      for (const format of ['binary', 'ascii'] as const) t.same(evaluateImaEntries(trusting(k.publicKey), verifiedEntries(b, format)), [], `${format}: allowed by the appended signature alone`);
      t.same(findingRows(evaluateImaEntries(trusting(other), verifiedEntries(b, 'binary'))), [['IMA_DIGEST_NOT_ALLOWED', '/usr/lib/modules/6.12.0/kernel/fs/fat/fat.ko', 'path-not-listed']], 'untrusted signer: the digest list decides');
      const tampered = new ImaLogBuilder();
      modsigEntry(tampered, '/usr/lib/modules/6.12.0/kernel/fs/fat/fat.ko', MODULE, bad);
      t.equal(evaluateImaEntries(trusting(k.publicKey), verifiedEntries(tampered, 'binary')).length, 1, 'a changed byte: not allowed');
      const other2 = new ImaLogBuilder();
      modsigEntry(other2, '/usr/lib/modules/6.12.0/kernel/fs/fat/fat.ko', MODULE, p7, otherModule);
      t.same(
        findingRows(evaluateImaEntries(trusting(k.publicKey), verifiedEntries(other2, 'binary'))).map((f) => f[0]),
        [attributes ? 'IMA_SIGNATURE_INVALID' : 'IMA_DIGEST_NOT_ALLOWED'],
        'the signature of another module',
      );
    });
  }
}

t.test('hostile modsig DER: typed errors only, never a crash or a hang', async (t) => {
  const seeds = [await signModule(RSA, MODULE), await signModule(EC, MODULE, true)];
  const keys = new Map([
    [computeImaKeyId(RSA.publicKey), RSA.publicKey],
    [computeImaKeyId(EC.publicKey), EC.publicKey],
  ]);
  const rnd = prng(0x7051);
  let refused = 0;
  let accepted = 0;
  let covered = 0;
  const hex = (b: Uint8Array | null): string => (b === null ? '' : Buffer.from(b).toString('hex'));
  const probe = (bytes: Uint8Array, original?: Uint8Array): void => {
    try {
      decodeImaModsig(bytes);
    } catch (err) {
      if (!(err instanceof BulwarkError) || err.code !== 'IMA_LOG_MALFORMED') throw err;
      refused++;
    }
    if (verifyImaModsig(bytes, 'sha256', sha256(MODULE), keys).ok) {
      accepted++;
      // What still verifies must carry the very signature and signed attributes (only unsigned bytes, like the issuer naming the key, changed).
      const a = decodeImaModsig(bytes);
      const o = decodeImaModsig(original ?? bytes);
      if (hex(a.signature) === hex(o.signature) && hex(a.signedAttributes) === hex(o.signedAttributes) && a.digestAlgorithm === o.digestAlgorithm) covered++;
    }
  };
  let probes = 0;
  for (const p7 of seeds) {
    for (let cut = 0; cut < p7.length; cut++, probes++) probe(p7.subarray(0, cut));
    for (let i = 0; i < 1500; i++, probes++) {
      const m = Buffer.from(p7);
      const at = Math.floor(rnd() * m.length);
      if (rnd() < 0.5) m[at] = (m[at] ?? 0) ^ (1 << Math.floor(rnd() * 8));
      else m[at] = [0x80, 0x81, 0x82, 0x83, 0x84, 0xff, 0x00, 0x1f, 0x3f][Math.floor(rnd() * 9)] ?? 0;
      probe(m, p7);
    }
    for (let i = 0; i < 200; i++, probes++) probe(Buffer.concat([p7, Buffer.from([Math.floor(rnd() * 256)])]), p7);
  }
  for (let i = 0; i < 500; i++, probes++) {
    const n = Math.floor(rnd() * 300);
    const m = Buffer.alloc(n);
    for (let j = 0; j < n; j++) m[j] = Math.floor(rnd() * 256);
    if (n > 0) m[0] = 0x30;
    probe(m);
  }
  t.ok(refused > probes / 2, `${refused} of ${probes} refused with IMA_LOG_MALFORMED, none with another exception`);
  t.equal(covered, accepted, `${accepted} mutants still verify, each with the original signature, signed attributes and algorithm (the change was in unsigned bytes: version, issuer, serial)`);
  t.throws(() => decodeImaModsig(Buffer.from('3080', 'hex')), { code: 'IMA_LOG_MALFORMED' }, 'indefinite length');
  t.throws(() => decodeImaModsig(Buffer.from('308100', 'hex')), { code: 'IMA_LOG_MALFORMED' }, 'non-minimal length');
  t.throws(() => decodeImaModsig(Buffer.from('3084ffffffff', 'hex')), { code: 'IMA_LOG_MALFORMED' }, 'a 4 GiB length');
  t.throws(() => decodeImaModsig(new Uint8Array(0)), { code: 'IMA_LOG_MALFORMED' }, 'empty');
});
