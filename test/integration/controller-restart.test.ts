/**
 * The controller is SIGKILLed and restarted as a real process: every node keeps its
 * state (JetStream KV), a node that was untrusted is not re-trusted on its own, a node
 * that fell silent meanwhile goes stale, and the others are trusted again only on fresh
 * evidence.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('restart');
const fleet = await TestFleet.create({ root });
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

t.test('state survives SIGKILL and nothing is trusted without fresh evidence', async (t) => {
  const first = await fleet.startControllerProcess();
  const ids = ['keep-1', 'keep-2', 'silent', 'tampered'];
  for (const id of ids) await fleet.addNode(id);
  await Promise.all(ids.map((id) => fleet.nodes.get(id)?.agent.start()));
  for (const id of ids) await fleet.waitForNode(id, (n) => n.state === 'trusted');

  const tampered = fleet.nodes.get('tampered');
  if (tampered === undefined) throw new Error('missing node');
  await tampered.swtpm.extendPcr(0, randomBytes(32).toString('hex'));
  await fleet.waitForNode('tampered', (n) => n.state === 'untrusted');

  const before = new Map<string, string>();
  for (const id of ids) before.set(id, (await fleet.waitForNode(id, () => true)).enrolledAt);

  await first.kill('SIGKILL');
  t.equal(first.child.exitCode ?? first.child.signalCode, 'SIGKILL', 'the controller died by SIGKILL');
  const killedAt = Date.now();
  await fleet.nodes.get('silent')?.agent.stop();

  await fleet.startControllerProcess();
  const client = fleet.client();
  t.teardown(() => client.close());
  const nodes = await client.listNodes();
  t.same(
    nodes.map((n) => n.nodeId).sort(),
    [...ids].sort(),
    'every node is still known after the restart',
  );
  for (const n of nodes) t.equal(n.enrolledAt, before.get(n.nodeId), `${n.nodeId} keeps its enrollment`);
  const tamperedNow = nodes.find((n) => n.nodeId === 'tampered');
  t.equal(tamperedNow?.state, 'untrusted', 'the tampered node is still untrusted right after the restart');
  t.ok(tamperedNow?.reasons.some((r) => r.code === 'PCR_CHANGED_WITHIN_BOOT'), 'with its reason');

  for (const id of ['keep-1', 'keep-2']) {
    const n = await fleet.waitForNode(id, (x) => x.state === 'trusted' && Date.parse(x.lastEvidenceAt) > killedAt);
    t.ok(Date.parse(n.lastVerdictAt) > killedAt, `${id} is trusted again on evidence taken after the restart`);
  }
  const silent = await fleet.waitForNode('silent', (x) => x.state === 'stale', fleet.controllerConfig.staleAfterMs * 4);
  t.equal(silent.reasons[0]?.code, 'NODE_STALE', 'the node that fell silent while the controller was down goes stale');
  t.ok(Date.parse(silent.lastEvidenceAt) < killedAt, 'and it never sent evidence after the restart');

  // The tampered host keeps sending honest-looking rounds; the restart must not have cleared its finding.
  await tampered.agent.attestNow();
  const still = await fleet.waitForNode('tampered', (x) => Date.parse(x.lastEvidenceAt) > killedAt);
  t.equal(still.state, 'untrusted', 'fresh evidence from the tampered node does not re-trust it');
  t.equal(still.requiresReenrollment, true);
});
