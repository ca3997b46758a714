/**
 * Runtime policies: Keylime import/export, Bulwark's JSON, validation with JSON paths, the
 * generator's builder, and evaluation of verified entries — allowed files, unknown digests,
 * excludes, violations, ima-buf and keyrings, and ima-sig signatures made by the real
 * `evmctl ima_sign` (and ours checked by `evmctl ima_verify`).
 */
import t from 'tap';
import { execa } from 'execa';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import {
  buildRuntimePolicy,
  computeImaKeyId,
  decodeImaSignature,
  evaluateImaEntries,
  exportKeylimeRuntimePolicy,
  formatRuntimePolicy,
  importKeylimeRuntimePolicy,
  loadRuntimePolicy,
  parseRuntimePolicy,
  verifyImaSignature,
  type RuntimePolicy,
} from '../../../lib/ima/index.js';
import type { Finding } from '../../../lib/verdict.js';
import { ImaLogBuilder, signImaDigest } from '../../helpers/ima-builder.js';
import { sha256, testSigner, throwsCode, verifiedEntries } from './ima-test-logs.js';

function summary(findings: readonly Finding[]): string[][] {
  return findings.map((f) => [f.code, String(f.details?.['path'] ?? ''), String(f.details?.['reason'] ?? f.details?.['rule'] ?? '')]);
}

const LS = sha256(Buffer.from('ls v1'));
const LS2 = sha256(Buffer.from('ls v2'));
const CAT = sha256(Buffer.from('cat'));
const KVER = Buffer.from('6.1.0-18-amd64');

function keylimePolicy(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    meta: { version: 1, generator: 1, timestamp: '2025-06-01 12:00:00.000001' },
    release: 3,
    digests: { '/usr/bin/ls': [toHex(LS), toHex(LS2)], '/usr/bin/cat': [toHex(CAT)], boot_aggregate: ['00'.repeat(20)] },
    excludes: ['/tmp/.*', 'boot_aggregate'],
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': { kernel_version: [toHex(sha256(KVER))] },
    'verification-keys': '',
    ...overrides,
  };
}

t.test('a Keylime policy imports unchanged and exports back to the same policy', async (t) => {
  const s = testSigner();
  const der = s.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const source = keylimePolicy({ 'verification-keys': JSON.stringify({ pubkeys: [der], keyids: [s.keyId] }) });
  const p = importKeylimeRuntimePolicy(JSON.parse(JSON.stringify(source)));
  t.equal(p.release, 3);
  t.equal(p.generatedAt, '2025-06-01 12:00:00.000001');
  t.equal(p.digests.get('/usr/bin/ls')?.length, 2, 'several digests per path');
  t.equal(p.digests.get('boot_aggregate')?.[0]?.algorithm, 'sha1', 'algorithm inferred from the length');
  t.equal(p.verificationKeys[0]?.keyId, s.keyId);
  const back = exportKeylimeRuntimePolicy(p);
  const { 'verification-keys': vk, ...rest } = back;
  const { 'verification-keys': vkSource, ...restSource } = source;
  t.same(rest, restSource, 'every other field as it was');
  t.same(JSON.parse(vk), JSON.parse(String(vkSource)), 'the same keyring');
  t.same(formatRuntimePolicy(importKeylimeRuntimePolicy(JSON.parse(JSON.stringify(back)))), formatRuntimePolicy(p), 'import ∘ export is the identity');
  // Keylime may store the keyring JSON encoded twice (ImaKeyring.from_string accepts it) and without keyids.
  const twice = importKeylimeRuntimePolicy(keylimePolicy({ 'verification-keys': JSON.stringify(JSON.stringify({ pubkeys: [der] })) }));
  t.equal(twice.verificationKeys[0]?.keyId, s.keyId, 'key id computed like calc_keyid_v2 when absent');
});

t.test("Bulwark's JSON round-trips and loadRuntimePolicy reads both forms", async (t) => {
  const p = importKeylimeRuntimePolicy(keylimePolicy());
  const json = JSON.stringify(formatRuntimePolicy(p));
  t.same(formatRuntimePolicy(parseRuntimePolicy(JSON.parse(json))), formatRuntimePolicy(p));
  t.same(formatRuntimePolicy(loadRuntimePolicy(json)), formatRuntimePolicy(p));
  t.same(formatRuntimePolicy(loadRuntimePolicy(JSON.stringify(keylimePolicy()))), formatRuntimePolicy(p));
  t.match(json, /"\/usr\/bin\/ls":\["sha256:[0-9a-f]{64}","sha256:/, 'digests carry their algorithm');
});

t.test('invalid policies: IMA_POLICY_INVALID with the JSON path', async (t) => {
  const cases: readonly [string, unknown, string][] = [
    ['not an object', [], ''],
    ['missing digests', (() => { const k = keylimePolicy(); delete k['digests']; return k; })(), '/digests'],
    ['unknown field', keylimePolicy({ allowlist: {} }), '/allowlist'],
    ['meta version 2', keylimePolicy({ meta: { version: 2, generator: 0 } }), '/meta/version'],
    ['generator 9', keylimePolicy({ meta: { version: 1, generator: 9 } }), '/meta/generator'],
    ['negative release', keylimePolicy({ release: -1 }), '/release'],
    ['uppercase digest', keylimePolicy({ digests: { '/usr/bin/ls': [toHex(LS).toUpperCase()] } }), '/digests/~1usr~1bin~1ls/0'],
    ['short digest', keylimePolicy({ digests: { '/usr/bin/ls': ['abcd'] } }), '/digests/~1usr~1bin~1ls/0'],
    ['empty digest list', keylimePolicy({ digests: { '/usr/bin/ls': [] } }), '/digests/~1usr~1bin~1ls'],
    ['digest not a string', keylimePolicy({ digests: { '/usr/bin/ls': [42] } }), '/digests/~1usr~1bin~1ls/0'],
    ['path with U+FFFD', keylimePolicy({ digests: { '/usr/bin/\ufffd': [toHex(LS)] } }), '/digests/~1usr~1bin~1\ufffd'],
    ['bad regex', keylimePolicy({ excludes: ['/tmp/(.*'] }), '/excludes/0'],
    ['Python-only regex', keylimePolicy({ excludes: ['(?P<x>/tmp)'] }), '/excludes/0'],
    ['log_hash_alg md5', keylimePolicy({ ima: { ignored_keyrings: [], log_hash_alg: 'md5', dm_policy: null } }), '/ima/log_hash_alg'],
    ['dm_policy', keylimePolicy({ ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: { version: 1 } } }), '/ima/dm_policy'],
    ['keyring not JSON', keylimePolicy({ 'verification-keys': '{' }), '/verification-keys'],
    ['key not DER', keylimePolicy({ 'verification-keys': JSON.stringify({ pubkeys: ['AAAA'] }) }), '/verification-keys/pubkeys/0'],
    ['ima-buf not an object', keylimePolicy({ 'ima-buf': [] }), '/ima-buf'],
  ];
  for (const [what, value, path] of cases) {
    const err = throwsCode(t, () => importKeylimeRuntimePolicy(value), 'IMA_POLICY_INVALID', what);
    t.equal(err?.details['path'], path, `${what}: path`);
  }
  const native = formatRuntimePolicy(importKeylimeRuntimePolicy(keylimePolicy()));
  const nativeCases: readonly [string, unknown, string][] = [
    ['wrong kind', { ...native, kind: 'keylime' }, '/kind'],
    ['digest without algorithm', { ...native, digests: { '/x': [toHex(LS)] } }, '/digests/~1x/0'],
    ['sha256 digest of sha1 length', { ...native, digests: { '/x': [`sha256:${'ab'.repeat(20)}`] } }, '/digests/~1x/0'],
    ['bad key id', { ...native, verificationKeys: [{ keyId: 'xyz', publicKey: testSigner().publicKey.export({ format: 'pem', type: 'spki' }).toString() }] }, '/verificationKeys/0/keyId'],
    ['key not PEM', { ...native, verificationKeys: [{ keyId: '00000001', publicKey: 'nope' }] }, '/verificationKeys/0/publicKey'],
  ];
  for (const [what, value, path] of nativeCases) {
    const err = throwsCode(t, () => parseRuntimePolicy(value), 'IMA_POLICY_INVALID', what);
    t.equal(err?.details['path'], path, `${what}: path`);
  }
  throwsCode(t, () => loadRuntimePolicy('{"digests": '), 'IMA_POLICY_INVALID', 'not JSON');
  const bad = throwsCode(t, () => importKeylimeRuntimePolicy(keylimePolicy({ release: 'one' })), 'IMA_POLICY_INVALID', 'release not a number');
  t.match(bad?.message ?? '', /at \/release: /, 'the message names the JSON pointer');
});

t.test('a Keylime policy imports as Keylime admits it', async (t) => {
  const extraMeta = importKeylimeRuntimePolicy(keylimePolicy({ meta: { version: 1, generator: 1, timestamp: 'now', producer: 'keylime-policy 7.12' } }));
  t.equal(extraMeta.release, 3, 'extra meta fields (Keylime does not close meta) are accepted');
  const minimalMeta = importKeylimeRuntimePolicy(keylimePolicy({ meta: { version: 1 } }));
  t.equal(minimalMeta.keylimeGenerator, 0, 'meta.generator is optional in Keylime: Unknown (0)');
  t.equal(minimalMeta.generatedAt, null);
  const noDm = importKeylimeRuntimePolicy(keylimePolicy({ ima: { ignored_keyrings: [], log_hash_alg: 'sha256' } }));
  t.equal(noDm.logHashAlgorithm, 'sha256', 'ima.dm_policy may be left out');
  const s = testSigner();
  const der = s.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const withMeta = importKeylimeRuntimePolicy(keylimePolicy({ 'verification-keys': JSON.stringify({ meta: { version: 1 }, pubkeys: [der], keyids: [s.keyId] }) }));
  t.equal(withMeta.verificationKeys[0]?.keyId, s.keyId, 'extra fields in the keyring JSON are accepted');
  t.same(formatRuntimePolicy(importKeylimeRuntimePolicy(keylimePolicy({ rules: '' }))), formatRuntimePolicy(importKeylimeRuntimePolicy(keylimePolicy())), 'empty rules are no rules');
  throwsCode(t, () => importKeylimeRuntimePolicy(keylimePolicy({ rules: 'x' })), 'IMA_POLICY_INVALID', 'rules are refused');
});

t.test('evaluation: allowed files give no finding; an unknown digest or path is named', async (t) => {
  const policy = importKeylimeRuntimePolicy(keylimePolicy());
  const b = new ImaLogBuilder();
  b.bootAggregate(sha256(Buffer.from('agg')));
  b.file('/usr/bin/ls', { digest: LS });
  b.file('/usr/bin/ls', { digest: LS2 });
  b.file('/usr/bin/cat', { digest: CAT });
  b.buffer('kernel_version', KVER);
  b.file('/tmp/build/a.out', { digest: sha256(Buffer.from('scratch')) });
  t.same(evaluateImaEntries(policy, verifiedEntries(b)), [], 'only allowed or excluded entries');
  b.file('/usr/bin/cat', { digest: sha256(Buffer.from('trojaned cat')) });
  b.file('/usr/local/bin/miner', { digest: sha256(Buffer.from('miner')) });
  b.file('/var/tmp/x', { digest: sha256(Buffer.from('x')) });
  const findings = evaluateImaEntries(policy, verifiedEntries(b));
  t.same(summary(findings), [
    ['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/cat', 'digest-not-listed'],
    ['IMA_DIGEST_NOT_ALLOWED', '/usr/local/bin/miner', 'path-not-listed'],
    ['IMA_DIGEST_NOT_ALLOWED', '/var/tmp/x', 'path-not-listed'],
  ]);
  t.equal(findings[1]?.details?.['digest'], `sha256:${toHex(sha256(Buffer.from('miner')))}`, 'the digest that failed is named');
  t.equal(findings[1]?.details?.['entry'], 7);
});

t.test('evaluation: violations, ima-buf and keyrings', async (t) => {
  // A certificate as the kernel measures keys loaded onto a keyring (func=KEY_CHECK: the DER payload).
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ima-key-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'cert.der');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', certFile, '-outform', 'DER', '-subj', '/CN=bulwark-keyring-test', '-days', '2'], { timeout: 30_000 });
  const certDer = await readFile(certFile);
  const policy = importKeylimeRuntimePolicy(keylimePolicy({ keyrings: { '.ima': [toHex(sha256(certDer))] } }));
  const b = new ImaLogBuilder();
  b.violation('/tmp/excluded-but-violated');
  b.buffer('kernel_version', Buffer.from('6.6.6-evil'));
  b.buffer('selinux-state', Buffer.from('enforcing=0'));
  b.buffer('.ima', certDer);
  b.buffer('.builtin_trusted_keys', certDer);
  t.same(summary(evaluateImaEntries(policy, verifiedEntries(b))), [
    ['IMA_VIOLATION', '/tmp/excluded-but-violated', ''],
    ['IMA_BUF_UNEXPECTED', 'kernel_version', 'digest-not-listed'],
    ['IMA_BUF_UNEXPECTED', 'selinux-state', 'name-not-listed'],
    ['IMA_BUF_UNEXPECTED', '.builtin_trusted_keys', 'keyrings'],
  ]);
  const ignoring = importKeylimeRuntimePolicy(keylimePolicy({ ima: { ignored_keyrings: ['*'], log_hash_alg: 'sha1', dm_policy: null } }));
  const k = new ImaLogBuilder();
  k.buffer('.builtin_trusted_keys', certDer);
  t.same(evaluateImaEntries(ignoring, verifiedEntries(k)), [], "ignored_keyrings ['*'] accepts key measurements");
});

t.test('evaluation: findings are capped', async (t) => {
  const policy = importKeylimeRuntimePolicy(keylimePolicy());
  const b = new ImaLogBuilder();
  for (let i = 0; i < 30; i++) b.file(`/usr/local/bin/x${i}`, { digest: sha256(Buffer.from(String(i))) });
  const f = evaluateImaEntries(policy, verifiedEntries(b), { maxFindings: 10 });
  t.equal(f.length, 11);
  t.equal(f[10]?.code, 'IMA_FINDINGS_CAPPED');
  t.equal(f[10]?.details?.['omitted'], 20);
});

t.test('ima-sig: evmctl signatures verify against the policy key; a bad one is IMA_SIGNATURE_INVALID', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-ima-sig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const key = join(dir, 'key.pem');
  const certPem = join(dir, 'cert.pem');
  const certDer = join(dir, 'cert.der');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', certPem, '-days', '2', '-nodes', '-subj', '/CN=bulwark-ima-test', '-addext', 'subjectKeyIdentifier=hash'], { timeout: 30_000 });
  await execa('openssl', ['x509', '-in', certPem, '-outform', 'der', '-out', certDer], { timeout: 10_000 });
  const file = join(dir, 'ls');
  await copyFile('/usr/bin/ls', file);
  await execa('evmctl', ['ima_sign', '--sigfile', '--key', key, '-a', 'sha256', file], { timeout: 20_000 });
  const evmSig = await readFile(`${file}.sig`);
  const cert = new X509Certificate(await readFile(certPem));
  const keyId = computeImaKeyId(cert.publicKey);
  t.equal(decodeImaSignature(evmSig).keyId, keyId, 'our key id is the one evmctl put in the header');
  const digest = sha256(await readFile(file));
  const keys = new Map([[keyId, cert.publicKey]]);
  t.same(verifyImaSignature(evmSig, 'sha256', digest, keys), { ok: true, keyId });

  // Our builder's signature over another file verifies with evmctl ima_verify.
  const cat = join(dir, 'cat');
  await copyFile('/usr/bin/cat', cat);
  const catDigest = sha256(await readFile(cat));
  await writeFile(`${cat}.sig`, signImaDigest(createPrivateKey(await readFile(key)), keyId, 'sha256', catDigest));
  const v = await execa('evmctl', ['ima_verify', '--sigfile', '--key', certDer, cat], { reject: false, timeout: 20_000 });
  t.equal(v.exitCode, 0, `evmctl ima_verify accepts our signature: ${v.stdout}${v.stderr}`);

  const pem = cert.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const base = importKeylimeRuntimePolicy(keylimePolicy());
  const policy: RuntimePolicy = parseRuntimePolicy({ ...formatRuntimePolicy(base), verificationKeys: [{ keyId: keyId.toString(16).padStart(8, '0'), publicKey: pem }] });
  const bad = Buffer.from(evmSig);
  bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
  const otherKey = signImaDigest(testSigner().privateKey, testSigner().keyId, 'sha256', digest);
  const b = new ImaLogBuilder();
  b.file('/usr/bin/ls', { digest, template: 'ima-sig', signature: evmSig }); // signed, digest not listed: allowed by signature
  b.file('/usr/bin/ls', { digest: LS, template: 'ima-sig', signature: null }); // unsigned, digest listed
  b.file('/usr/bin/ls', { digest, template: 'ima-sig', signature: bad }); // bad signature by a listed key
  b.file('/usr/bin/ls', { digest: LS, template: 'ima-sig', signature: signImaDigest(createPrivateKey(await readFile(key)), keyId, 'sha256', digest) }); // a signature over another digest
  b.file('/usr/bin/ls', { digest, template: 'ima-sig', signature: otherKey }); // an untrusted key, digest not listed either
  b.file('/usr/bin/ls', { digest, template: 'ima-sig', signature: Buffer.from('0302', 'hex') }); // malformed header
  t.same(summary(evaluateImaEntries(policy, verifiedEntries(b))), [
    ['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'bad-signature'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'bad-signature'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'untrusted-key'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/ls', 'malformed'],
  ]);
  // Signed by an untrusted key but listed: the digest list allows it.
  const listed = new ImaLogBuilder();
  listed.file('/usr/bin/ls', { digest: LS, template: 'ima-sig', signature: signImaDigest(testSigner().privateKey, testSigner().keyId, 'sha256', LS) });
  t.same(evaluateImaEntries(policy, verifiedEntries(listed)), [], 'a listed digest is allowed whoever signed it');
  // Without keys in the policy, signatures are not judged: the digest list decides.
  t.same(
    evaluateImaEntries(base, verifiedEntries(b)).map((f) => f.details?.['entry']),
    [0, 2, 4, 5],
    'every entry whose digest is not listed, whatever its signature',
  );
  // The Keylime export carries the key and its id.
  const kl = exportKeylimeRuntimePolicy(policy);
  t.same(JSON.parse(kl['verification-keys']), { pubkeys: [cert.publicKey.export({ format: 'der', type: 'spki' }).toString('base64')], keyids: [keyId] });
  t.equal(createPublicKey(pem).asymmetricKeyType, 'rsa');
});

t.test('buildRuntimePolicy: several digests per path, a base rolled forward with release + 1', async (t) => {
  const v1 = buildRuntimePolicy([{ path: '/usr/bin/ls', digest: { algorithm: 'sha256', value: LS } }], { generatedAt: '2025-06-01T00:00:00.000Z', generator: 'test' });
  t.equal(v1.release, 1);
  const v2 = buildRuntimePolicy(
    [
      { path: '/usr/bin/ls', digest: { algorithm: 'sha256', value: LS2 } },
      { path: '/usr/bin/ls', digest: { algorithm: 'sha256', value: LS2 } },
      { path: '/usr/bin/cat', digest: { algorithm: 'sha256', value: CAT } },
    ],
    { generatedAt: '2025-06-02T00:00:00.000Z', generator: 'test', base: v1, excludes: ['/tmp/'] },
  );
  t.equal(v2.release, 2);
  t.same(formatRuntimePolicy(v2).digests, { '/usr/bin/cat': [`sha256:${toHex(CAT)}`], '/usr/bin/ls': [`sha256:${toHex(LS)}`, `sha256:${toHex(LS2)}`] });
  t.same(v2.excludes, ['/tmp/']);
  throwsCode(t, () => buildRuntimePolicy([], { generatedAt: 'x', generator: 'y', excludes: ['('] }), 'IMA_POLICY_INVALID', 'a bad exclude');
});

t.test('excludes are anchored at the start of the path, as Keylime re.match', async (t) => {
  const policy = importKeylimeRuntimePolicy(keylimePolicy({ excludes: ['/opt/app/'] }));
  const b = new ImaLogBuilder();
  b.file('/opt/app/bin/run', { digest: CAT });
  b.file('/home/u/opt/app/bin/run', { digest: CAT });
  t.same(summary(evaluateImaEntries(policy, verifiedEntries(b))), [['IMA_DIGEST_NOT_ALLOWED', '/home/u/opt/app/bin/run', 'path-not-listed']]);
});
