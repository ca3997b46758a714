/**
 * The verifier against a real JetStream store, one round at a time: nonces, judging, the
 * appraisers, and how a round changes the stored node (sticky reasons, state timestamps,
 * facts), plus the stale sweep. Quotes come from a software TPM (test/helpers/soft-tpm.ts).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { NodeRecord } from '../../lib/attestation/node-record.js';
import { factsDigest } from '../../lib/facts/facts.js';
import { finding } from '../../lib/verdict.js';
import { Verifier } from '../../controller/verifier/verifier.js';
import type { AppraisalContext, AppraisalResult, Appraiser } from '../../controller/appraisers/appraiser.js';
import type { EvidenceMsg, EvidenceReplyMsg } from '../../proto/wire.js';
import { QUOTED_SPEC, SoftTpm } from '../helpers/soft-tpm.js';
import { enrolledRecord, evidenceFrom, openStateBed } from './state-bed.js';

const bed = await openStateBed('verifier');
t.teardown(() => bed.close());
const { store, events } = bed;

const OPTS = { pcrSelection: QUOTED_SPEC, nonceTtlMs: 60_000, staleAfterMs: 300_000 } as const;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');

let nodeCount = 0;

/** A freshly enrolled node with its software TPM. */
async function enrolled(tpm = new SoftTpm()): Promise<{ nodeId: string; tpm: SoftTpm }> {
  const nodeId = `node-${++nodeCount}`;
  await store.putNode(enrolledRecord(nodeId, tpm, new Date(T0).toISOString()), 0);
  return { nodeId, tpm };
}

/** One full round: a challenge, the quote answering it, the verdict. */
async function round(v: Verifier, nodeId: string, tpm: SoftTpm, now: number, over: Partial<EvidenceMsg> = {}): Promise<EvidenceReplyMsg> {
  const ch = await v.issueChallenge(nodeId, now);
  return v.handleEvidence(evidenceFrom(nodeId, tpm, ch.nonce, over), now);
}

function codes(reply: EvidenceReplyMsg): string[] {
  return reply.findings.map((f) => f.code);
}

async function record(nodeId: string): Promise<NodeRecord> {
  const n = await store.getNode(nodeId);
  if (n === null) throw new Error(`${nodeId} is not stored`);
  return n.record;
}

t.test('a node that is not enrolled gets no nonce and its evidence is refused', async (t) => {
  const v = new Verifier(store, events, OPTS);
  await t.rejects(v.issueChallenge('nobody', T0), { code: 'NODE_NOT_ENROLLED' });
  const reply = await v.handleEvidence(evidenceFrom('nobody', new SoftTpm(), randomBytes(32)), T0);
  t.equal(reply.verdict, 'refused');
  t.same(codes(reply), ['NODE_NOT_ENROLLED']);
  t.equal(await store.getNode('nobody'), null, 'nothing is stored for it');
});

t.test('a good round makes an enrolled node trusted; the next keeps stateSince and moves lastEvidenceAt', async (t) => {
  const v = new Verifier(store, events, OPTS);
  const { nodeId, tpm } = await enrolled();
  const ch = await v.issueChallenge(nodeId, T0);
  t.equal(ch.nonce.length, 32);
  t.equal(ch.pcrSelection, QUOTED_SPEC);
  const first = await v.handleEvidence(evidenceFrom(nodeId, tpm, ch.nonce), T0 + 1000);
  t.equal(first.verdict, 'trusted');
  t.same(codes(first), []);
  const r1 = await record(nodeId);
  t.equal(r1.state, 'trusted');
  t.equal(r1.stateSince, new Date(T0 + 1000).toISOString());
  t.equal(r1.lastEvidenceAt, new Date(T0 + 1000).toISOString());
  t.equal(r1.attestation.resetCount, tpm.resetCount, 'the TPM counters are kept for the next round');
  t.equal(r1.attestation.bootId, 'boot-1');

  await round(v, nodeId, tpm, T0 + 5000);
  const r2 = await record(nodeId);
  t.equal(r2.state, 'trusted');
  t.equal(r2.stateSince, r1.stateSince, 'no state change, no new stateSince');
  t.equal(r2.lastEvidenceAt, new Date(T0 + 5000).toISOString());
  const history = await store.history(nodeId, 10);
  t.same(
    history.map((e) => [e.previous, e.state]),
    [['enrolled', 'trusted']],
    'one trust event for the one transition',
  );
});

t.test('nonces are single use, fresh and bound to their node; a bad nonce is not sticky', async (t) => {
  const v = new Verifier(store, events, { ...OPTS, nonceTtlMs: 10_000 });
  const { nodeId, tpm } = await enrolled();
  const other = await enrolled();

  const unknown = await v.handleEvidence(evidenceFrom(nodeId, tpm, randomBytes(32)), T0);
  t.same(codes(unknown), ['NONCE_UNKNOWN'], 'a nonce no controller issued');
  t.equal(unknown.verdict, 'untrusted');

  const theirs = await v.issueChallenge(other.nodeId, T0);
  t.same(codes(await v.handleEvidence(evidenceFrom(nodeId, tpm, theirs.nonce), T0)), ['NONCE_UNKNOWN'], "another node's nonce");

  const ch = await v.issueChallenge(nodeId, T0);
  t.same(codes(await v.handleEvidence(evidenceFrom(nodeId, tpm, ch.nonce), T0 + 100)), [], 'used once: fine');
  t.same(codes(await v.handleEvidence(evidenceFrom(nodeId, tpm, ch.nonce), T0 + 200)), ['NONCE_REPLAYED'], 'used twice: replayed');

  const old = await v.issueChallenge(nodeId, T0);
  t.same(codes(await v.handleEvidence(evidenceFrom(nodeId, tpm, old.nonce), T0 + 10_001)), ['NONCE_EXPIRED'], 'older than the TTL');
  t.equal((await record(nodeId)).requiresReenrollment, false, 'nonce problems are not sticky');

  t.equal((await round(v, nodeId, tpm, T0 + 20_000)).verdict, 'trusted', 'the next good round is trusted again');
});

t.test('a sticky finding stays through later good rounds until re-enrollment', async (t) => {
  const v = new Verifier(store, events, OPTS);
  const { nodeId, tpm } = await enrolled();
  t.equal((await round(v, nodeId, tpm, T0 + 1000)).verdict, 'trusted');
  tpm.reboot();
  const hidden = await round(v, nodeId, tpm, T0 + 2000, { bootId: 'boot-1' });
  t.same(codes(hidden), ['NODE_REBOOT_UNREPORTED']);
  const r = await record(nodeId);
  t.equal(r.state, 'untrusted');
  t.equal(r.requiresReenrollment, true);
  t.equal(r.stateSince, new Date(T0 + 2000).toISOString());

  // The counters of the reset are now stored, so this round alone would be clean.
  const later = await round(v, nodeId, tpm, T0 + 3000, { bootId: 'boot-1' });
  t.equal(later.verdict, 'untrusted');
  t.same(codes(later), ['NODE_REBOOT_UNREPORTED'], 'the stored reason is kept');
  t.equal((await record(nodeId)).stateSince, new Date(T0 + 2000).toISOString(), 'still untrusted since the finding');

  tpm.measure(4, 'another boot loader');
  t.same(codes(await round(v, nodeId, tpm, T0 + 4000, { bootId: 'boot-1' })), ['PCR_CHANGED_WITHIN_BOOT', 'NODE_REBOOT_UNREPORTED'], 'new findings come first, kept ones after, once each');
});

t.test('a non-sticky finding clears with the next good round', async (t) => {
  const v = new Verifier(store, events, OPTS);
  const { nodeId, tpm } = await enrolled();
  const other = new SoftTpm();
  const ch = await v.issueChallenge(nodeId, T0);
  const forged = await v.handleEvidence(evidenceFrom(nodeId, other, ch.nonce), T0 + 1000);
  t.same(codes(forged), ['QUOTE_SIGNATURE_INVALID'], 'a quote by an AK the node did not enroll');
  t.equal((await record(nodeId)).attestation.resetCount, null, 'an unverified quote stores no counters');
  const good = await round(v, nodeId, tpm, T0 + 2000);
  t.equal(good.verdict, 'trusted');
  const r = await record(nodeId);
  t.equal(r.stateSince, new Date(T0 + 2000).toISOString());
  t.same(
    (await store.history(nodeId, 10)).map((e) => [e.previous, e.state, e.reasons.map((x) => x.code).join(',')]),
    [
      ['enrolled', 'untrusted', 'QUOTE_SIGNATURE_INVALID'],
      ['untrusted', 'trusted', ''],
    ],
  );
});

t.test('host facts are taken only with a verified quote', async (t) => {
  const v = new Verifier(store, events, OPTS);
  const { nodeId, tpm } = await enrolled();
  const facts = {
    hostname: 'h1',
    osDistro: 'Debian GNU/Linux',
    osRelease: '12',
    kernel: '6.1.0',
    arch: 'x64',
    cpu: 'cpu',
    cpuCores: 4,
    memoryBytes: 1024,
    disks: [],
    interfaces: [],
    machineId: '',
    systemManufacturer: '',
    systemModel: '',
    systemSerial: '',
    systemUuid: '',
    boardManufacturer: '',
    boardModel: '',
    boardSerial: '',
  };
  const ch = await v.issueChallenge(nodeId, T0);
  await v.handleEvidence(evidenceFrom(nodeId, new SoftTpm(), ch.nonce, { facts }), T0 + 1000);
  t.equal((await record(nodeId)).facts, null, 'not from a quote that did not verify');
  await round(v, nodeId, tpm, T0 + 2000, { facts });
  const r = await record(nodeId);
  t.same(r.facts, facts);
  t.equal(r.factsDigest, factsDigest(facts));
});

t.test('an enrolled AK that cannot be used is a finding, not a crash', async (t) => {
  const v = new Verifier(store, events, OPTS);
  const tpm = new SoftTpm();
  const nodeId = 'node-bad-ak';
  await store.putNode({ ...enrolledRecord(nodeId, tpm), akPublic: '0001' }, 0);
  const reply = await round(v, nodeId, tpm, T0);
  t.equal(reply.verdict, 'untrusted');
  t.equal(reply.findings.length, 1);
  t.match(reply.findings[0], { code: /^(TPM_PUBLIC_MALFORMED|BYTES_TRUNCATED)$/, message: /enrolled AK cannot be used/ });
});

/** An appraiser with a fixed answer that records what it was handed. */
class FixedAppraiser implements Appraiser {
  readonly name = 'fixed';
  readonly seen: AppraisalContext[] = [];
  committed = 0;
  constructor(private readonly result: AppraisalResult) {}
  async appraise(ctx: AppraisalContext): Promise<AppraisalResult> {
    this.seen.push(ctx);
    return { ...this.result, commit: async () => void this.committed++ };
  }
}

t.test('appraisers run only after a verified quote; their findings, stickiness and reply are applied', async (t) => {
  const clean = new FixedAppraiser({ findings: [], reply: { imaEntry: 7, imaOffset: 700 } });
  const bad = new FixedAppraiser({ findings: [finding('IMA_DIGEST_NOT_ALLOWED', 'an unknown binary ran')], sticky: true, reply: { eventLogSha256: 'ab' } });
  const v = new Verifier(store, events, OPTS, [clean, bad]);
  const { nodeId, tpm } = await enrolled();

  const ch = await v.issueChallenge(nodeId, T0);
  await v.handleEvidence(evidenceFrom(nodeId, new SoftTpm(), ch.nonce), T0);
  t.equal(clean.seen.length + bad.seen.length, 0, 'an unverified quote reaches no appraiser');

  const reply = await round(v, nodeId, tpm, T0 + 1000);
  t.same(codes(reply), ['IMA_DIGEST_NOT_ALLOWED']);
  t.same([reply.imaEntry, reply.imaOffset, reply.eventLogSha256], [7, 700, 'ab'], 'the reply patches of every appraiser');
  t.equal(clean.committed + bad.committed, 2, 'both committed their state');
  const ctx = clean.seen[0];
  t.equal(ctx?.newBoot, true, 'the first verified round is a new boot');
  t.equal(ctx?.clockInfo.resetCount, tpm.resetCount);
  t.equal(ctx?.record.nodeId, nodeId);
  t.equal((await record(nodeId)).requiresReenrollment, true, "an appraiser's sticky finding is sticky");
});

t.test('a node re-enrolled while its round was judged: the round is refused, the new enrollment kept', async (t) => {
  const tpm = new SoftTpm();
  const nodeId = 'node-reenrolled';
  const fresh = new SoftTpm();
  const reenroll: Appraiser = {
    name: 're-enroll',
    async appraise(ctx) {
      await store.putNode({ ...enrolledRecord(nodeId, fresh), enrolledAt: '2026-03-02T00:00:00.000Z' }, (await store.getNode(ctx.record.nodeId))?.revision ?? 0);
      return { findings: [] };
    },
  };
  const v = new Verifier(store, events, OPTS, [reenroll]);
  await store.putNode(enrolledRecord(nodeId, tpm), 0);
  const reply = await round(v, nodeId, tpm, T0);
  t.equal(reply.verdict, 'refused');
  t.same(codes(reply), ['NODE_NOT_ENROLLED']);
  const r = await record(nodeId);
  t.equal(r.akPublic, fresh.akPublicHex, 'the new AK stays');
  t.equal(r.state, 'enrolled');
});

t.test('the sweep marks silent trusted and enrolled nodes stale with NODE_STALE, and only those', async (t) => {
  const v = new Verifier(store, events, { ...OPTS, staleAfterMs: 60_000 });
  const base = Date.parse('2026-06-01T00:00:00.000Z');
  for (const id of await store.listNodes()) await store.deleteNode(id.nodeId);
  const tpm = new SoftTpm();
  const at = (ms: number): string => new Date(base + ms).toISOString();
  await store.putNode({ ...enrolledRecord('s-trusted-old', tpm), state: 'trusted', lastEvidenceAt: at(0) }, 0);
  await store.putNode({ ...enrolledRecord('s-trusted-recent', tpm), state: 'trusted', lastEvidenceAt: at(50_000) }, 0);
  await store.putNode({ ...enrolledRecord('s-enrolled-never', tpm, at(0)) }, 0);
  await store.putNode({ ...enrolledRecord('s-untrusted-old', tpm), state: 'untrusted', lastEvidenceAt: at(0), reasons: [finding('NODE_REBOOT_UNREPORTED', 'x')] }, 0);

  const changed = await v.sweepStale(base + 70_000);
  t.same(changed.sort(), ['s-enrolled-never', 's-trusted-old']);
  const stale = await record('s-trusted-old');
  t.equal(stale.state, 'stale');
  t.same(
    stale.reasons.map((r) => r.code),
    ['NODE_STALE'],
  );
  t.equal(stale.reasons[0]?.details?.['lastEvidenceAt'], at(0));
  t.equal(stale.stateSince, at(70_000));
  t.equal((await record('s-enrolled-never')).reasons[0]?.details?.['lastEvidenceAt'], '', 'never any evidence: measured from enrollment');
  t.equal((await record('s-trusted-recent')).state, 'trusted', 'within the interval');
  t.same(
    (await record('s-untrusted-old')).reasons.map((r) => r.code),
    ['NODE_REBOOT_UNREPORTED'],
    'an untrusted node keeps its reasons',
  );
  t.same(await v.sweepStale(base + 71_000), [], 'a stale node is not swept again');
  t.same(
    (await store.history('s-trusted-old', 10)).map((e) => [e.previous, e.state]),
    [['trusted', 'stale']],
  );
});
