/**
 * `bulwarkctl verify` on envelopes signed here, in process (runCtl) and through the built
 * CLI (dist/cli/bulwarkctl.js): exit 0 verified, 1 not verified (saying which check),
 * 2 usage, 3 malformed envelope or key file.
 */
import t from 'tap';
import { execa } from 'execa';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCtl } from '../../cli/index.js';
import { encodeEnvelope, keySigner, PAYLOAD_TYPES, signEnvelope } from '../../lib/dsse/index.js';

const CTL_MAIN = fileURLToPath(new URL('../../cli/bulwarkctl.js', import.meta.url));

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

function pem(k: KeyObject): string {
  return String(k.export({ type: 'spki', format: 'pem' }));
}

const dir = await mkdtemp(join(tmpdir(), 'bulwark-ctl-verify-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const b = generateKeyPairSync('ed25519');
const c = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('ed25519');
const keysDir = join(dir, 'keys');
await mkdir(keysDir);
await writeFile(join(keysDir, 'a.pem'), pem(a.publicKey));
await writeFile(join(keysDir, 'b.pem'), pem(b.publicKey));
await writeFile(join(keysDir, 'c.pem'), pem(c.publicKey));
await writeFile(join(keysDir, 'notes.txt'), 'not a key, not read');
const bundle = join(dir, 'bundle.pem');
await writeFile(bundle, `${pem(a.publicKey)}\n${pem(b.publicKey)}`);

const payload = new TextEncoder().encode('{"version":1,"entries":[]}');
const digest = createHash('sha256').update(payload).digest('hex');
const signed = join(dir, 'policy.dsse.json');
await writeFile(signed, encodeEnvelope(await signEnvelope(PAYLOAD_TYPES.policy, payload, [keySigner(a.privateKey, { keyid: 'a' }), keySigner(b.privateKey, { keyid: 'b' })])));
const foreign = join(dir, 'foreign.dsse.json');
await writeFile(foreign, encodeEnvelope(await signEnvelope(PAYLOAD_TYPES.policy, payload, [keySigner(stranger.privateKey, { keyid: 'a' })])));
const malformed = join(dir, 'malformed.json');
await writeFile(malformed, '{"payload":"not*base64","payloadType":"x","signatures":[{"sig":"AAAA"}]}');
const notKey = join(dir, 'not-a-key.pem');
await writeFile(notKey, String(a.privateKey.export({ type: 'pkcs8', format: 'pem' })));

t.test('verified: 2 of 3 keys of a directory, text and JSON', async (t) => {
  const r = await ctl('verify', signed, '--trusted-keys', keysDir, '--threshold', '2', '--payload-type', PAYLOAD_TYPES.policy);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /verified: 2 of 3 trusted key\(s\) \(threshold 2\)/);
  t.match(r.out, `payload type: ${PAYLOAD_TYPES.policy}`);
  t.match(r.out, 'keys: a.pem, b.pem');
  t.match(r.out, `payload sha256: ${digest}`);
  const j = await ctl('verify', signed, '--trusted-keys', bundle, '--json');
  t.equal(j.code, 0, j.err);
  t.same(JSON.parse(j.out), { verified: true, payloadType: PAYLOAD_TYPES.policy, keys: [`${bundle}#1`, `${bundle}#2`], threshold: 1, trustedKeys: 2, payloadSha256: digest, payloadBytes: payload.length });
});

t.test('not verified: exit 1 naming the check', async (t) => {
  const threshold = await ctl('verify', signed, '--trusted-keys', keysDir, '--threshold', '3');
  t.equal(threshold.code, 1);
  t.match(threshold.out, /not verified: SIGNATURE_THRESHOLD_NOT_MET: 2 distinct trusted key\(s\) verified the envelope, 3 needed/);
  const untrusted = await ctl('verify', foreign, '--trusted-keys', keysDir, '--json');
  t.equal(untrusted.code, 1);
  t.match(JSON.parse(untrusted.out), { verified: false, code: 'SIGNATURE_INVALID', details: { verified: 0 } });
  const type = await ctl('verify', signed, '--trusted-keys', keysDir, '--payload-type', PAYLOAD_TYPES.baseline);
  t.equal(type.code, 1);
  t.match(type.out, /PAYLOAD_TYPE_MISMATCH/);
});

t.test('malformed envelope or key: exit 3; impossible threshold: exit 2', async (t) => {
  const env = await ctl('verify', malformed, '--trusted-keys', keysDir);
  t.equal(env.code, 3);
  t.match(env.err, /ENVELOPE_MALFORMED: .*\/payload is not base64/);
  const key = await ctl('verify', signed, '--trusted-keys', notKey);
  t.equal(key.code, 3);
  t.match(key.err, /KEY_INVALID: .* is not a PEM public key/);
  const none = await ctl('verify', signed, '--trusted-keys', join(keysDir, 'notes.txt'));
  t.equal(none.code, 3);
  const usage = await ctl('verify', signed, '--trusted-keys', bundle, '--threshold', '3');
  t.equal(usage.code, 2);
  t.match(usage.err, /USAGE: threshold 3 can never be met by 2 distinct trusted key/);
  t.equal((await ctl('verify', signed)).code, 2, '--trusted-keys is required');
});

t.test('the built CLI keeps the exit codes', async (t) => {
  const run = (...args: string[]): Promise<{ exitCode?: number | undefined; stdout: unknown }> => execa('node', [CTL_MAIN, 'verify', ...args], { reject: false });
  const ok = await run(signed, '--trusted-keys', keysDir, '--threshold', '2');
  t.equal(ok.exitCode, 0);
  t.match(String(ok.stdout), digest);
  t.equal((await run(foreign, '--trusted-keys', keysDir)).exitCode, 1);
  t.equal((await run(malformed, '--trusted-keys', keysDir)).exitCode, 3);
  const help = await execa('node', [CTL_MAIN, 'verify', '--help'], { reject: false });
  t.equal(help.exitCode, 0);
  t.match(String(help.stdout), /--trusted-keys <DIR\|FILE>/);
});
