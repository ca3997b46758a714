/**
 * ima-ngv2 and ima-sigv2 (d-ngv2: "<ima|verity>:<algorithm>:" NUL digest, ima_template_lib.c
 * ima_eventdigest_ngv2_init) built the way the kernel writes them, in both list forms:
 * parsed (digest type, algorithm, digest, signature), replayed, and judged — file digests
 * against the digest list, fs-verity digests (fsverity.rst) only by an IMA_VERITY_DIGSIG
 * (sigv3) signature over struct ima_file_id, never by the list. A file signature on a verity
 * digest (or the reverse) is refused. Hostile ngv2 input gives a typed error.
 */
import t from 'tap';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BulwarkError } from '../../../lib/errors.js';
import {
  buildRuntimePolicy,
  computeImaKeyId,
  evaluateImaEntries,
  evaluateImaEntriesOffline,
  computeImaPcr10,
  formatRuntimePolicy,
  initialImaReplayState,
  parseImaAscii,
  parseImaBinary,
  parseRuntimePolicy,
  replayImaEntriesOffline,
  type RuntimePolicy,
} from '../../../lib/ima/index.js';
import { TPM_ALG } from '../../../lib/tpm/types.js';
import { fsverityDigest } from '../../helpers/fsverity.js';
import { findingRows, verifiedEntries } from './ima-test-logs.js';
import { ImaLogBuilder } from '../../helpers/ima-builder.js';
import { ByteWriter } from '../../../lib/bytes.js';
import { prng } from '../hostile.js';

const EC = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const EC_ID = computeImaKeyId(EC.publicKey);
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_ID = computeImaKeyId(RSA.publicKey);

const sha256 = (d: Uint8Array): Buffer => createHash('sha256').update(d).digest();

/** signature_v2_hdr: type, version, hash_algo (4 = sha256), keyid BE, sig_size BE, signature. */
function header(type: 3 | 6, keyId: number, sig: Buffer): Buffer {
  return Buffer.from(
    new ByteWriter()
      .u8(type) // type: EVM_IMA_XATTR_DIGSIG (3) or IMA_VERITY_DIGSIG (6)
      .u8(type === 6 ? 3 : 2) // version: 3 for verity (sigv3), else 2
      .u8(4) // hash_algo: HASH_ALGO_SHA256
      .u32be(keyId) // keyid
      .u16be(sig.length) // sig_size
      .bytes(sig) // signature
      .finish(),
  );
}

/** A file signature (type 3): ECDSA over the file digest itself (node hashes `data` = the file). */
function fileSig(key: KeyObject, keyId: number, file: Buffer): Buffer {
  return header(3, keyId, sign('sha256', file, { key, dsaEncoding: 'der' }));
}

/**
 * An fs-verity signature (type 6, sigv3, ima_appraise.c calc_file_id_hash): over SHA-256 of
 * struct ima_file_id {hash_type = 6, hash_algorithm = 4, hash[32]}; node hashes the struct.
 */
function veritySig(key: KeyObject, keyId: number, verity: Buffer, rsa = false): Buffer {
  const fileId = Buffer.concat([Buffer.of(6, 4), verity]);
  return header(6, keyId, rsa ? sign('sha256', fileId, key) : sign('sha256', fileId, { key, dsaEncoding: 'der' }));
}

function policy(files: readonly [string, Buffer][], keys: readonly KeyObject[]): RuntimePolicy {
  return parseRuntimePolicy({
    ...formatRuntimePolicy(buildRuntimePolicy(files.map(([path, d]) => ({ path, digest: { algorithm: 'sha256', value: d } })), { generatedAt: '2026-12-01T00:00:00.000Z', generator: 'test' })),
    verificationKeys: keys.map((k) => ({ keyId: computeImaKeyId(k).toString(16).padStart(8, '0'), publicKey: k.export({ format: 'pem', type: 'spki' }).toString() })),
  });
}

const LS = readFileSync('/usr/bin/ls');
const CAT = readFileSync('/usr/bin/cat');
const SED = readFileSync('/usr/bin/sed');
const GREP = readFileSync('/usr/bin/grep');

/** A list as a kernel with ima_template=ima-sigv2 and a verity appraise rule writes it. */
function sigv2Log(): ImaLogBuilder {
  const b = new ImaLogBuilder();
  b.bootAggregate(sha256(Buffer.from('pcr 0-9')));
  b.file('/usr/bin/ls', { digest: sha256(LS), template: 'ima-ngv2' }); // 1: listed file digest
  b.file('/usr/bin/cat', { digest: sha256(CAT), template: 'ima-sigv2', signature: fileSig(EC.privateKey, EC_ID, CAT) }); // 2: signed file digest
  b.file('/usr/bin/sed', { digest: fsverityDigest(SED), template: 'ima-sigv2', digestType: 'verity', signature: veritySig(EC.privateKey, EC_ID, fsverityDigest(SED)) }); // 3: verity, ECDSA sigv3
  b.file('/usr/bin/grep', { digest: fsverityDigest(GREP), template: 'ima-sigv2', digestType: 'verity', signature: veritySig(RSA.privateKey, RSA_ID, fsverityDigest(GREP), true) }); // 4: verity, RSA sigv3
  b.violation('/var/log/app.log', 'sha256', 'ima-sigv2'); // 5
  return b;
}

t.test('ima-ngv2 / ima-sigv2 lines and records as the kernel shows them, parsed in both forms', async (t) => {
  const b = sigv2Log();
  const ascii = b.ascii().toString('utf8').split('\n');
  t.match(ascii[1], new RegExp(`^10 [0-9a-f]{40} ima-ngv2 ima:sha256:${sha256(LS).toString('hex')} /usr/bin/ls$`), 'd-ngv2 text: "ima:sha256:" then hex');
  t.match(ascii[3], new RegExp(`^10 [0-9a-f]{40} ima-sigv2 verity:sha256:${fsverityDigest(SED).toString('hex')} /usr/bin/sed 0603`), 'verity type and a sigv3 signature');
  t.match(ascii[5], /^10 0{40} ima-sigv2 ima:sha256:0{64} \/var\/log\/app.log $/, 'a violation keeps type "ima" and an empty sig');
  for (const format of ['ascii', 'binary'] as const) {
    const parsed = format === 'ascii' ? parseImaAscii(b.ascii()) : parseImaBinary(b.binary());
    t.same(
      parsed.entries.map((e) => [e.template, e.digestType, e.digestAlgorithm, Buffer.from(e.digest).toString('hex'), e.path, e.signature === null ? null : Buffer.from(e.signature).toString('hex'), e.violation]),
      b.entries.map((e, i) => [
        e.template,
        i === 0 ? null : i === 3 || i === 4 ? 'verity' : 'ima',
        'sha256',
        e.digest.toString('hex'),
        e.path,
        e.signature === null ? null : e.signature.toString('hex'),
        e.violation,
      ]),
      `${format}: every field`,
    );
    t.same(
      parsed.entries.map((e) => Buffer.from(e.hashInput).toString('hex')),
      b.entries.map((e) => e.hashInput.toString('hex')),
      `${format}: the template data the kernel hashed`,
    );
  }
});

t.test('judged: file digests by the list or a file signature, fs-verity digests only by a sigv3 signature', async (t) => {
  const b = sigv2Log();
  const boot: [string, Buffer] = ['boot_aggregate', sha256(Buffer.from('pcr 0-9'))];
  const trusting = policy([boot, ['/usr/bin/ls', sha256(LS)]], [EC.publicKey, RSA.publicKey]);
  for (const format of ['ascii', 'binary'] as const) {
    t.same(findingRows(evaluateImaEntries(trusting, verifiedEntries(b, format))), [['IMA_VIOLATION', '/var/log/app.log', '']], `${format}: all allowed but the violation`);
  }
  // The same list under a policy that trusts no key: only the listed ls passes.
  const noKeys = policy([boot, ['/usr/bin/ls', sha256(LS)], ['/usr/bin/sed', fsverityDigest(SED)]], []);
  t.same(
    findingRows(evaluateImaEntries(noKeys, verifiedEntries(b, 'binary'))),
    [
      ['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/cat', 'path-not-listed'],
      ['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/sed', 'verity-digest-unsigned'],
      ['IMA_DIGEST_NOT_ALLOWED', '/usr/bin/grep', 'verity-digest-unsigned'],
      ['IMA_VIOLATION', '/var/log/app.log', ''],
    ],
    'a verity digest never matches the (file content) digest list, even when its bytes are listed',
  );
});

t.test('a signature of the wrong kind, a changed byte, an untrusted key: IMA_SIGNATURE_INVALID', async (t) => {
  const sedVerity = fsverityDigest(SED);
  const b = new ImaLogBuilder();
  b.file('/usr/bin/sed', { digest: sedVerity, template: 'ima-sigv2', digestType: 'verity', signature: header(3, EC_ID, sign('sha256', sedVerity, { key: EC.privateKey, dsaEncoding: 'der' })) }); // a file signature (type 3) on a verity digest
  b.file('/usr/bin/cat', { digest: sha256(CAT), template: 'ima-sigv2', signature: veritySig(EC.privateKey, EC_ID, sha256(CAT)) }); // a verity signature on a file digest
  const bad = veritySig(EC.privateKey, EC_ID, sedVerity);
  bad[bad.length - 3] = (bad[bad.length - 3] ?? 0) ^ 0x10;
  b.file('/usr/bin/sed', { digest: sedVerity, template: 'ima-sigv2', digestType: 'verity', signature: bad }); // one byte changed
  b.file('/usr/bin/sed', { digest: sha256(SED), template: 'ima-sigv2', digestType: 'verity', signature: veritySig(EC.privateKey, EC_ID, sedVerity) }); // signature over another digest
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  b.file('/usr/bin/sed', { digest: sedVerity, template: 'ima-sigv2', digestType: 'verity', signature: veritySig(other.privateKey, computeImaKeyId(other.publicKey), sedVerity) }); // untrusted key
  const p = policy([['/usr/bin/cat', sha256(CAT)]], [EC.publicKey]);
  t.same(findingRows(evaluateImaEntries(p, verifiedEntries(b, 'binary'))), [
    ['IMA_SIGNATURE_INVALID', '/usr/bin/sed', 'type-mismatch'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/cat', 'type-mismatch'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/sed', 'bad-signature'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/sed', 'bad-signature'],
    ['IMA_SIGNATURE_INVALID', '/usr/bin/sed', 'untrusted-key'],
  ]);
  // ima-sig (d-ng, no type) carrying a sigv3 signature: the signature itself says the digest is an fs-verity one.
  const d = new ImaLogBuilder();
  d.file('/usr/bin/sed', { digest: sedVerity, template: 'ima-sig', signature: veritySig(EC.privateKey, EC_ID, sedVerity) });
  t.same(evaluateImaEntries(p, verifiedEntries(d, 'ascii')), [], 'an ima-sig entry with a verity signature verifies over ima_file_id');
});

t.test('the fs-verity digest helper matches the known digest of an empty file', async (t) => {
  // fsverity-utils: `fsverity digest` of an empty file (SHA-256, 4 KiB blocks).
  t.equal(fsverityDigest(Buffer.alloc(0)).toString('hex'), '3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95');
});

t.test('hostile ngv2 input: truncations, bit flips and bad d-ngv2 texts give typed errors', async (t) => {
  const b = sigv2Log();
  const rnd = prng(1307);
  let refused = 0;
  let parsed = 0;
  const judge = policy([], [EC.publicKey, RSA.publicKey]);
  const probe = (bytes: Uint8Array, format: 'ascii' | 'binary'): void => {
    try {
      const p = format === 'ascii' ? parseImaAscii(bytes) : parseImaBinary(bytes);
      const state = initialImaReplayState([TPM_ALG.SHA256]);
      const own = computeImaPcr10(state, p.entries);
      const r = replayImaEntriesOffline(state, p.entries, new Map([...own.pcr10].map(([alg, v]) => [alg, new Map([[10, v]])])));
      if (r.ok) evaluateImaEntriesOffline(judge, r.replayed);
      parsed++;
    } catch (err) {
      if (!(err instanceof BulwarkError)) throw err;
      refused++;
    }
  };
  for (const format of ['ascii', 'binary'] as const) {
    const whole = format === 'ascii' ? b.ascii() : b.binary();
    for (let cut = 0; cut < whole.length; cut++) probe(whole.subarray(0, cut), format);
    for (let i = 0; i < 1000; i++) {
      const m = Buffer.from(whole);
      const at = Math.floor(rnd() * m.length);
      m[at] = (m[at] ?? 0) ^ (1 << Math.floor(rnd() * 8));
      probe(m, format);
    }
  }
  t.ok(refused > 0 && parsed > 0, `${refused} refused, ${parsed} parsed; never another exception`);
  const h = '0'.repeat(40);
  const d = 'ab'.repeat(32);
  for (const [what, line] of [
    ['unknown digest type', `10 ${h} ima-ngv2 fsv:sha256:${d} /x\n`],
    ['no type', `10 ${h} ima-ngv2 sha256:${d} /x\n`],
    ['type too long', `10 ${h} ima-ngv2 verityverity:sha256:${d} /x\n`],
    ['unknown algorithm', `10 ${h} ima-ngv2 ima:sha257:${d} /x\n`],
    ['short digest', `10 ${h} ima-ngv2 ima:sha256:${d.slice(2)} /x\n`],
    ['empty d-ngv2', `10 ${h} ima-ngv2  /x\n`],
    ['uppercase hex', `10 ${h} ima-ngv2 ima:sha256:${d.toUpperCase()} /x\n`],
  ] as const) {
    t.throws(() => parseImaAscii(Buffer.from(line)), { code: 'IMA_LOG_MALFORMED' }, what);
  }
  // Binary: a d-ngv2 field whose type or algorithm the kernel never writes.
  for (const [what, field] of [
    ['unknown type', Buffer.concat([Buffer.from('foo:sha256:\0'), Buffer.alloc(32)])],
    ['no NUL', Buffer.concat([Buffer.from('ima:sha256:'), Buffer.alloc(33, 1)])],
    ['d-ng form', Buffer.concat([Buffer.from('sha256:\0'), Buffer.alloc(32, 1)])],
    ['empty', Buffer.alloc(0)],
  ] as const) {
    const name = Buffer.from('/x\0');
    const data = new ByteWriter().u32le(field.length).bytes(field).u32le(name.length).bytes(name).finish();
    const rec = new ByteWriter().u32le(10).bytes(Buffer.alloc(20, 1)).u32le(8).bytes(Buffer.from('ima-ngv2')).u32le(data.length).bytes(data).finish();
    t.throws(() => parseImaBinary(rec), { code: 'IMA_LOG_MALFORMED' }, `binary: ${what}`);
  }
});
