/**
 * Floods against a real fleet (nats-server, gRPC, swtpm hosts) are bounded: 5,000 nonce
 * requests, 300 Enroll calls made of a host's public EK certificate and AK (no TPM behind
 * them), 100 fake challenges to an agent. State and queues stay under their limits, and
 * the honest nodes stay trusted.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { MAX_QUEUED_CHALLENGES } from '../../agent/agent.js';
import { BUCKETS } from '../../controller/state/index.js';
import { isBulwarkError, toHex } from '../../lib/index.js';
import { parseNatsNodeId, NODE_SUBJECTS } from '../../lib/nats-auth/index.js';
import { SUBJECTS, wire } from '../../proto/wire.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const MAX_OUTSTANDING = 4;
const ENROLL_BURST = 20;
const root = await makeTempDir('floods');
const fleet = await TestFleet.create({
  root,
  controller: { maxOutstandingNonces: MAX_OUTSTANDING, nonceRequestRate: 5, nonceRequestBurst: 20, enrollRate: 0.5, enrollBurst: ENROLL_BURST },
});
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

for (const id of ['honest-1', 'honest-2', 'mallory']) {
  const n = await fleet.addNode(id);
  await n.agent.start();
  await fleet.waitForNode(id, (x) => x.state === 'trusted');
}
// Mallory's agent stops: from here on its node id is the attacker's (its own NATS identity, later).
await fleet.nodes.get('mallory')?.agent.stop();

// The flooding requests and the fake challenges are published with the fleet's NATS
// connection (the controller's identity): what a node may not publish at all is shown by the
// NATS permission tests; here the limits behind the subjects are what is tested.
const nc = await fleet.natsConnection();
t.teardown(() => nc.close());
const kv = async (bucket: string) => nc.jetstream().views.kv(bucket);
const dec = new TextDecoder();

/** Live (not deleted or purged) entries of a bucket whose value contains `needle`, and whose key passes `keep`. */
async function countEntries(bucket: string, needle: string | readonly string[], keep: (key: string) => boolean = () => true): Promise<number> {
  const needles = typeof needle === 'string' ? [needle] : needle;
  const b = await kv(bucket);
  const keys: string[] = [];
  for await (const k of await b.keys()) keys.push(k);
  let count = 0;
  for (const k of keys) {
    if (!keep(k)) continue;
    const e = await b.get(k);
    if (e === null || e.operation !== 'PUT') continue;
    const text = dec.decode(e.value);
    if (needles.every((n) => text.includes(n))) count++;
  }
  return count;
}

/** The honest nodes never left trusted since they first were (their audit history). */
async function honestStayedTrusted(): Promise<string[]> {
  const client = fleet.client();
  try {
    const out: string[] = [];
    for (const id of ['honest-1', 'honest-2']) {
      const events = await client.history(id, 100);
      for (const e of events) if (e.previous === 'trusted') out.push(`${id}: ${e.previous} -> ${e.state} ${e.reasons.map((r) => r.code).join(',')}`);
    }
    return out;
  } finally {
    client.close();
  }
}

t.test('5,000 nonce requests: refused past the rate (RATE_LIMITED), at most the cap of nonces kept', async (t) => {
  const replies = await Promise.all(
    Array.from({ length: 5000 }, (_, i) =>
      ((nodeId: string) => nc.request(NODE_SUBJECTS.nonce(parseNatsNodeId(nodeId)), wire.nonceRequest.encode({ nodeId }), { timeout: 30_000 }))(i % 10 === 0 ? `ghost-${i}` : 'mallory').then(
        (m) => m.headers?.get('Bulwark-Error') ?? 'issued',
        (err: unknown) => `failed: ${String(err)}`,
      ),
    ),
  );
  const counts = new Map<string, number>();
  for (const r of replies) counts.set(r, (counts.get(r) ?? 0) + 1);
  t.ok((counts.get('RATE_LIMITED') ?? 0) >= 4000, `most refused: ${JSON.stringify([...counts])}`);
  t.ok((counts.get('issued') ?? 0) <= 100, 'few issued');
  t.equal(counts.get('NODE_NOT_ENROLLED'), 500, 'unknown node ids get nothing');
  // Outstanding means unused: the nonces mallory used while its agent still ran stay (used) for replay checks.
  const kept = await countEntries(BUCKETS.nonces, ['"nodeId":"mallory"', '"usedAt":null'], () => true);
  const unused = await countEntries(BUCKETS.nonces, '"usedAt":null', () => true);
  t.ok(kept <= MAX_OUTSTANDING, `mallory's unused nonces in KV: ${kept} <= ${MAX_OUTSTANDING}`);
  t.ok(unused <= MAX_OUTSTANDING + 4, `unused nonces in KV: ${unused}`);
  for (const id of ['honest-1', 'honest-2']) {
    const before = (await fleet.waitForNode(id, () => true)).lastVerdictAt;
    await fleet.nodes.get(id)?.agent.attestNow();
    const n = await fleet.waitForNode(id, (x) => x.lastVerdictAt !== before);
    t.equal(n.state, 'trusted', `${id} trusted after the flood`);
  }
  t.same(await honestStayedTrusted(), [], 'no honest node left trusted');
});

t.test('300 Enroll calls with a public EK certificate and AK: rate-limited, one pending enrollment, few audit records', async (t) => {
  const host = fleet.nodes.get('honest-1');
  if (host === undefined) return t.fail('no host');
  const keys = await host.tpm.ensureKeys({ ekType: host.config.ekType, akHandle: host.config.akHandle });
  const auditBefore = (await adminAuditRecords(fleet)).length;
  const client = fleet.client();
  t.teardown(() => client.close());
  const codes = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    // The first calls claim the host's own id (no TPM answers them); the rest other ids.
    const nodeId = i < 15 ? 'honest-1' : `copy-${i}`;
    const code = await client
      .enroll({ nodeId, ekType: keys.ekType, ekPublic: keys.ekPublic, ekCertificate: keys.ekCertificate ?? new Uint8Array(0), akPublic: keys.akPublic, facts: null, nomadNode: '' })
      .then(
        () => 'challenge',
        (err: unknown) => (isBulwarkError(err) ? err.code : String(err)),
      );
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  t.ok((codes.get('RATE_LIMITED') ?? 0) >= 300 - ENROLL_BURST - 5, `refused past the burst: ${JSON.stringify([...codes])}`);
  t.ok((codes.get('challenge') ?? 0) <= 15, 'challenges only for the id the EK is bound to');
  t.ok((codes.get('challenge') ?? 0) >= 1, 'the first calls got a challenge');
  const pending = await countEntries(BUCKETS.enroll, '"nodeId"', (k) => !k.startsWith('ek.') && !k.startsWith('held.'));
  t.ok(pending <= 1, `pending enrollments: ${pending} (one per EK)`);
  const audit = (await adminAuditRecords(fleet)).length - auditBefore;
  t.ok(audit <= ENROLL_BURST, `audit records written: ${audit}`);
  t.equal((await fleet.waitForNode('honest-1', () => true)).state, 'trusted');
  t.same(await honestStayedTrusted(), [], 'no honest node left trusted');
});

t.test('100 fake challenges to an agent: it quotes for at most the queue bound and drops the rest', async (t) => {
  const victim = fleet.nodes.get('honest-2');
  if (victim === undefined) return t.fail('no host');
  const fake = new Set<string>();
  let answered = 0;
  const sub = nc.subscribe(NODE_SUBJECTS.evidence(parseNatsNodeId('honest-2')), {
    callback: (err, msg) => {
      if (err !== null) return;
      const ev = wire.evidence.decode(msg.data);
      if (fake.has(toHex(ev.nonce))) answered++;
    },
  });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  const droppedBefore = victim.agent.droppedChallenges;
  for (let i = 0; i < 100; i++) {
    const nonce = randomBytes(32);
    fake.add(toHex(nonce));
    nc.publish(SUBJECTS.challenge('honest-2'), wire.challenge.encode({ nodeId: 'honest-2', nonce, pcrSelection: fleet.controllerConfig.pcrSelection }));
  }
  for (let i = 0; i < 10; i++) nc.publish(SUBJECTS.challenge('honest-2'), wire.challenge.encode({ nodeId: 'honest-1', nonce: randomBytes(32), pcrSelection: fleet.controllerConfig.pcrSelection }));
  await nc.flush();
  // Rounds run in order: this one ends after every queued challenge was answered or dropped.
  await victim.agent.attestNow();
  await nc.flush();
  const dropped = victim.agent.droppedChallenges - droppedBefore;
  t.ok(answered <= MAX_QUEUED_CHALLENGES + 1, `quotes over fake nonces: ${answered} <= ${MAX_QUEUED_CHALLENGES + 1}`);
  // The ones not dropped were handled as rounds (a challenge that waited in the queue is
  // answered with a fresh nonce, so it need not show among the fake nonces above).
  t.ok(dropped >= 110 - (MAX_QUEUED_CHALLENGES + 1), `all but the queue bound dropped: ${dropped} of 110`);
  const n = await fleet.waitForNode('honest-2', (x) => x.state === 'trusted');
  t.equal(n.state, 'trusted', 'the victim is trusted on its next own round');
  t.equal((await fleet.waitForNode('honest-1', () => true)).state, 'trusted', 'the other honest node was never touched');
});
