/**
 * Interop both ways with an independent DSSE implementation: securesystemslib 1.6.0 from
 * PyPI (in a venv cached by test/tools/securesystemslib-venv.sh), through
 * test/tools/dsse-interop.py. ECDSA P-256, RSA-PSS and Ed25519 keys made here: Python signs
 * and lib/dsse verifies; lib/dsse signs and Python verifies; both refuse an altered payload;
 * both build the same PAE. Skipped, with the reason, only when the venv cannot be made
 * (no python3 or no PyPI).
 */
import t from 'tap';
import { execa } from 'execa';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeEnvelope, keySigner, pae, PAYLOAD_TYPES, signEnvelope, verifyEnvelope } from '../../../lib/dsse/index.js';

const TOOLS = fileURLToPath(new URL('../../../../test/tools/', import.meta.url));
const enc = new TextEncoder();

const venv = await execa('bash', [`${TOOLS}securesystemslib-venv.sh`], { reject: false, timeout: 10 * 60_000 });
const python = String(venv.stdout).trim().split('\n').pop() ?? '';
const skip = venv.exitCode === 0 && python !== '' ? false : `securesystemslib venv unavailable: ${String(venv.stderr).trim().split('\n').slice(-2).join(' | ')}`;

interface Key {
  readonly keyid: string;
  readonly scheme: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

function key(keyid: string, scheme: string): Key {
  const pair =
    scheme === 'ecdsa-sha2-nistp256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : scheme === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 3072 });
  return { keyid, scheme, ...pair };
}

const KEYS = [key('p256', 'ecdsa-sha2-nistp256'), key('rsa-pss', 'rsassa-pss-sha256'), key('ed25519', 'ed25519')];

function pem(k: KeyObject): string {
  return String(k.export(k.type === 'private' ? { type: 'pkcs8', format: 'pem' } : { type: 'spki', format: 'pem' }));
}

async function py(request: unknown): Promise<Record<string, unknown>> {
  const r = await execa(python, [`${TOOLS}dsse-interop.py`], { input: JSON.stringify(request), reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`dsse-interop.py exited ${String(r.exitCode)}: ${String(r.stderr)}`);
  const out: unknown = JSON.parse(String(r.stdout));
  if (typeof out !== 'object' || out === null || Array.isArray(out)) throw new Error('answer');
  return Object.fromEntries(Object.entries(out));
}

function pyKeys(keys: readonly Key[], which: 'publicKey' | 'privateKey'): unknown[] {
  return keys.map((k) => ({ pem: pem(k[which]), keyid: k.keyid, scheme: k.scheme }));
}

const payload = enc.encode('{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"é","digest":{"sha256":"00"}}]}');
const b64 = Buffer.from(payload).toString('base64');

t.test('securesystemslib signs, lib/dsse verifies', { skip }, async (t) => {
  for (const k of KEYS) {
    const env = await py({ op: 'sign', payloadType: PAYLOAD_TYPES.inToto, payload: b64, keys: pyKeys([k], 'privateKey') });
    const v = verifyEnvelope(JSON.stringify(env), { trustedKeys: [k.publicKey], payloadType: PAYLOAD_TYPES.inToto });
    t.same([...v.payload], [...payload], `${k.scheme}`);
    const others = KEYS.filter((o) => o !== k).map((o) => o.publicKey);
    t.throws(() => verifyEnvelope(JSON.stringify(env), { trustedKeys: others, payloadType: PAYLOAD_TYPES.inToto }), { code: 'SIGNATURE_INVALID' }, `${k.scheme}: not by the other keys`);
  }
  const all = await py({ op: 'sign', payloadType: PAYLOAD_TYPES.inToto, payload: b64, keys: pyKeys(KEYS, 'privateKey') });
  const v = verifyEnvelope(JSON.stringify(all), { trustedKeys: KEYS.map((k) => ({ key: k.publicKey, keyid: k.keyid })), threshold: 3, payloadType: PAYLOAD_TYPES.inToto });
  t.same(
    v.keys.map((k) => k.keyid),
    ['p256', 'rsa-pss', 'ed25519'],
    '3 of 3',
  );
  // The payload altered after Python signed it.
  const altered = { ...all, payload: Buffer.from(enc.encode('{}')).toString('base64') };
  t.throws(() => verifyEnvelope(JSON.stringify(altered), { trustedKeys: KEYS.map((k) => k.publicKey), payloadType: PAYLOAD_TYPES.inToto }), { code: 'SIGNATURE_INVALID' });
});

t.test('lib/dsse signs, securesystemslib verifies', { skip }, async (t) => {
  const signers = KEYS.map((k) => keySigner(k.privateKey, { keyid: k.keyid }));
  for (const [i, k] of KEYS.entries()) {
    const signer = signers[i];
    if (signer === undefined) continue;
    const env: unknown = JSON.parse(encodeEnvelope(await signEnvelope(PAYLOAD_TYPES.inToto, payload, [signer])));
    const r = await py({ op: 'verify', envelope: env, keys: pyKeys([k], 'publicKey'), threshold: 1 });
    t.same(r, { ok: true, keyids: [k.keyid] }, k.scheme);
  }
  const all: unknown = JSON.parse(encodeEnvelope(await signEnvelope(PAYLOAD_TYPES.inToto, payload, signers)));
  t.same(await py({ op: 'verify', envelope: all, keys: pyKeys(KEYS, 'publicKey'), threshold: 3 }), { ok: true, keyids: ['ed25519', 'p256', 'rsa-pss'] });
  // Python refuses what we would refuse: the check can fail.
  const altered = await signEnvelope(PAYLOAD_TYPES.inToto, payload, signers);
  const tampered: unknown = JSON.parse(encodeEnvelope({ ...altered, payload: enc.encode('{"tampered":true}') }));
  const r = await py({ op: 'verify', envelope: tampered, keys: pyKeys(KEYS, 'publicKey'), threshold: 1 });
  t.equal(r['ok'], false, 'securesystemslib refuses an altered payload');
  const typed: unknown = JSON.parse(encodeEnvelope({ ...altered, payloadType: PAYLOAD_TYPES.policy }));
  t.equal((await py({ op: 'verify', envelope: typed, keys: pyKeys(KEYS, 'publicKey'), threshold: 1 }))['ok'], false, 'and a changed payloadType');
});

t.test('the same PAE', { skip }, async (t) => {
  for (const [type, body] of [
    ['', new Uint8Array()],
    [PAYLOAD_TYPES.keyset, payload],
    ['application/vnd.ä+json', enc.encode('ಠ')],
  ] as const) {
    const r = await py({ op: 'pae', payloadType: type, payload: Buffer.from(body).toString('base64') });
    t.equal(r['pae'], Buffer.from(pae(type, body)).toString('base64'), JSON.stringify(type));
  }
});
