/**
 * Tpm2ToolsTpm against real swtpm instances (test/helpers/swtpm.ts). Results are checked
 * with tools other than the code under test where possible: tpm2_readpublic's own PEM and
 * YAML, node:crypto signature verification, the test CA's certificate.
 */
import t from 'tap';
import { X509Certificate, createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_AK_HANDLE, EK_PERSISTENT_HANDLES, Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import type { TpmKeys } from '../../agent/tpm.js';
import { concatBytes, fromHex, toHex } from '../../lib/bytes.js';
import { BulwarkError } from '../../lib/errors.js';
import { decodeTpm2ToolsCredential } from '../../lib/tpm/credential-file.js';
import { checkAkAttributes, decodeTpmtPublic } from '../../lib/tpm/public.js';
import { TPM_ALG, TPM_GENERATED_VALUE } from '../../lib/tpm/types.js';
import { freePort, makeTempDir, removeDir, startTestTpms, type SwtpmProcess } from '../helpers/swtpm.js';

const QUOTE_PCRS = 'sha256:0,1,2,3,4,5,6,7,10';

const root = await makeTempDir('tpm2-tools-tpm');
const fleet = await startTestTpms(join(root, 'tpms'), 4);
const opened: Tpm2ToolsTpm[] = [];
t.teardown(async () => {
  for (const tpm of opened) await tpm.close();
  await fleet.stop();
  await removeDir(root);
});
const [rsaTpm, eccTpm, spareTpm, deadTpm] = fleet.tpms;
if (rsaTpm === undefined || eccTpm === undefined || spareTpm === undefined || deadTpm === undefined) throw new Error('swtpm fleet did not start');

async function open(sw: SwtpmProcess | string, akAlg: 'rsa' | 'ecc', toolTimeoutMs = 20_000): Promise<{ tpm: Tpm2ToolsTpm; workRoot: string }> {
  const workRoot = join(root, `work-${opened.length}`);
  await mkdir(workRoot);
  const tpm = await Tpm2ToolsTpm.open({ tcti: typeof sw === 'string' ? sw : sw.tcti, toolTimeoutMs, akAlg, workRoot });
  opened.push(tpm);
  return { tpm, workRoot };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

/** The key of a persistent object as tpm2-tools itself exports it (independent of lib/tpm/public.ts). */
async function toolPem(sw: SwtpmProcess, handle: number, name: string): Promise<KeyObject> {
  const file = join(root, `${name}-${sw.port}.pem`);
  await sw.tool('tpm2_readpublic', ['-c', `0x${handle.toString(16)}`, '-f', 'pem', '-o', file]);
  return createPublicKey(await readFile(file));
}

/** The Name tpm2_readpublic prints in its YAML. */
async function toolName(sw: SwtpmProcess, handle: number): Promise<string> {
  const yaml = await sw.tool('tpm2_readpublic', ['-c', `0x${handle.toString(16)}`]);
  const m = /^name: ([0-9a-f]+)$/m.exec(yaml);
  if (m?.[1] === undefined) throw new Error('no name in tpm2_readpublic output');
  return m[1];
}

async function handles(sw: SwtpmProcess, kind: string): Promise<string> {
  return (await sw.tool('tpm2_getcap', [kind])).trim();
}

function base64urlToHex(s: string | undefined): string {
  return Buffer.from(s ?? '', 'base64url').toString('hex');
}

async function issuerKey(): Promise<KeyObject> {
  return new X509Certificate(await readFile(join(fleet.ca.bundleDir, 'issuercert.pem'))).publicKey;
}

/** Verifies a quote's TPMT_SIGNATURE over the attest bytes with node:crypto (Part 2, 11.3.4). */
function verifyQuoteSignature(attest: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  const sig = Buffer.from(signature);
  const sigAlg = sig.readUInt16BE(0);
  if (sig.readUInt16BE(2) !== TPM_ALG.SHA256) return false;
  if (sigAlg === TPM_ALG.RSASSA) {
    const size = sig.readUInt16BE(4);
    return verify('sha256', attest, key, sig.subarray(6, 6 + size));
  }
  if (sigAlg === TPM_ALG.ECDSA) {
    const rSize = sig.readUInt16BE(4);
    const r = sig.subarray(6, 6 + rSize);
    const sSize = sig.readUInt16BE(6 + rSize);
    const s = sig.subarray(8 + rSize, 8 + rSize + sSize);
    const pad = (b: Uint8Array): Uint8Array => concatBytes(new Uint8Array(32 - b.length), b);
    return verify('sha256', attest, { key, dsaEncoding: 'ieee-p1363' }, concatBytes(pad(r), pad(s)));
  }
  return false;
}

/** tpm2_makecredential -T none (no TPM involved), as the notes prescribe: -n takes the Name as hex text. */
async function makeCredential(sw: SwtpmProcess, ekHandle: number, name: Uint8Array, secret: Uint8Array, label: string): Promise<Uint8Array> {
  const dir = join(root, `cred-${label}-${sw.port}`);
  await mkdir(dir, { recursive: true });
  await sw.tool('tpm2_readpublic', ['-c', `0x${ekHandle.toString(16)}`, '-o', join(dir, 'ek.pub')]);
  await writeFile(join(dir, 'secret'), secret);
  await sw.tool('tpm2_makecredential', ['-T', 'none', '-u', join(dir, 'ek.pub'), '-s', join(dir, 'secret'), '-n', toHex(name), '-o', join(dir, 'cred')]);
  return new Uint8Array(await readFile(join(dir, 'cred')));
}

async function leftovers(workRoot: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(workRoot)) for (const f of await readdir(join(workRoot, d))) out.push(`${d}/${f}`);
  return out;
}

t.test('RSA EK + RSA AK: keys, certificate, quotes, credential activation', async (t) => {
  const sw = rsaTpm;
  const { tpm, workRoot } = await open(sw, 'rsa');
  t.equal(await handles(sw, 'handles-persistent'), '- 0x81010001\n- 0x81010016', 'swtpm_setup left the EKs and no AK');

  const first = await timed(() => tpm.ensureKeys({ ekType: 'rsa', akHandle: DEFAULT_AK_HANDLE }));
  const keys = first.value;
  t.comment(`ensureKeys (rsa, creating the AK): ${first.ms.toFixed(0)} ms`);
  t.equal(keys.ekHandle, 0x81010001);
  t.equal(keys.akHandle, 0x81010002);
  t.same(await tpm.getPersistentHandles(), [0x81010001, 0x81010002, 0x81010016], 'the AK is persisted');
  t.equal(await handles(sw, 'handles-transient'), '', 'no transient object left loaded');

  // EK public and certificate, checked against tpm2-tools' PEM and the test CA.
  const ek = decodeTpmtPublic(keys.ekPublic);
  if (ek.type !== 'rsa') throw new Error('EK is not RSA');
  t.equal(ek.keyBits, 2048);
  t.ok(keys.ekCertificate !== null, 'EK certificate read from NV 0x01c00002');
  const cert = new X509Certificate(keys.ekCertificate ?? new Uint8Array());
  t.equal(toHex(keys.ekCertificate ?? new Uint8Array()), toHex(new Uint8Array(cert.raw)), 'exactly the DER, no NV padding');
  t.equal(base64urlToHex(cert.publicKey.export({ format: 'jwk' }).n), toHex(ek.modulus), 'certificate modulus = EK public modulus');
  t.ok(cert.publicKey.equals(await toolPem(sw, 0x81010001, 'ek')), 'certificate key = tpm2_readpublic -f pem of the EK');
  t.ok(cert.verify(await issuerKey()), 'certificate signed by the test CA');

  // AK: a proper restricted signing key whose Name is what tpm2-tools reports.
  const ak = decodeTpmtPublic(keys.akPublic);
  t.same(checkAkAttributes(ak), [], 'AK attributes are acceptable');
  t.equal(ak.type, 'rsa');
  t.equal(toHex(keys.akName), await toolName(sw, 0x81010002), 'akName = tpm2_readpublic name');
  t.equal(toHex(keys.akName), `000b${createHash('sha256').update(keys.akPublic).digest('hex')}`, 'akName = sha256 Name of akPublic');

  const second = await timed(() => tpm.ensureKeys({ ekType: 'rsa', akHandle: DEFAULT_AK_HANDLE }));
  t.comment(`ensureKeys (rsa, existing AK): ${second.ms.toFixed(0)} ms`);
  const same = (a: TpmKeys, b: TpmKeys): Record<string, string | number | null> => ({
    ek: toHex(a.ekPublic) === toHex(b.ekPublic) ? 'same' : 'different',
    cert: a.ekCertificate === null || b.ekCertificate === null ? null : toHex(a.ekCertificate) === toHex(b.ekCertificate) ? 'same' : 'different',
    ak: toHex(a.akPublic) === toHex(b.akPublic) ? 'same' : 'different',
    name: toHex(a.akName) === toHex(b.akName) ? 'same' : 'different',
  });
  t.same(same(second.value, keys), { ek: 'same', cert: 'same', ak: 'same', name: 'same' }, 'a second call reuses the AK');
  t.same(await tpm.getPersistentHandles(), [0x81010001, 0x81010002, 0x81010016], 'and creates nothing');

  // Quote: TCG magic, the nonce as extraData, a signature by the AK that node:crypto verifies.
  const akKey = await toolPem(sw, 0x81010002, 'ak');
  const nonce = randomBytes(32);
  const q = await timed(() => tpm.quote(nonce, QUOTE_PCRS, keys.akHandle));
  t.comment(`quote: ${q.ms.toFixed(0)} ms`);
  t.equal(Buffer.from(q.value.attest).readUInt32BE(0), TPM_GENERATED_VALUE, 'attest starts with 0xff544347');
  t.ok(Buffer.from(q.value.attest).includes(nonce), 'attest contains the nonce');
  t.ok(verifyQuoteSignature(q.value.attest, q.value.signature, akKey), 'signature verifies with the AK');
  t.ok(q.value.pcrs.length > 0, 'PCR file written');
  const otherAttest = new Uint8Array(q.value.attest);
  otherAttest[otherAttest.length - 1] = (otherAttest[otherAttest.length - 1] ?? 0) ^ 1;
  t.notOk(verifyQuoteSignature(otherAttest, q.value.signature, akKey), 'the check above can fail');

  // Many quotes in a row: persistent AK, so no "out of memory for object contexts".
  const many = await timed(async () => {
    for (let i = 0; i < 40; i++) {
      const n = randomBytes(32);
      const r = await tpm.quote(n, QUOTE_PCRS, keys.akHandle);
      if (!Buffer.from(r.attest).includes(n)) throw new Error(`quote ${i} lacks its nonce`);
    }
  });
  t.comment(`40 sequential quotes: ${many.ms.toFixed(0)} ms (${(many.ms / 40).toFixed(1)} ms each)`);
  t.pass('40 quotes in a row');

  // Concurrent callers are serialized by the adapter.
  const nonces = Array.from({ length: 8 }, () => randomBytes(32));
  const parallel = await Promise.all(nonces.map((n) => tpm.quote(n, QUOTE_PCRS, keys.akHandle)));
  t.ok(
    parallel.every((r, i) => Buffer.from(r.attest).includes(nonces[i] ?? Buffer.alloc(0)) && verifyQuoteSignature(r.attest, r.signature, akKey)),
    '8 concurrent quotes each carry their own nonce and verify',
  );

  // Credential activation round trip, cross-checked with tpm2_makecredential.
  const secret = randomBytes(32);
  const cred = decodeTpm2ToolsCredential(await makeCredential(sw, keys.ekHandle, keys.akName, secret, 'good'));
  const act = await timed(() => tpm.activateCredential(cred, keys));
  t.comment(`activateCredential (policy session): ${act.ms.toFixed(0)} ms`);
  t.equal(toHex(act.value), toHex(secret), 'the activated secret is the one sealed');

  const wrongName = Uint8Array.from(keys.akName);
  wrongName[wrongName.length - 1] = (wrongName[wrongName.length - 1] ?? 0) ^ 0xff;
  const badCred = decodeTpm2ToolsCredential(await makeCredential(sw, keys.ekHandle, wrongName, randomBytes(32), 'bad'));
  // The message carries the TPM error (TPM_RC_INTEGRITY).
  await t.rejects(
    tpm.activateCredential(badCred, keys),
    { code: 'TPM_TOOL_FAILED', details: { tool: 'tpm2_activatecredential', exitCode: 1 }, message: /0x1DF\) - tpm:parameter\(1\):integrity check failed/ },
    'a credential for another Name',
  );
  t.equal(await handles(sw, 'handles-loaded-session'), '', 'the policy session was flushed after the failure');
  t.equal(await handles(sw, 'handles-saved-session'), '', 'no saved session either');
  t.equal(toHex(await tpm.activateCredential(cred, keys)), toHex(secret), 'a good credential still activates afterwards');

  // PCR reads, checked against independently computed extends.
  const digest = createHash('sha256').update('bulwark').digest();
  await sw.extendPcr(16, digest.toString('hex'));
  const pcrs = await tpm.readPcrs('sha256:0,16');
  const expected16 = createHash('sha256').update(concatBytes(new Uint8Array(32), digest)).digest('hex');
  t.equal(toHex(pcrs.get(TPM_ALG.SHA256)?.get(16) ?? new Uint8Array()), expected16, 'PCR 16 = H(0 || digest)');
  t.equal(toHex(pcrs.get(TPM_ALG.SHA256)?.get(0) ?? new Uint8Array()), '00'.repeat(32));
  // extendPcr, checked by tpm2_pcrread (not the adapter) against H(H(0 || a) || b).
  const a = createHash('sha256').update('report 0').digest();
  const b = createHash('sha256').update('report 1').digest();
  await tpm.extendPcr(13, a);
  await tpm.extendPcr(13, b);
  const after = createHash('sha256').update(createHash('sha256').update(concatBytes(new Uint8Array(32), a)).digest()).update(b).digest('hex');
  t.match(await sw.tool('tpm2_pcrread', ['sha256:13']), new RegExp(`13 *: 0x${after}`, 'i'), 'PCR 13 = H(H(0 || a) || b), read by tpm2_pcrread');
  await t.rejects(tpm.extendPcr(24, a), { code: 'USAGE' }, 'PCR 24 does not exist');
  await t.rejects(tpm.extendPcr(13, a.subarray(0, 20)), { code: 'USAGE' }, 'a digest that is not 32 bytes');
  await t.rejects(tpm.readPcrs('sha1:0'), { code: 'TPM_PCR_BANK_UNAVAILABLE' }, 'a bank swtpm has not allocated');
  await t.rejects(tpm.readPcrs('sha256:0;rm'), { code: 'TPM_PCR_SELECTION_SPEC_INVALID' }, 'a bad selection never reaches the tool');
  await t.rejects(tpm.quote(randomBytes(65), QUOTE_PCRS, keys.akHandle), { code: 'USAGE' }, 'a nonce longer than TPM2B_DATA');
  await t.rejects(tpm.quote(randomBytes(32), QUOTE_PCRS, 0x80000000), { code: 'USAGE' }, 'a transient handle as AK');

  t.equal(await handles(sw, 'handles-transient'), '', 'still no transient object loaded');
  t.same(await leftovers(workRoot), [], 'no temporary file left behind (credential, secret, quote files)');
  await tpm.close();
  t.same(await readdir(workRoot), [], 'close removes the work directory');
  await t.rejects(tpm.getPersistentHandles(), { code: 'USAGE' }, 'a closed adapter');
});

t.test('ECC (P-384) EK + ECC AK: certificate at 0x01c00016, quotes, activation with the EK authValue', async (t) => {
  const sw = eccTpm;
  const { tpm } = await open(sw, 'ecc');
  const first = await timed(() => tpm.ensureKeys({ ekType: 'ecc', akHandle: 0x81010003 }));
  const keys = first.value;
  t.comment(`ensureKeys (ecc, creating the AK): ${first.ms.toFixed(0)} ms`);
  t.equal(keys.ekHandle, EK_PERSISTENT_HANDLES.ecc);
  t.equal(await handles(sw, 'handles-transient'), '');

  const ek = decodeTpmtPublic(keys.ekPublic);
  if (ek.type !== 'ecc') throw new Error('EK is not ECC');
  t.equal(ek.curveId, 0x0004, 'swtpm persists a P-384 EK');
  t.ok(keys.ekCertificate !== null, 'the P-384 certificate is found although 0x01c0000a is absent');
  const cert = new X509Certificate(keys.ekCertificate ?? new Uint8Array());
  const jwk = cert.publicKey.export({ format: 'jwk' });
  t.equal(jwk.crv, 'P-384');
  t.equal(base64urlToHex(jwk.x), toHex(ek.x), 'certificate x = EK x');
  t.equal(base64urlToHex(jwk.y), toHex(ek.y), 'certificate y = EK y');
  t.ok(cert.verify(await issuerKey()), 'certificate signed by the test CA');

  const ak = decodeTpmtPublic(keys.akPublic);
  if (ak.type !== 'ecc') throw new Error('AK is not ECC');
  t.same(checkAkAttributes(ak), []);
  t.equal(ak.curveId, 0x0003, 'AK on P-256');
  // tpm2_createak gives the AK its parent's nameAlg: sha384 under the P-384 EK.
  const hash = ak.nameAlg === TPM_ALG.SHA384 ? 'sha384' : 'sha256';
  t.comment(`AK nameAlg under the P-384 EK: ${hash}`);
  t.equal(toHex(keys.akName), `${ak.nameAlg.toString(16).padStart(4, '0')}${createHash(hash).update(keys.akPublic).digest('hex')}`);
  t.equal(toHex(keys.akName), await toolName(sw, 0x81010003));

  const again = await tpm.ensureKeys({ ekType: 'ecc', akHandle: 0x81010003 });
  t.equal(toHex(again.akPublic), toHex(keys.akPublic), 'second call reuses the ECC AK');
  t.equal(toHex(again.ekCertificate ?? new Uint8Array()), toHex(keys.ekCertificate ?? new Uint8Array()));

  const nonce = randomBytes(32);
  const q = await tpm.quote(nonce, QUOTE_PCRS, keys.akHandle);
  t.equal(Buffer.from(q.attest).readUInt32BE(0), TPM_GENERATED_VALUE);
  t.ok(Buffer.from(q.attest).includes(nonce));
  t.ok(verifyQuoteSignature(q.attest, q.signature, await toolPem(sw, 0x81010003, 'ak-ecc')), 'ECDSA signature verifies');

  const secret = randomBytes(32);
  const cred = decodeTpm2ToolsCredential(await makeCredential(sw, keys.ekHandle, keys.akName, secret, 'ecc'));
  const act = await timed(() => tpm.activateCredential(cred, keys));
  t.comment(`activateCredential (P-384 EK, authValue): ${act.ms.toFixed(0)} ms`);
  t.equal(toHex(act.value), toHex(secret));
  const badCred = decodeTpm2ToolsCredential(await makeCredential(sw, keys.ekHandle, fromHex(`000c${'11'.repeat(48)}`), randomBytes(16), 'ecc-bad'));
  await t.rejects(tpm.activateCredential(badCred, keys), { code: 'TPM_TOOL_FAILED' }, 'wrong Name under the ECC EK');
});

t.test('missing EKs are created; a certificate for another key is not returned', async (t) => {
  const sw = spareTpm;
  const rsaBefore = await sw.tool('tpm2_readpublic', ['-c', '0x81010001']);
  await sw.tool('tpm2_evictcontrol', ['-C', 'o', '-c', '0x81010001']);
  await sw.tool('tpm2_evictcontrol', ['-C', 'o', '-c', '0x81010016']);
  t.equal(await handles(sw, 'handles-persistent'), '', 'no EK left');

  const { tpm } = await open(sw, 'rsa');
  const keys = await tpm.ensureKeys({ ekType: 'rsa', akHandle: DEFAULT_AK_HANDLE });
  t.same(await tpm.getPersistentHandles(), [0x81010001, 0x81010002], 'EK recreated and AK persisted');
  t.equal(await toolName(sw, 0x81010001), /^name: ([0-9a-f]+)$/m.exec(rsaBefore)?.[1], 'the EK template gives back the same key');
  t.ok(keys.ekCertificate !== null, 'so its certificate still applies');

  // tpm2_createek -G ecc makes a P-256 EK; swtpm only has a P-384 certificate.
  const { tpm: eccTpm2 } = await open(sw, 'rsa');
  const eccKeys = await eccTpm2.ensureKeys({ ekType: 'ecc', akHandle: 0x81010004 });
  const ek = decodeTpmtPublic(eccKeys.ekPublic);
  t.equal(ek.type === 'ecc' ? ek.curveId : -1, 0x0003, 'the created ECC EK is P-256');
  t.equal(eccKeys.ekCertificate, null, 'the P-384 certificate in NV is not returned for it');
  t.equal(await handles(sw, 'handles-transient'), '');
});

t.test('a persistent handle that holds something else is refused', async (t) => {
  const sw = spareTpm;
  const dir = join(root, 'storage-key');
  await mkdir(dir);
  await sw.tool('tpm2_createprimary', ['-C', 'o', '-c', join(dir, 'p.ctx')]);
  await sw.tool('tpm2_evictcontrol', ['-C', 'o', '-c', join(dir, 'p.ctx'), '0x81010005']);
  await sw.tool('tpm2_flushcontext', ['-t']);
  const { tpm } = await open(sw, 'rsa');
  await t.rejects(tpm.ensureKeys({ ekType: 'rsa', akHandle: 0x81010005 }), { code: 'TPM_OBJECT_UNEXPECTED', message: /restricted|sign|decrypt/ }, 'a storage key at the AK handle');

  const { tpm: eccAlg } = await open(sw, 'ecc');
  // The message says how to fix it.
  await t.rejects(eccAlg.ensureKeys({ ekType: 'rsa', akHandle: DEFAULT_AK_HANDLE }), { code: 'TPM_OBJECT_UNEXPECTED', message: /tpm2_evictcontrol/ }, 'an RSA AK when akAlg is ecc');
  await t.rejects(tpm.ensureKeys({ ekType: 'rsa', akHandle: 0x81010001 }), { code: 'USAGE' }, 'the EK handle as AK handle');
});

t.test('a dead TPM fails with TPM_TOOL_FAILED, not by running into the command timeout', async (t) => {
  await deadTpm.stop();
  const { tpm } = await open(deadTpm, 'rsa', 10_000);
  // TPM_TOOL_FAILED with the tool's exit code, not TPM_TOOL_TIMEOUT: the failure was not waited out.
  await t.rejects(
    tpm.getPersistentHandles(),
    { code: 'TPM_TOOL_FAILED', details: { tool: 'tpm2_getcap', exitCode: 1 }, message: /Cannot connect to swtpm|Could not load tcti/ },
    'stopped swtpm',
  );
  await t.rejects(tpm.ensureKeys({ ekType: 'rsa', akHandle: DEFAULT_AK_HANDLE }), { code: 'TPM_TOOL_FAILED' }, 'ensureKeys on a stopped swtpm');
  await t.rejects(tpm.quote(randomBytes(32), QUOTE_PCRS, DEFAULT_AK_HANDLE), { code: 'TPM_TOOL_FAILED' }, 'quote on a stopped swtpm');
});

t.test('a TPM that never answers ends in TPM_TOOL_TIMEOUT, and the adapter stays usable', async (t) => {
  // Accepts connections on both swtpm ports and never replies.
  const sockets: Socket[] = [];
  const listen = async (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const srv = createServer((s) => sockets.push(s));
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve(srv));
    });
  let servers: Server[] = [];
  for (let attempt = 0; attempt < 10 && servers.length === 0; attempt++) {
    const port = await freePort();
    try {
      const a = await listen(port);
      try {
        servers = [a, await listen(port + 1)];
      } catch {
        a.close();
      }
    } catch {
      // port taken meanwhile: try another
    }
  }
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });
  const port = servers[0]?.address();
  if (typeof port !== 'object' || port === null) throw new Error('no silent server');
  const { tpm } = await open(`swtpm:host=127.0.0.1,port=${port.port}`, 'rsa', 1000);
  await t.rejects(tpm.getPersistentHandles(), { code: 'TPM_TOOL_TIMEOUT', details: { tool: 'tpm2_getcap' } }, 'silent TPM');
  await t.rejects(tpm.quote(randomBytes(32), QUOTE_PCRS, DEFAULT_AK_HANDLE), { code: 'TPM_TOOL_TIMEOUT' }, 'the next command runs too (mutex released)');
});

t.test('commands are serialized: no two tools run at once', async (t) => {
  // Stand-in tpm2_getcap/tpm2_quote that log their start and end around a short sleep,
  // so overlapping runs would show in the log. The TPM itself is not involved.
  const toolDir = join(root, 'fake-tools');
  const log = join(root, 'fake-tools.log');
  await mkdir(toolDir);
  const script = (out: string, status: number): string => `#!/bin/sh\necho "start $$" >> ${log}\nsleep 0.05\n${out}\necho "end $$" >> ${log}\nexit ${status}\n`;
  await writeFile(join(toolDir, 'tpm2_getcap'), script("echo '- 0x81010001'", 0), { mode: 0o755 });
  await writeFile(join(toolDir, 'tpm2_quote'), script('echo "ERROR: fake failure" >&2', 3), { mode: 0o755 });
  await writeFile(log, '');
  const workRoot = join(root, 'work-fake');
  await mkdir(workRoot);
  const tpm = await Tpm2ToolsTpm.open({ tcti: 'swtpm:host=127.0.0.1,port=1', toolTimeoutMs: 5000, akAlg: 'rsa', workRoot, toolDir });
  opened.push(tpm);
  const calls = await Promise.allSettled([
    ...Array.from({ length: 6 }, () => tpm.getPersistentHandles()),
    ...Array.from({ length: 3 }, () => tpm.quote(randomBytes(8), QUOTE_PCRS, DEFAULT_AK_HANDLE)),
  ]);
  t.equal(calls.filter((c) => c.status === 'fulfilled').length, 6, 'getcap calls succeed');
  t.ok(
    calls.slice(6).every((c) => c.status === 'rejected' && c.reason instanceof BulwarkError && c.reason.code === 'TPM_TOOL_FAILED' && c.reason.details['exitCode'] === 3),
    'failing quotes reject with their exit code and do not block the queue',
  );
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  t.equal(lines.length, 18);
  let overlap = false;
  for (let i = 0; i < lines.length; i += 2) {
    const pid = lines[i]?.split(' ')[1];
    if (lines[i] !== `start ${pid}` || lines[i + 1] !== `end ${pid}`) overlap = true;
  }
  t.notOk(overlap, 'every start is followed by its own end');
  await t.rejects(Tpm2ToolsTpm.open({ tcti: 'x', toolTimeoutMs: 1000, akAlg: 'rsa', toolDir: 'relative' }), { code: 'USAGE' }, 'a relative tool directory');
});
