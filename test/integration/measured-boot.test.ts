/**
 * Measured boot end to end: each host's swtpm is extended with the digests of a generated
 * UEFI event log (the log the agent reads from its configured path), the controller
 * replays the log against every verified quote and judges it with the measured-boot
 * policy pushed and assigned through bulwarkctl.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wire } from '../../proto/wire.js';
import { NODE_SUBJECTS } from '../../lib/nats-auth/index.js';
import { buildBootLog, type BootScenario, type BuiltBoot } from '../helpers/eventlog-builder.js';
import { indexOfBytes } from '../helpers/rounds.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('measured-boot');
const fleet = await TestFleet.create({ root });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const ctl = (args: string[]): Promise<{ code: number; out: string; err: string }> => fleet.ctl(args);

/** A host whose TPM measured the boot `scenario` describes, with the log at its event log path. */
async function bootedHost(nodeId: string, scenario: Partial<BootScenario>, tamperLog?: (log: Uint8Array, built: BuiltBoot) => Uint8Array): Promise<void> {
  const built = buildBootLog(scenario);
  const logPath = join(root, `${nodeId}.bin`);
  await writeFile(logPath, tamperLog === undefined ? built.bytes : tamperLog(built.bytes.slice(), built));
  const node = await fleet.addNode(nodeId, { eventLogPath: logPath });
  await built.builder.extendInto(node.swtpm, ['sha256']);
  await node.agent.start();
}

t.test('a reference policy from a known-good log, pushed and assigned with bulwarkctl', async (t) => {
  const good = buildBootLog();
  const logPath = join(root, 'reference.bin');
  await writeFile(logPath, good.bytes);
  const created = await ctl(['policy', 'measured-boot', 'create', '--from-eventlog', logPath, '--name', 'debian-12']);
  t.equal(created.code, 0, created.err);
  const policyPath = join(root, 'debian-12.json');
  await writeFile(policyPath, created.out);
  const pushed = await ctl(['policy', 'push', 'measured-boot', 'debian-12', policyPath]);
  t.equal(pushed.code, 0, pushed.err);
  const broken = join(root, 'broken.json');
  await writeFile(broken, '{"name":"x","stages":{"kernel":"not a list"}}');
  const refused = await ctl(['policy', 'push', 'measured-boot', 'broken', broken]);
  t.equal(refused.code, 3, 'an invalid measured-boot policy is refused as malformed input');
  const assigned = await ctl(['policy', 'assign', 'measured-boot', 'debian-12', '--default']);
  t.equal(assigned.code, 0, assigned.err);
  const list = await ctl(['policy', 'list', '--json']);
  t.match(list.out, /"name":"debian-12".*"assignedTo":\["\*"\]/);
});

t.test('a host whose log and PCRs agree and satisfy the policy is trusted; the log is sent once', async (t) => {
  const nc = await fleet.natsConnection();
  t.teardown(() => nc.close());
  const sizes: number[] = [];
  // A plain subscriber sees a copy of every evidence request (the controllers answer in a queue group).
  nc.subscribe(NODE_SUBJECTS.evidenceAll, {
    callback: (err, msg) => {
      if (err !== null) return;
      const ev = wire.evidence.decode(msg.data);
      if (ev.nodeId === 'good-host') sizes.push(ev.eventLog.length);
    },
  });
  await nc.flush();
  await bootedHost('good-host', {});
  const node = await fleet.waitForNode('good-host', (n) => n.state === 'trusted');
  t.equal(node.reasons.length, 0);
  const node2 = fleet.nodes.get('good-host');
  await node2?.agent.attestNow();
  await node2?.agent.attestNow();
  t.ok(sizes.length >= 3, `saw ${sizes.length} rounds`);
  t.ok((sizes[0] ?? 0) > 1000, 'the first round carries the log');
  t.same(sizes.slice(1).filter((s) => s > 0), [], 'later rounds carry only its digest');
});

const cases: ReadonlyArray<readonly [string, string, Partial<BootScenario>, ((log: Uint8Array, built: BuiltBoot) => Uint8Array)?]> = [
  ['a kernel digest not in the policy', 'BOOT_COMPONENT_NOT_ALLOWED', { kernelBuild: 'linux-image-6.1.0-18-amd64 6.1.76-1+evil' }],
  ['Secure Boot off', 'SECURE_BOOT_DISABLED', { secureBoot: false }],
  ['a command line outside the pattern', 'KERNEL_CMDLINE_NOT_ALLOWED', { cmdline: 'root=/dev/sda1 ro init=/bin/sh' }],
  [
    'a log edited by one byte',
    'EVENTLOG_REPLAY_MISMATCH',
    {},
    (log, built) => {
      // Flip one byte of the shim's sha256 digest: the log no longer replays to the TPM's PCR 4.
      const at = indexOfBytes(log, Buffer.from(built.sha256.shim, 'hex'));
      if (at < 0) throw new Error('shim digest not found in the log');
      log[at] = (log[at] ?? 0) ^ 0xff;
      return log;
    },
  ],
];

for (const [what, code, scenario, tamper] of cases) {
  t.test(`${what}: untrusted with ${code}`, async (t) => {
    const id = `host-${code.toLowerCase().replaceAll('_', '-')}`;
    await bootedHost(id, scenario, tamper);
    const node = await fleet.waitForNode(id, (n) => n.state === 'untrusted');
    t.ok(
      node.reasons.some((r) => r.code === code),
      `reasons name ${code}: ${node.reasons.map((r) => r.code).join(',')}`,
    );
  });
}

t.test('the controller keeps the log across a restart: the agent need not send it again', async (t) => {
  await fleet.stopController();
  await fleet.startController();
  const agent = fleet.nodes.get('good-host')?.agent;
  await agent?.attestNow();
  const node = await fleet.waitForNode('good-host', (n) => n.state === 'trusted' && Date.now() - Date.parse(n.lastEvidenceAt) < 5000);
  t.equal(node.reasons.length, 0, 'still trusted on the stored log');
});

t.test('a policy assigned to a node group applies to the nodes an operator puts in it', async (t) => {
  const relaxed = join(root, 'relaxed.json');
  await writeFile(relaxed, JSON.stringify({ name: 'lab', acceptAll: true }));
  t.equal((await ctl(['policy', 'push', 'measured-boot', 'lab', relaxed])).code, 0);
  t.equal((await ctl(['policy', 'assign', 'measured-boot', 'lab', '--group', 'lab'])).code, 0);
  const id = 'host-secure-boot-disabled';
  t.equal((await ctl(['policy', 'group', id, 'lab'])).code, 0);
  await fleet.nodes.get(id)?.agent.attestNow();
  const n = await fleet.waitForNode(id, (x) => x.state === 'trusted');
  t.equal(n.reasons.length, 0, 'the group\'s accept-all policy applies instead of the default');
  t.equal((await ctl(['policy', 'group', id, 'none'])).code, 0);
  await fleet.nodes.get(id)?.agent.attestNow();
  await fleet.waitForNode(id, (x) => x.state === 'untrusted' && x.reasons.some((r) => r.code === 'SECURE_BOOT_DISABLED'));
  const bad = await ctl(['policy', 'assign', 'measured-boot', 'lab', '--group', 'lab', '--default']);
  t.equal(bad.code, 2, 'one target at a time');
});

t.test('a node without an event log while a policy applies: EVENTLOG_MISSING', async (t) => {
  const node = await fleet.addNode('no-log');
  await node.agent.start();
  const n = await fleet.waitForNode('no-log', (x) => x.state === 'untrusted');
  t.ok(n.reasons.some((r) => r.code === 'EVENTLOG_MISSING'));
});

t.test('a host with a real SHA-1 format (TCG 1.2) log: the default policy refuses it with EVENTLOG_SHA1_ONLY', async (t) => {
  // go-attestation's Windows GCE log (test/fixtures/eventlog/public): SHA-1 digests only, no Spec ID event.
  const legacy = fileURLToPath(new URL('../../../test/fixtures/eventlog/public/go-attestation-windows-gcp-shielded-vm.bin', import.meta.url));
  const node = await fleet.addNode('legacy-host', { eventLogPath: legacy });
  await node.agent.start();
  const n = await fleet.waitForNode('legacy-host', (x) => x.state === 'untrusted' && x.reasons.length > 0);
  t.ok(
    n.reasons.some((r) => r.code === 'EVENTLOG_SHA1_ONLY'),
    `reasons name EVENTLOG_SHA1_ONLY: ${n.reasons.map((r) => r.code).join(',')}`,
  );
});
