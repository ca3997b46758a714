/**
 * Fail-closed defaults against a real fleet (nats-server, gRPC, swtpm hosts): with no
 * measured-boot policy a node is untrusted (POLICY_MISSING); an accept-all policy is an
 * explicit choice, audited when pushed and assigned, and named on every verdict it gives.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NO_BASELINE_NOTE } from '../../controller/appraisers/index.js';
import { DEFAULT_BASELINE } from '../../lib/baseline/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('fail-closed');
const fleet = await TestFleet.create({ root, measuredBootPolicy: 'none' });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

t.test('no measured-boot policy assigned: untrusted with POLICY_MISSING', async (t) => {
  const node = await fleet.addNode('no-policy');
  await node.agent.start();
  const n = await fleet.waitForNode('no-policy', (x) => x.state === 'untrusted');
  t.same(
    n.reasons.map((r) => r.code),
    ['POLICY_MISSING'],
  );
  t.same(n.notes, [NO_BASELINE_NOTE], 'the test fleet does not require a baseline: a note says none is assigned');
  const shown = await fleet.ctl(['node', 'no-policy']);
  t.equal(shown.code, 1, 'bulwarkctl node: not trusted');
  t.match(shown.out, /POLICY_MISSING/);
});

t.test('an explicit accept-all policy: trusted, named on every verdict, its push and assignment audited', async (t) => {
  const doc = join(root, 'lab.json');
  await writeFile(doc, JSON.stringify({ name: 'lab', acceptAll: true }));
  t.equal((await fleet.ctl(['policy', 'push', 'measured-boot', 'lab', doc])).code, 0);
  t.equal((await fleet.ctl(['policy', 'assign', 'measured-boot', 'lab', '--default'])).code, 0);
  const records = await adminAuditRecords(fleet);
  const push = records.find((r) => r.action === 'policy.put' && r.subject === 'measured-boot/lab');
  t.equal(push?.details['acceptAll'], true, 'the push is audited as accept-all');
  const assign = records.find((r) => r.action === 'policy.assign' && r.subject === 'measured-boot/lab');
  t.same(assign?.details, { kind: 'measured-boot', name: 'lab', target: 'default', acceptAll: true }, 'the assignment is audited as accept-all');

  const node = fleet.nodes.get('no-policy');
  await node?.agent.attestNow();
  const n = await fleet.waitForNode('no-policy', (x) => x.state === 'trusted');
  const note = 'accept-all measured-boot policy "lab" in force';
  t.same(n.notes, [note, NO_BASELINE_NOTE]);
  // Every verdict: each further round carries the note.
  for (let i = 0; i < 3; i++) {
    const before = (await fleet.waitForNode('no-policy', () => true)).lastVerdictAt;
    await node?.agent.attestNow();
    const next = await fleet.waitForNode('no-policy', (x) => x.lastVerdictAt !== before);
    t.same(next.notes, [note, NO_BASELINE_NOTE], `round ${i + 1} carries the note`);
  }
  const shown = await fleet.ctl(['node', 'no-policy']);
  t.equal(shown.code, 0);
  t.match(shown.out, /note: +accept-all measured-boot policy "lab" in force/);
  const listed = await fleet.ctl(['nodes']);
  t.match(listed.out, /no-policy +trusted.*accept-all measured-boot policy "lab" in force/);
});

t.test('a baseline pushed and assigned through bulwarkctl applies: a host that reports nothing is untrusted until it is unassigned', async (t) => {
  const doc = join(root, 'baseline.json');
  await writeFile(doc, JSON.stringify({ ...DEFAULT_BASELINE, name: 'web' }));
  t.equal((await fleet.ctl(['policy', 'push', 'baseline', 'web', doc])).code, 0, 'policy push baseline');
  t.equal((await fleet.ctl(['policy', 'assign', 'baseline', 'web', '--node', 'no-policy'])).code, 0, 'policy assign baseline');
  const node = fleet.nodes.get('no-policy');
  await node?.agent.attestNow();
  const n = await fleet.waitForNode('no-policy', (x) => x.state === 'untrusted');
  t.same(
    n.reasons.map((r) => r.code),
    ['BASELINE_REPORT_MISSING'],
  );
  const shown = await fleet.ctl(['baseline', 'show', 'no-policy']);
  t.equal(shown.code, 1, 'baseline show: findings');
  t.match(shown.out, /baseline: +web \(report/);
  t.match(shown.out, /report chain: +0 report/);
  t.match(shown.out, /BASELINE_REPORT_MISSING/);
  const json = await fleet.ctl(['baseline', 'show', 'no-policy', '--json']);
  t.match(json.out, /"baselineName":"web"/);
  const unknown = await fleet.ctl(['baseline', 'show', 'nobody']);
  t.equal(unknown.code, 1, 'an unknown node');
  t.match(unknown.out + unknown.err, /NODE_NOT_FOUND/);

  t.equal((await fleet.ctl(['policy', 'assign', 'baseline', 'none', '--node', 'no-policy'])).code, 0);
  await node?.agent.attestNow();
  await fleet.waitForNode('no-policy', (x) => x.state === 'trusted');
});
