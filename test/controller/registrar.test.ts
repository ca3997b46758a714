/**
 * The registrar against a real JetStream store: EK and AK checks, the credential
 * challenge answered in software with the EK's private key (the test EK in
 * test/fixtures/tpm/sw-rsa-ek.*), and what an enrollment does to an existing node.
 */
import t from 'tap';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { toHex } from '../../lib/bytes.js';
import { verifyNodeIdentity } from '../../lib/attestation/node-identity.js';
import { decodeTpmtPublic } from '../../lib/tpm/public.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { finding } from '../../lib/verdict.js';
import { Registrar, type RegistrarOptions } from '../../controller/registrar/registrar.js';
import type { EnrollRequestMsg } from '../../proto/wire.js';
import { SoftTpm } from '../helpers/soft-tpm.js';
import { readFixture, readFixtureText } from '../lib/tpm/fixture-files.js';
import { softwareActivate } from '../lib/tpm/software-activate.js';
import { createNkeyUser } from '../../lib/nats-auth/index.js';
import { AK_ATTRIBUTES, rsaEkLike, writeRsaPublic } from '../lib/tpm/tpmt-builder.js';
import { TPMA_OBJECT } from '../../lib/tpm/types.js';
import { openStateBed } from './state-bed.js';

const bed = await openStateBed('registrar');
t.teardown(() => bed.close());
const { store, events } = bed;

const ekPublic = await readFixture('tpm', 'sw-rsa-ek.tpmt');
const ekPrivate = createPrivateKey(await readFixtureText('tpm', 'sw-rsa-ek.key.pem'));
const ek = decodeTpmtPublic(ekPublic);
const ekHash = toHex(createHash('sha256').update(ekPublic).digest());
const identity = generateKeyPairSync('ed25519');
const T0 = Date.parse('2026-11-22T10:00:00.000Z');

/** Allow-listed EK hashes; each software EK made below adds its own. */
const allowList: string[] = [ekHash];

/** Another TPM's EK (one node per TPM: every node id below that enrolls needs its own), allow-listed. */
interface SoftEk {
  readonly ekPublic: Uint8Array;
  readonly ekPrivate: ReturnType<typeof createPrivateKey>;
}
function newEk(): SoftEk {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const n = pair.publicKey.export({ format: 'jwk' }).n;
  if (n === undefined) throw new Error('no modulus');
  const ekPub = rsaEkLike(Buffer.from(n, 'base64url'));
  allowList.push(toHex(createHash('sha256').update(ekPub).digest()));
  return { ekPublic: ekPub, ekPrivate: pair.privateKey };
}

const resets: string[] = [];
const OPTS: RegistrarOptions = {
  ekCaBundle: [],
  ekAllowList: allowList,
  enrollTtlMs: 60_000,
  identityKey: identity.privateKey,
  enrollment: 'open' as const,
  maxPendingEnrollments: 1000,
  natsUrl: 'nats://127.0.0.1:4222',
  pcrSelection: 'sha256:0,1,2,3,4,5,6,7,8,9,10,14',
  intervalMs: 30_000,
  resetNodeState: async (nodeId) => void resets.push(nodeId),
};

function request(nodeId: string, tpm: SoftTpm, over: Partial<EnrollRequestMsg> = {}): EnrollRequestMsg {
  return { nodeId, ekType: 'rsa', ekPublic, ekCertificate: new Uint8Array(0), akPublic: tpm.akPublic, facts: null, nomadNode: '', ...over };
}

/** Enrolls and answers the challenge as the TPM holding the EK and the AK would (`soft`: another TPM's EK than the fixture's). */
async function enrollFully(r: Registrar, nodeId: string, tpm: SoftTpm, now = T0, over: Partial<EnrollRequestMsg> = {}, soft?: SoftEk) {
  const challenge = await r.enroll(request(nodeId, tpm, { ...over, ...(soft === undefined ? {} : { ekPublic: soft.ekPublic }) }), now);
  const secret = soft === undefined ? softwareActivate(ek, ekPrivate, tpm.akName, challenge) : softwareActivate(decodeTpmtPublic(soft.ekPublic), soft.ekPrivate, tpm.akName, challenge);
  if (secret === null) throw new Error('the credential does not activate for this AK');
  return r.activate({ challengeId: challenge.challengeId, secret, natsPublicKey: createNkeyUser().publicKey }, now + 1000);
}

t.test('an allow-listed EK with a proper AK enrolls once the credential is activated', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const tpm = new SoftTpm();
  const challenge = await r.enroll(request('r-good', tpm), T0);
  t.equal(await store.getNode('r-good'), null, 'nothing is stored before the activation');
  t.equal(softwareActivate(ek, ekPrivate, new SoftTpm().akName, challenge), null, 'the credential is bound to this AK name');
  const secret = softwareActivate(ek, ekPrivate, tpm.akName, challenge);
  if (secret === null) return t.fail('no secret');
  const done = await r.activate({ challengeId: challenge.challengeId, secret, natsPublicKey: createNkeyUser().publicKey }, T0 + 1000);
  t.equal(done.nodeId, 'r-good');
  t.same([done.natsUrl, done.pcrSelection, done.intervalMs], [OPTS.natsUrl, OPTS.pcrSelection, OPTS.intervalMs]);
  const claims = verifyNodeIdentity(identity.publicKey, done.nodeIdentity);
  t.same([claims.nodeId, claims.akName], ['r-good', toHex(tpm.akName)], 'the identity names the node and its AK');

  const stored = await store.getNode('r-good');
  t.equal(stored?.record.state, 'enrolled');
  t.equal(stored?.record.akPublic, tpm.akPublicHex);
  t.equal(stored?.record.ekCertificateSubject, `allow-listed EK sha256:${ekHash}`);
  t.equal(stored?.record.enrolledAt, new Date(T0 + 1000).toISOString());
  t.ok(resets.includes('r-good'), "the appraisers' state of the node is reset");
  t.same(
    (await store.history('r-good', 5)).map((e) => [e.previous, e.state]),
    [['unknown', 'enrolled']],
  );
  await t.rejects(r.activate({ challengeId: challenge.challengeId, secret, natsPublicKey: createNkeyUser().publicKey }, T0 + 2000), { code: 'ENROLL_UNKNOWN_CHALLENGE' }, 'a challenge is good for one attempt');
});

t.test('the EK must chain to a trusted CA or be allow-listed', async (t) => {
  const tpm = new SoftTpm();
  const strict = new Registrar(store, events, { ...OPTS, ekAllowList: [] });
  await t.rejects(strict.enroll(request('r-ek', tpm), T0), { code: 'EK_CERT_UNTRUSTED' }, 'no certificate, not allow-listed');

  // A certificate from the test PKI for another EK (swtpm's), with that PKI trusted.
  const cert = await readFixture('ekcert', 'pki-leaf-direct.der');
  const withCa = new Registrar(store, events, { ...OPTS, ekAllowList: [], ekCaBundle: [await readFixtureText('ekcert', 'pki-root.pem')] });
  await t.rejects(withCa.enroll(request('r-ek', tpm, { ekCertificate: cert }), T0), { code: 'EK_CERT_KEY_MISMATCH' }, 'a trusted certificate for another key');
  const swtpmEk = await readFixture('tpm', 'rsa-ek.tpmt');
  const ok = await withCa.enroll(request('r-ek', tpm, { ekPublic: swtpmEk, ekCertificate: cert }), T0);
  t.equal(ok.challengeId.length > 0, true, 'the certificate of that EK is accepted');
  await t.rejects(strict.enroll(request('r-ek', tpm, { ekPublic: swtpmEk, ekCertificate: cert }), T0), { code: 'EK_CERT_UNTRUSTED' }, 'its CA not trusted');
  // r-good: the node id this (fixture) EK is bound to since the first test.
  t.ok((await new Registrar(store, events, OPTS).enroll(request('r-good', tpm, { ekCertificate: cert }), T0)).challengeId, 'a certificate that fails is overruled by the allow-list');
});

t.test('EK and AK public areas are checked', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const tpm = new SoftTpm();
  await t.rejects(r.enroll(request('r-pub', tpm, { ekType: 'ecc' }), T0), { code: 'TPM_PUBLIC_MALFORMED' }, 'ek_type does not match the EK');
  await t.rejects(r.enroll(request('r-pub', tpm, { akPublic: tpm.akPublic.subarray(0, 10) }), T0), { code: 'TPM_PUBLIC_MALFORMED' }, 'a truncated AK');
  const modulus = decodeTpmtPublic(tpm.akPublic);
  if (modulus.type !== 'rsa') return t.fail('not RSA');
  const notRestricted = writeRsaPublic({
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES & ~TPMA_OBJECT.restricted,
    authPolicy: new Uint8Array(0),
    symmetric: null,
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
    modulus: modulus.modulus,
  });
  await t.rejects(r.enroll(request('r-pub', tpm, { akPublic: notRestricted }), T0), { code: 'AK_ATTRIBUTES_INVALID' }, 'an AK that could sign anything');
});

t.test('activation: the secret must match and the challenge be fresh', async (t) => {
  const r = new Registrar(store, events, { ...OPTS, enrollTtlMs: 10_000 });
  const tpm = new SoftTpm();
  await t.rejects(r.activate({ challengeId: 'no-such-challenge', secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0), { code: 'ENROLL_UNKNOWN_CHALLENGE' });
  await t.rejects(r.activate({ challengeId: '', secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0), { code: 'ENROLL_UNKNOWN_CHALLENGE' });
  const act = newEk();
  const c1 = await r.enroll(request('r-act', tpm, { ekPublic: act.ekPublic }), T0);
  await t.rejects(r.activate({ challengeId: c1.challengeId, secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0 + 1), { code: 'CREDENTIAL_SECRET_MISMATCH' }, 'EK and AK not in one TPM');
  await t.rejects(r.activate({ challengeId: c1.challengeId, secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0 + 2), { code: 'ENROLL_UNKNOWN_CHALLENGE' }, 'a failed attempt uses the challenge up');
  const c2 = await r.enroll(request('r-act', tpm, { ekPublic: act.ekPublic }), T0);
  const secret = softwareActivate(decodeTpmtPublic(act.ekPublic), act.ekPrivate, tpm.akName, c2);
  if (secret === null) return t.fail('no secret');
  await t.rejects(r.activate({ challengeId: c2.challengeId, secret, natsPublicKey: createNkeyUser().publicKey }, T0 + 10_001), { code: 'ENROLL_CHALLENGE_EXPIRED' });
  t.equal(await store.getNode('r-act'), null, 'nothing was enrolled');
});

t.test('re-enrollment: same EK only, and after a sticky finding only when approved', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const first = new SoftTpm();
  const again = newEk();
  await enrollFully(r, 'r-again', first, T0, {}, again);
  const otherEk = await readFixture('tpm', 'rsa-ek.tpmt');
  const otherHash = toHex(createHash('sha256').update(otherEk).digest());
  const lenient = new Registrar(store, events, { ...OPTS, ekAllowList: [ekHash, otherHash] });
  await t.rejects(lenient.enroll(request('r-again', first, { ekPublic: otherEk }), T0), { code: 'NODE_CONFLICT' }, 'another EK under the same node id');

  const stored = await store.getNode('r-again');
  if (stored === null) return t.fail('not enrolled');
  await store.putNode({ ...stored.record, state: 'untrusted', requiresReenrollment: true, reasons: [finding('NODE_REBOOT_UNREPORTED', 'hidden reboot')] }, stored.revision);
  const second = new SoftTpm();
  await t.rejects(r.enroll(request('r-again', second, { ekPublic: again.ekPublic }), T0), { code: 'NODE_REENROLL_NOT_APPROVED' }, 'a sticky finding needs an operator');

  // Approved between the enroll and the activate call: the activation checks again, and the approval admits it.
  const latest = await store.getNode('r-again');
  if (latest === null) return t.fail('gone');
  await store.putNode({ ...latest.record, reenrollApproved: true }, latest.revision);
  resets.length = 0;
  await enrollFully(r, 'r-again', second, T0 + 5000, {}, again);
  const after = (await store.getNode('r-again'))?.record;
  t.equal(after?.state, 'enrolled');
  t.equal(after?.akPublic, second.akPublicHex, 'the new AK replaces the old');
  t.same([after?.requiresReenrollment, after?.reenrollApproved, after?.reasons], [false, false, []], 'a fresh start');
  t.same(after?.attestation, { resetCount: null, restartCount: null, clock: null, bootId: null, bootPcrs: null });
  t.same(resets, ['r-again']);
});

t.test('the activation re-checks what the enroll call saw', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const tpm = new SoftTpm();
  const race = newEk();
  await enrollFully(r, 'r-race', tpm, T0, {}, race);
  const challenge = await r.enroll(request('r-race', tpm, { ekPublic: race.ekPublic }), T0);
  const stored = await store.getNode('r-race');
  if (stored === null) return t.fail('not enrolled');
  await store.putNode({ ...stored.record, requiresReenrollment: true }, stored.revision);
  const secret = softwareActivate(decodeTpmtPublic(race.ekPublic), race.ekPrivate, tpm.akName, challenge);
  if (secret === null) return t.fail('no secret');
  await t.rejects(r.activate({ challengeId: challenge.challengeId, secret, natsPublicKey: createNkeyUser().publicKey }, T0 + 1000), { code: 'NODE_REENROLL_NOT_APPROVED' });
});

t.test('a Nomad client belongs to one node', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const [a, b, c, d] = [newEk(), newEk(), newEk(), newEk()];
  await enrollFully(r, 'r-nomad-a', new SoftTpm(), T0, { nomadNode: 'client-1' }, a);
  t.equal((await store.getNode('r-nomad-a'))?.record.nomadNode, 'client-1');
  await t.rejects(r.enroll(request('r-nomad-b', new SoftTpm(), { nomadNode: 'client-1', ekPublic: b.ekPublic }), T0), { code: 'NOMAD_NODE_MAPPING_CONFLICT' }, 'claimed explicitly by another node');
  await enrollFully(r, 'r-nomad-d', new SoftTpm(), T0, {}, d);
  await t.rejects(r.enroll(request('r-nomad-c', new SoftTpm(), { nomadNode: 'r-nomad-d', ekPublic: c.ekPublic }), T0), { code: 'NOMAD_NODE_MAPPING_CONFLICT' }, "a node without a claim claims its own id");
  t.ok((await r.enroll(request('r-nomad-c', new SoftTpm(), { nomadNode: 'r-nomad-a', ekPublic: c.ekPublic }), T0)).challengeId, 'a node with an explicit claim leaves its id free');
  t.ok((await r.enroll(request('r-nomad-a', new SoftTpm(), { nomadNode: 'client-1', ekPublic: a.ekPublic }), T0)).challengeId, 'a node may keep its own claim');
});

t.test('a corrupt pending enrollment is STORE_CORRUPT', async (t) => {
  const r = new Registrar(store, events, OPTS);
  await store.enroll.put('corrupt-json', new TextEncoder().encode('{"nodeId":'));
  await store.enroll.put('corrupt-shape', new TextEncoder().encode('{"nodeId":"x"}'));
  await t.rejects(r.activate({ challengeId: 'corrupt-shape', secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0), { code: 'STORE_CORRUPT' }, 'fields missing');
  await t.rejects(r.activate({ challengeId: 'corrupt-json', secret: randomBytes(32), natsPublicKey: createNkeyUser().publicKey }, T0), { code: 'STORE_CORRUPT' }, 'not JSON');
});

t.test('the same TPM enrolling again keeps its boot baseline unless an operator approved it', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const tpm = new SoftTpm();
  const keep = newEk();
  await enrollFully(r, 'r-baseline', tpm, T0, {}, keep);
  const stored = await store.getNode('r-baseline');
  if (stored === null) return t.fail('not enrolled');
  const baseline = { resetCount: 3, restartCount: 0, clock: '1000', bootId: 'boot-a', bootPcrs: { '7': 'ab'.repeat(32) } };
  await store.putNode({ ...stored.record, state: 'trusted', attestation: baseline }, stored.revision);
  await enrollFully(r, 'r-baseline', tpm, T0 + 5000, {}, keep);
  t.same((await store.getNode('r-baseline'))?.record.attestation, baseline, 'enrollment state deleted and enrolled again: the baseline stays');
});

t.test('one pending enrollment per EK; enrollment: approve holds an unknown TPM until an admin approves it', async (t) => {
  const r = new Registrar(store, events, OPTS);
  const tpm = new SoftTpm();
  const once = newEk();
  for (let i = 0; i < 5; i++) await r.enroll(request('r-pending', tpm, { ekPublic: once.ekPublic }), T0);
  const pendingFor = async (): Promise<number> => {
    let n = 0;
    // Keys first: a KV call inside the key iteration loses keys.
    const keys: string[] = [];
    for await (const key of await store.enroll.keys()) keys.push(key);
    for (const key of keys) {
      const e = key.startsWith('ek.') || key.startsWith('held.') ? null : await store.enroll.get(key);
      if (e !== null && e.operation === 'PUT' && new TextDecoder().decode(e.value).includes('"nodeId":"r-pending"')) n++;
    }
    return n;
  };
  t.equal(await pendingFor(), 1, 'five Enroll calls leave one pending challenge');

  const strict = new Registrar(store, events, { ...OPTS, enrollment: 'approve' });
  const unknown = newEk();
  await t.rejects(strict.enroll(request('r-held', tpm, { ekPublic: unknown.ekPublic }), T0), { code: 'ENROLLMENT_HELD' });
  t.same((await strict.listHeld()).map((h) => h.nodeId).filter((id) => id === 'r-held'), ['r-held'], 'listed for an admin');
  await strict.approveHeld('r-held', T0);
  t.same((await strict.listHeld()).filter((h) => h.nodeId === 'r-held'), [], 'no longer held');
  await enrollFully(strict, 'r-held', tpm, T0 + 1000, {}, unknown);
  t.equal((await store.getNode('r-held'))?.record.state, 'enrolled', 'the approved TPM enrolls');
  await t.rejects(strict.enroll(request('r-held-2', tpm, { ekPublic: unknown.ekPublic }), T0), { code: 'EK_BOUND_TO_OTHER_NODE' }, 'and only as that node');
});
