/**
 * Attestation-bound signatures, pure (lib/dsse/attested.ts): a controller attestation and a
 * host envelope built here with node:crypto keys; every check of verifyAttestedEnvelope
 * refuses the envelope it exists for, and a good one verifies.
 */
import t from 'tap';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  attestationStatement,
  attestedArtifactStatement,
  encodeEnvelope,
  encodeSignRequest,
  hostKeyFingerprint,
  keySigner,
  parseSignRequest,
  signEnvelope,
  verifyAttestedEnvelope,
  type DsseEnvelope,
} from '../../../lib/dsse/index.js';
import { BulwarkError } from '../../../lib/index.js';

const controller = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherController = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const host = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherHost = generateKeyPairSync('ed25519');

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const OLD = { name: 'app.tar', sha256: sha('old artifact') };
const NEW = { name: 'app.tar', sha256: sha('new artifact') };
const T0 = Date.parse('2026-12-02T02:00:00.000Z');
const VALIDITY = 5 * 60_000;

async function attestation(artifact: { name: string; sha256: string }, opts: { key?: KeyObject; hostKey?: KeyObject; nodeId?: string } = {}): Promise<DsseEnvelope> {
  const s = attestationStatement(artifact, {
    nodeId: opts.nodeId ?? 'node-a',
    akName: '000b' + 'ab'.repeat(32),
    verdict: 'trusted',
    quoteTime: new Date(T0 - 1000).toISOString(),
    issuedAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + VALIDITY).toISOString(),
    hostKey: { sha256: hostKeyFingerprint(opts.hostKey ?? host.publicKey) },
  });
  return signEnvelope(s.payloadType, s.payload, [keySigner(opts.key ?? controller.privateKey)]);
}

async function hostEnvelope(artifact: { name: string; sha256: string }, att: DsseEnvelope, opts: { signedAt?: number; key?: KeyObject; keyFor?: KeyObject } = {}): Promise<string> {
  const s = attestedArtifactStatement(
    artifact,
    { nodeId: 'node-a', signedAt: new Date(opts.signedAt ?? T0 + 1000).toISOString(), hostKeySha256: hostKeyFingerprint(opts.keyFor ?? host.publicKey) },
    att,
  );
  return encodeEnvelope(await signEnvelope(s.payloadType, s.payload, [keySigner(opts.key ?? host.privateKey)]));
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (err) {
    return err instanceof BulwarkError ? `${err.code}${typeof err.details['check'] === 'string' ? `:${err.details['check']}` : ''}` : `not a BulwarkError: ${String(err)}`;
  }
}

const trust = { hostKeys: [{ key: host.publicKey, keyid: 'host-a' }], controllerKeys: [{ key: controller.publicKey, keyid: 'controller' }] };

t.test('a host envelope bound to a controller attestation verifies', async (t) => {
  const env = await hostEnvelope(NEW, await attestation(NEW));
  const v = verifyAttestedEnvelope(env, { ...trust, artifactSha256: NEW.sha256 });
  t.equal(v.sha256, NEW.sha256);
  t.equal(v.nodeId, 'node-a');
  t.equal(v.hostKeyId, 'host-a');
  t.equal(v.controllerKeyId, 'controller');
  t.equal(v.hostKeySha256, hostKeyFingerprint(host.publicKey));
  t.equal(v.expiresAt, new Date(T0 + VALIDITY).toISOString());
});

t.test('an old attestation pieced together with a new artifact is refused (digest)', async (t) => {
  const env = await hostEnvelope(NEW, await attestation(OLD));
  t.equal(codeOf(() => verifyAttestedEnvelope(env, trust)), 'ATTESTATION_INVALID:digest');
});

t.test('the artifact given must be the one signed', async (t) => {
  const env = await hostEnvelope(NEW, await attestation(NEW));
  t.equal(codeOf(() => verifyAttestedEnvelope(env, { ...trust, artifactSha256: OLD.sha256 })), 'ATTESTATION_INVALID:artifact');
});

t.test('a signature made after the attestation expired (or before it was issued) is refused', async (t) => {
  const att = await attestation(NEW);
  const late = await hostEnvelope(NEW, att, { signedAt: T0 + VALIDITY + 1 });
  t.equal(codeOf(() => verifyAttestedEnvelope(late, trust)), 'ATTESTATION_INVALID:signed-at');
  const early = await hostEnvelope(NEW, att, { signedAt: T0 - 1 });
  t.equal(codeOf(() => verifyAttestedEnvelope(early, trust)), 'ATTESTATION_INVALID:signed-at');
  const edge = await hostEnvelope(NEW, att, { signedAt: T0 + VALIDITY });
  t.equal(verifyAttestedEnvelope(edge, trust).sha256, NEW.sha256, 'the last millisecond of the window is inside it');
});

t.test('a wrong controller key, or an attestation signed by another key, is refused', async (t) => {
  const env = await hostEnvelope(NEW, await attestation(NEW));
  t.equal(codeOf(() => verifyAttestedEnvelope(env, { ...trust, controllerKeys: [otherController.publicKey] })), 'SIGNATURE_INVALID');
  const forged = await hostEnvelope(NEW, await attestation(NEW, { key: otherController.privateKey }));
  t.equal(codeOf(() => verifyAttestedEnvelope(forged, trust)), 'SIGNATURE_INVALID');
});

t.test('the host key that signed must be the one the attestation names', async (t) => {
  // Both host keys trusted, the attestation names `host`, the envelope is signed by `otherHost`.
  const env = await hostEnvelope(NEW, await attestation(NEW), { key: otherHost.privateKey, keyFor: otherHost.publicKey });
  t.equal(codeOf(() => verifyAttestedEnvelope(env, { ...trust, hostKeys: [host.publicKey, otherHost.publicKey] })), 'ATTESTATION_INVALID:host-key');
  t.equal(codeOf(() => verifyAttestedEnvelope(env, trust)), 'SIGNATURE_INVALID', 'an untrusted host key does not verify at all');
});

t.test('an attestation for another node is refused', async (t) => {
  const env = await hostEnvelope(NEW, await attestation(NEW, { nodeId: 'node-b' }));
  t.equal(codeOf(() => verifyAttestedEnvelope(env, trust)), 'ATTESTATION_INVALID:node');
});

t.test('a plain in-toto envelope, or a tampered embedded attestation, is refused', async (t) => {
  const plain = await signEnvelope('application/vnd.in-toto+json', new TextEncoder().encode(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'x', digest: { sha256: NEW.sha256 } }], predicateType: 'https://example.com/p' })), [
    keySigner(host.privateKey),
  ]);
  t.equal(codeOf(() => verifyAttestedEnvelope(plain, trust)), 'ATTESTATION_INVALID:predicate-type');
  const att = await attestation(NEW);
  const payload = new TextDecoder().decode(att.payload).replace('"verdict":"trusted"', '"verdict":"untrusted"');
  const tampered = { ...att, payload: new TextEncoder().encode(payload) };
  const env = await hostEnvelope(NEW, tampered);
  t.equal(codeOf(() => verifyAttestedEnvelope(env, trust)), 'SIGNATURE_INVALID', 'the controller signature no longer verifies');
});

t.test('signing requests round-trip; malformed ones are SIGN_REQUEST_MALFORMED', async (t) => {
  const req = { version: 1 as const, nodeId: 'node-a', artifact: NEW, hostKey: host.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
  t.same(parseSignRequest(encodeSignRequest(req)), req);
  for (const bad of ['', '{}', 'null', '{"version":1}', JSON.stringify({ ...req, nodeId: '-a' }), JSON.stringify({ ...req, artifact: { name: 'x', sha256: 'AB' } }), JSON.stringify({ ...req, extra: 1 })]) {
    t.equal(codeOf(() => parseSignRequest(new TextEncoder().encode(bad))), 'SIGN_REQUEST_MALFORMED', bad.slice(0, 60));
  }
});
