/**
 * One node per TPM, against a real fleet (nats-server, gRPC, swtpm hosts): the escapes
 * from the sticky rule end untrusted or refused. The same TPM cannot enroll under a new
 * node id; another TPM cannot take an enrolled id; a host that extends a boot PCR while
 * its agent is stopped and deletes its enrollment state is still caught
 * (PCR_CHANGED_WITHIN_BOOT). Refusals and admin moves are audited.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/config.js';
import { evidenceSources } from '../../agent/sources.js';
import { Tpm2ToolsTpm } from '../../agent/tpm2-tools-tpm.js';
import { silentLogger } from '../../daemon/index.js';
import { isBulwarkError } from '../../lib/index.js';
import { adminAuditRecords } from '../helpers/audit.js';
import { testFacts, TestFleet, type TestNode } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('one-tpm-one-node');
const fleet = await TestFleet.create({ root });
await fleet.startController();
const extra: Agent[] = [];
const extraTpms: Tpm2ToolsTpm[] = [];
t.teardown(async () => {
  for (const a of extra) await a.stop().catch(() => undefined);
  for (const x of extraTpms) await x.close().catch(() => undefined);
  await fleet.stop();
  await removeDir(root);
});

/** Another agent on `node`'s TPM, with its own data dir and node id. */
function agentOn(node: TestNode, nodeId: string, dataDir: string, tpm: Tpm2ToolsTpm = node.tpm): Agent {
  const config = parseAgentConfig([{ ...node.config, nodeId, dataDir, bootIdPath: node.bootIdPath }], {});
  const agent = new Agent({ config, tpm, collectFacts: async () => testFacts(nodeId), sources: evidenceSources(config, {}), log: silentLogger() });
  extra.push(agent);
  return agent;
}

async function refusalCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return isBulwarkError(err) ? err.code : String(err);
  }
}

const host = await fleet.addNode('host-2');
await host.agent.start();
await fleet.waitForNode('host-2', (n) => n.state === 'trusted');

t.test('the same TPM under a new node id is refused (EK_BOUND_TO_OTHER_NODE), audited', async (t) => {
  const dir = join(root, 'host-2b');
  await mkdir(dir, { recursive: true });
  const code = await refusalCode(agentOn(host, 'host-2b', dir).start());
  t.equal(code, 'EK_BOUND_TO_OTHER_NODE');
  const nodes = await fleet.client().listNodes();
  t.notOk(
    nodes.some((n) => n.nodeId === 'host-2b'),
    'no node host-2b exists',
  );
  const refused = (await adminAuditRecords(fleet)).filter((r) => r.action === 'enrollment.refused' && r.subject === 'host-2b');
  t.equal(refused[0]?.details['code'], 'EK_BOUND_TO_OTHER_NODE', 'the refusal is in the audit stream');
  t.equal((await fleet.waitForNode('host-2', () => true)).state, 'trusted', 'host-2 itself is untouched');
});

t.test('another TPM under an enrolled node id is refused (NODE_CONFLICT), audited', async (t) => {
  const swtpm = await fleet.newTpm();
  const tpm = await Tpm2ToolsTpm.open({ tcti: swtpm.tcti, toolTimeoutMs: 20_000, akAlg: host.config.akAlg });
  extraTpms.push(tpm);
  t.teardown(() => swtpm.stop());
  const dir = join(root, 'impostor');
  await mkdir(dir, { recursive: true });
  t.equal(await refusalCode(agentOn(host, 'host-2', dir, tpm).start()), 'NODE_CONFLICT');
  const refused = (await adminAuditRecords(fleet)).filter((r) => r.action === 'enrollment.refused' && r.subject === 'host-2');
  t.equal(refused[0]?.details['code'], 'NODE_CONFLICT');
});

t.test('PCR 7 extended while the agent is stopped, enrollment state deleted, restarted: PCR_CHANGED_WITHIN_BOOT', async (t) => {
  await host.agent.stop();
  await host.swtpm.extendPcr(7, randomBytes(32).toString('hex'));
  await rm(join(host.config.dataDir, 'enrollment.json'));
  const again = agentOn(host, 'host-2', host.config.dataDir);
  await again.start();
  const n = await fleet.waitForNode('host-2', (x) => x.state === 'untrusted');
  t.ok(
    n.reasons.some((r) => r.code === 'PCR_CHANGED_WITHIN_BOOT'),
    n.reasons.map((r) => r.code).join(','),
  );
  t.ok(n.requiresReenrollment, 'sticky: only an operator clears it');
  await again.attestNow();
  const later = await fleet.waitForNode('host-2', (x) => x.lastVerdictAt !== n.lastVerdictAt);
  t.equal(later.state, 'untrusted', 'and it stays untrusted on the next round');
  // Enrolling once more (the state deleted again) does not clear it either.
  await again.stop();
  await rm(join(host.config.dataDir, 'enrollment.json'));
  t.equal(await refusalCode(agentOn(host, 'host-2', host.config.dataDir).start()), 'NODE_REENROLL_NOT_APPROVED');
});

t.test('an admin moves the TPM to a new node id (audited); it enrolls there afresh', async (t) => {
  const moved = await fleet.ctl(['move', 'host-2', '--to', 'host-2c']);
  t.equal(moved.code, 0, moved.err);
  const records = await adminAuditRecords(fleet);
  const move = records.find((r) => r.action === 'node.moved');
  t.same([move?.details['from'], move?.details['to']], ['host-2', 'host-2c']);
  const dir = join(root, 'host-2c');
  await mkdir(dir, { recursive: true });
  await agentOn(host, 'host-2c', dir).start();
  const n = await fleet.waitForNode('host-2c', (x) => x.state === 'trusted' || x.state === 'untrusted');
  t.equal(n.nodeId, 'host-2c');
  const nodes = await fleet.client().listNodes();
  t.notOk(
    nodes.some((x) => x.nodeId === 'host-2'),
    'the old node id is gone',
  );
});
