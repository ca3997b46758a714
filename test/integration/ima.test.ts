/**
 * Runtime integrity end to end: each host has a generated IMA measurement list (real
 * files of this machine, real template hashes) whose entries are extended into PCR 10 of
 * its swtpm. The agent ships the list incrementally and pushes a round when it grows; the
 * controller replays from its stored PCR 10 to the quoted one and judges new entries
 * against the runtime policy pushed with bulwarkctl.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { wire } from '../../proto/wire.js';
import { NODE_SUBJECTS } from '../../lib/nats-auth/index.js';
import { TestFleet, type TestNode } from '../helpers/fleet.js';
import { bootAggregateOf, ImaLogBuilder } from '../helpers/ima-builder.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const ALLOWED = ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env', '/usr/bin/sleep'];

const root = await makeTempDir('ima');
const fleet = await TestFleet.create({ root });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const ctl = (args: string[]): Promise<{ code: number; out: string; err: string }> => fleet.ctl(args);

interface ImaHost {
  readonly node: TestNode;
  readonly builder: ImaLogBuilder;
  readonly logPath: string;
}

/** Appends `from..` entries of the builder to the host's list, then extends them into PCR 10, in the kernel's order. */
async function measure(host: ImaHost, from: number): Promise<void> {
  const entries = host.builder.entries.slice(from);
  await appendFile(host.logPath, host.builder.ascii(from));
  for (const e of entries) await host.node.swtpm.extendPcr(10, host.builder.extendValue(e, 'sha256').toString('hex'));
}

async function imaHost(nodeId: string): Promise<ImaHost> {
  const logPath = join(root, `${nodeId}.ascii`);
  await writeFile(logPath, '');
  const node = await fleet.addNode(nodeId, { imaLogPath: logPath, imaFormat: 'ascii' });
  const builder = new ImaLogBuilder({ templateHashAlgorithm: 'sha1' });
  // boot_aggregate over the (zero) PCRs 0-9 of this freshly started TPM, as the kernel computes it.
  builder.bootAggregate(await bootAggregateOf(node.tpm));
  for (const path of ALLOWED) builder.realFile(path);
  const host = { node, builder, logPath };
  await measure(host, 0);
  return host;
}

t.test('a runtime policy from real files, pushed and assigned with bulwarkctl', async (t) => {
  const builder = new ImaLogBuilder();
  const measured = ALLOWED.map((p) => builder.realFile(p));
  const policy = buildRuntimePolicy(
    measured.map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
    { generatedAt: new Date().toISOString(), generator: 'test', excludes: ['^/tmp/excluded/'] },
  );
  const path = join(root, 'runtime.json');
  await writeFile(path, JSON.stringify(formatRuntimePolicy(policy)));
  const pushed = await ctl(['policy', 'push', 'runtime', 'base-image', path]);
  t.equal(pushed.code, 0, pushed.err);
  const assigned = await ctl(['policy', 'assign', 'runtime', 'base-image', '--default']);
  t.equal(assigned.code, 0, assigned.err);
});

let host: ImaHost;

t.test('a host running only allowed files is trusted', async (t) => {
  host = await imaHost('ima-good');
  await host.node.agent.start();
  const n = await fleet.waitForNode('ima-good', (x) => x.state === 'trusted');
  t.equal(n.reasons.length, 0);
});

t.test('allowed growth stays trusted; an excluded path is not judged', async (t) => {
  const before = host.builder.entries.length;
  host.builder.realFile('/usr/bin/cat');
  host.builder.file('/tmp/excluded/scratch', { digest: randomBytes(32) });
  const appended = Date.now();
  await measure(host, before);
  await host.node.agent.attestNow();
  // Judged on evidence taken after the growth, not on the verdict from before it.
  const n = await fleet.waitForNode('ima-good', (x) => x.state === 'trusted' && Date.parse(x.lastEvidenceAt) > appended);
  t.equal(n.reasons.length, 0);
});

t.test('the controller restarts mid-stream and resumes from the stored offset', async (t) => {
  const nc = await fleet.natsConnection();
  t.teardown(() => nc.close());
  const froms: number[] = [];
  nc.subscribe(NODE_SUBJECTS.evidenceAll, {
    callback: (err, msg) => {
      if (err !== null) return;
      const ev = wire.evidence.decode(msg.data);
      if (ev.nodeId === 'ima-good') froms.push(ev.imaFromEntry);
    },
  });
  await nc.flush();
  await fleet.stopController();
  const before = host.builder.entries.length;
  host.builder.realFile('/usr/bin/ls');
  await measure(host, before);
  // The controller is down: any verdict stamped after this moment was judged after the restart.
  const restartedAt = Date.now();
  await fleet.startController();
  await host.node.agent.attestNow();
  const n = await fleet.waitForNode('ima-good', (x) => x.state === 'trusted' && Date.parse(x.lastEvidenceAt) > restartedAt);
  t.equal(n.state, 'trusted');
  t.ok(froms.length > 0, 'rounds were observed');
  t.ok(
    froms.every((f) => f >= before),
    `every round after the restart started at or after entry ${before} (${froms.join(',')})`,
  );
});

t.test('one new entry with an unknown digest: untrusted, with the path named', async (t) => {
  const before = host.builder.entries.length;
  host.builder.file('/usr/local/bin/cryptominer', { digest: randomBytes(32) });
  const started = Date.now();
  await measure(host, before);
  const n = await fleet.waitForNode('ima-good', (x) => x.state === 'untrusted', 10_000);
  const latency = Date.now() - started;
  const f = n.reasons.find((r) => r.code === 'IMA_DIGEST_NOT_ALLOWED');
  t.ok(f, `IMA_DIGEST_NOT_ALLOWED in ${JSON.stringify(n.reasons)}`);
  t.match(JSON.stringify(f), /\/usr\/local\/bin\/cryptominer/, 'the finding names the path');
  t.comment(`detected in ${latency} ms (push rounds on growth; timings belong to npm run bench)`);
  // What ran is kept for the boot and judged again on a policy change, so it is not sticky;
  // a later clean round does not undo it.
  await host.node.agent.attestNow();
  const later = await fleet.waitForNode('ima-good', (x) => Date.parse(x.lastEvidenceAt) > Date.parse(n.lastEvidenceAt));
  t.equal(later.state, 'untrusted', 'what ran cannot be undone by a clean round');
  t.ok(later.reasons.some((r) => r.code === 'IMA_DIGEST_NOT_ALLOWED'));
});

t.test('an edited entry no longer replays: caught with its code', async (t) => {
  const edited = await imaHost('ima-edited');
  // Rewrite the list: the same entries, one path renamed (its template hash no longer matches).
  await writeFile(edited.logPath, (await readFile(edited.logPath, 'utf8')).replace('/usr/bin/cat', '/usr/bin/cut'));
  await edited.node.agent.start();
  const n = await fleet.waitForNode('ima-edited', (x) => x.state === 'untrusted');
  t.ok(
    n.reasons.some((r) => r.code.startsWith('IMA_')),
    `an IMA finding: ${n.reasons.map((r) => r.code).join(',')}`,
  );
});

t.test('a removed entry: the list does not replay to PCR 10', async (t) => {
  const cut = await imaHost('ima-removed');
  const lines = (await readFile(cut.logPath, 'utf8')).split('\n');
  lines.splice(2, 1);
  await writeFile(cut.logPath, lines.join('\n'));
  await cut.node.agent.start();
  const n = await fleet.waitForNode('ima-removed', (x) => x.state === 'untrusted');
  t.ok(
    n.reasons.some((r) => r.code === 'IMA_REPLAY_MISMATCH'),
    `IMA_REPLAY_MISMATCH: ${n.reasons.map((r) => r.code).join(',')}`,
  );
});
