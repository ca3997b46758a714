/**
 * The placement gate's decision, pure: which records make a node eligible (only trusted with a
 * fresh verdict), and which calls bring a Nomad node to the desired state, in which order.
 */
import t from 'tap';
import { desiredNodeState, judgePlacement, needsAllocationCount, planNodeActions, type DecideOptions, type GateNodeView } from '../../../lib/nomad/decide.js';
import { EMPTY_ATTESTATION, type NodeRecord } from '../../../lib/attestation/node-record.js';
import type { TrustState } from '../../../lib/verdict.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const OPTS: DecideOptions = { now: NOW, freshnessMs: 30_000, drainUntrusted: true, drainDeadlineMs: 60_000 };

function record(state: TrustState, verdictAgoMs: number | null, extra: Partial<NodeRecord> = {}): NodeRecord {
  const at = verdictAgoMs === null ? null : new Date(NOW - verdictAgoMs).toISOString();
  return {
    version: 1,
    nodeId: 'node-a',
    state,
    reasons: [],
    stateSince: '2026-03-01T11:00:00.000Z',
    enrolledAt: '2026-03-01T10:00:00.000Z',
    ekType: 'rsa',
    ekPublic: '00',
    ekCertificateSubject: 'CN=ek',
    akPublic: '00',
    akName: '000b',
    facts: null,
    factsDigest: '',
    lastEvidenceAt: at,
    lastVerdictAt: at,
    attestation: EMPTY_ATTESTATION,
    requiresReenrollment: false,
    reenrollApproved: false,
    nomadNode: null,
    ...extra,
  };
}

function node(over: Partial<GateNodeView> = {}): GateNodeView {
  return { id: 'n-1', name: 'node-a', status: 'ready', eligibility: 'eligible', drain: false, meta: {}, ...over };
}

t.test('judging: only a trusted record with a fresh verdict is trusted', async (tt) => {
  const trusted = judgePlacement(record('trusted', 1000), OPTS);
  tt.same(trusted, { trusted: true, verdictAt: new Date(NOW - 1000).toISOString() });
  const cases: [string, NodeRecord | null, string][] = [
    ['no record', null, 'unknown-node'],
    ['enrolled', record('enrolled', null), 'not-trusted'],
    ['unknown', record('unknown', null), 'not-trusted'],
    ['untrusted', record('untrusted', 1000), 'not-trusted'],
    ['stale', record('stale', 1000), 'not-trusted'],
    ['trusted without a verdict time', record('trusted', null), 'no-verdict'],
    ['trusted with an unreadable verdict time', { ...record('trusted', 0), lastVerdictAt: 'yesterday' }, 'no-verdict'],
    ['trusted, verdict older than the window', record('trusted', 30_001), 'verdict-stale'],
    ['trusted, verdict from the future', record('trusted', -60_000), 'verdict-in-future'],
    ['trusted but requires re-enrollment', record('trusted', 1000, { requiresReenrollment: true }), 'requires-reenrollment'],
  ];
  for (const [what, r, reason] of cases) {
    const j = judgePlacement(r, OPTS);
    tt.equal(j.trusted ? 'trusted' : j.reason, reason, what);
  }
  tt.equal(judgePlacement(record('trusted', 30_000), OPTS).trusted, true, 'exactly at the window edge is still fresh');
  tt.equal(judgePlacement(record('trusted', -4000), OPTS).trusted, true, 'a verdict a little ahead (clock skew) is accepted');
  const conflict = judgePlacement(record('trusted', 1000), OPTS, 'claimed twice');
  tt.same(conflict, { trusted: false, reason: 'mapping-conflict', detail: 'claimed twice' }, 'a mapping conflict wins over a trusted record');
});

t.test('desired state', async (tt) => {
  const good = desiredNodeState(judgePlacement(record('trusted', 0), OPTS), OPTS);
  tt.match(good, { eligible: true, drain: false, meta: { bulwark_trusted: 'true', bulwark_verdict_at: new Date(NOW).toISOString() } });
  const bad = desiredNodeState(judgePlacement(null, OPTS), OPTS);
  tt.match(bad, { eligible: false, drain: true, meta: { bulwark_trusted: 'false', bulwark_verdict_at: null } });
  const noDrain = desiredNodeState(judgePlacement(null, OPTS), { ...OPTS, drainUntrusted: false });
  tt.equal(noDrain.drain, false, 'drain follows the policy');
});

t.test('plans for an untrusted node: ineligible first, then drain, then the label', async (tt) => {
  const desired = desiredNodeState(judgePlacement(record('untrusted', 0), OPTS), OPTS);
  tt.same(planNodeActions(desired, node({ meta: { bulwark_trusted: 'true', bulwark_verdict_at: 'x' } }), OPTS), [
    { kind: 'set-ineligible' },
    { kind: 'drain', deadlineMs: 60_000 },
    { kind: 'set-meta', meta: { bulwark_trusted: 'false', bulwark_verdict_at: null } },
  ]);
  tt.same(planNodeActions(desired, node({ eligibility: 'ineligible', meta: { bulwark_trusted: 'false' } }), OPTS), [], 'already gated, nothing running: nothing to do');
  tt.same(planNodeActions(desired, node({ eligibility: 'ineligible', meta: { bulwark_trusted: 'false' } }), OPTS, 2), [{ kind: 'drain', deadlineMs: 60_000 }], 'ineligible but still running allocations: drain');
  tt.same(planNodeActions(desired, node({ eligibility: 'ineligible', drain: true, meta: { bulwark_trusted: 'false' } }), OPTS, 2), [], 'already draining');
  tt.ok(needsAllocationCount(desired, node({ eligibility: 'ineligible' })), 'an ineligible undrained node needs its allocation count');
  tt.notOk(needsAllocationCount(desired, node()), 'an eligible one is drained anyway');
  tt.same(planNodeActions(desired, node({ status: 'down', meta: {} }), OPTS), [{ kind: 'set-ineligible' }, { kind: 'drain', deadlineMs: 60_000 }], 'a down client gets no label (its client cannot take it)');
  tt.same(planNodeActions(desired, node({ status: 'initializing', meta: {} }), OPTS), [
    { kind: 'set-ineligible' },
    { kind: 'drain', deadlineMs: 60_000 },
    { kind: 'set-meta', meta: { bulwark_trusted: 'false', bulwark_verdict_at: null } },
  ], 'a node still initializing is gated at once');
  const noDrain = { ...OPTS, drainUntrusted: false };
  tt.same(planNodeActions(desiredNodeState(judgePlacement(null, noDrain), noDrain), node({ meta: { bulwark_trusted: 'false' } }), noDrain), [{ kind: 'set-ineligible' }], 'policy without drain');
  tt.same(planNodeActions(desired, node({ meta: { bulwark_trusted: 'false', bulwark_verdict_at: 'old' }, eligibility: 'ineligible' }), OPTS), [{ kind: 'set-meta', meta: { bulwark_trusted: 'false', bulwark_verdict_at: null } }], 'a stale verdict label is removed');
});

t.test('plans for a trusted node: the label, then eligibility', async (tt) => {
  const desired = desiredNodeState(judgePlacement(record('trusted', 0), OPTS), OPTS);
  const label = { bulwark_trusted: 'true', bulwark_verdict_at: new Date(NOW).toISOString() };
  tt.same(planNodeActions(desired, node({ eligibility: 'ineligible', meta: {} }), OPTS), [{ kind: 'set-meta', meta: label }, { kind: 'set-eligible' }]);
  tt.same(planNodeActions(desired, node({ eligibility: 'ineligible', drain: true, meta: label }), OPTS), [{ kind: 'cancel-drain', markEligible: true }], 'draining: cancel with markEligible (eligibility cannot be set while draining)');
  tt.same(planNodeActions(desired, node({ meta: label }), OPTS), [], 'in place: nothing');
  const older = { bulwark_trusted: 'true', bulwark_verdict_at: new Date(NOW - 60_000).toISOString() };
  tt.same(planNodeActions(desired, node({ meta: older }), OPTS), [], 'a label younger than the refresh interval is left alone');
  const ancient = { bulwark_trusted: 'true', bulwark_verdict_at: new Date(NOW - 600_000).toISOString() };
  tt.same(planNodeActions(desired, node({ meta: ancient }), OPTS), [{ kind: 'set-meta', meta: label }], 'an old label is refreshed');
  tt.same(planNodeActions(desired, node({ meta: null }), OPTS), [{ kind: 'set-meta', meta: label }], 'unknown meta is written');
  tt.same(planNodeActions(desired, node({ meta: { bulwark_trusted: 'true', bulwark_verdict_at: 'garbage' } }), OPTS), [{ kind: 'set-meta', meta: label }], 'an unreadable label is rewritten');
});

t.test('never eligible without a fresh trusted verdict, whatever Nomad shows', async (tt) => {
  const states: TrustState[] = ['unknown', 'enrolled', 'trusted', 'untrusted', 'stale'];
  const ages = [null, 0, 29_999, 30_001, 3_600_000, -10_000];
  const views: GateNodeView[] = [];
  for (const eligibility of ['eligible', 'ineligible'] as const) {
    for (const drain of [false, true]) {
      for (const status of ['ready', 'initializing', 'down', 'disconnected']) {
        const metas: (Record<string, string> | null)[] = [null, {}, { bulwark_trusted: 'true' }, { bulwark_trusted: 'false' }];
        for (const meta of metas) views.push(node({ eligibility, drain, status, meta }));
      }
    }
  }
  let checked = 0;
  for (const state of states) {
    for (const age of ages) {
      for (const reenroll of [false, true]) {
        const r = record(state, age, { requiresReenrollment: reenroll });
        const fresh = state === 'trusted' && age !== null && age <= 30_000 && age >= -5000 && !reenroll;
        const desired = desiredNodeState(judgePlacement(r, OPTS), OPTS);
        for (const v of views) {
          for (const live of [0, 1]) {
            const actions = planNodeActions(desired, v, OPTS, live);
            const makesEligible = actions.some((a) => a.kind === 'set-eligible' || (a.kind === 'cancel-drain' && a.markEligible));
            if (makesEligible && !fresh) tt.fail(`${state}/${String(age)}/${String(reenroll)} made ${JSON.stringify(v)} eligible`);
            if (!fresh && v.eligibility === 'eligible' && actions[0]?.kind !== 'set-ineligible') tt.fail('an eligible untrusted node is not gated first');
            checked++;
          }
        }
      }
    }
  }
  tt.ok(checked > 1000, `${checked} combinations checked`);
});
