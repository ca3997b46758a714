/**
 * IMA flow end to end beyond one round: a 50 MB boot-time measurement list present at
 * enrollment is shipped over many rounds (768 KiB each) and judged as a whole, the node
 * untrusted with the progress until the last chunk reaches the quoted PCR 10; a runtime
 * policy pushed with bulwarkctl judges what nodes already ran again, with no new evidence;
 * a list that does not replay names, unverified, what the policy would refuse.
 *
 * The lists are recorded-format ascii_runtime_measurements files (ImaLogBuilder) whose
 * entries are extended into PCR 10 of each host's swtpm, as the kernel would.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { TestFleet, type TestNode } from '../helpers/fleet.js';
import { bootAggregateOf, ImaLogBuilder, type BuiltEntry } from '../helpers/ima-builder.js';
import { BACKLOG_EXCLUDE, addImaBacklog } from '../helpers/ima-backlog.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const ALLOWED = ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/env', '/usr/bin/sleep'];
const BACKLOG_BYTES = 50 * 1024 * 1024;
/** tpm2_pcrextend takes many digests per call: one process per batch, not per entry. */
const EXTENDS_PER_CALL = 2000;

const root = await makeTempDir('ima-backlog');
// Nodes whose agents are stopped must not go stale while a policy change is judged.
const fleet = await TestFleet.create({ root, controller: { staleAfterMs: 600_000 } });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

interface ImaHost {
  readonly node: TestNode;
  readonly builder: ImaLogBuilder;
  readonly logPath: string;
}

/** Extends entries into the host's PCR 10, in list order. */
async function extend(host: ImaHost, entries: readonly BuiltEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += EXTENDS_PER_CALL) {
    const specs = entries.slice(i, i + EXTENDS_PER_CALL).map((e) => `10:sha256=${host.builder.extendValue(e, 'sha256').toString('hex')}`);
    await host.node.swtpm.tool('tpm2_pcrextend', specs);
  }
}

/** A host whose list starts with boot_aggregate and the allowed files; `more` adds entries before anything is written. */
async function imaHost(nodeId: string, more: (b: ImaLogBuilder) => void = () => undefined): Promise<ImaHost> {
  const logPath = join(root, `${nodeId}.ascii`);
  const node = await fleet.addNode(nodeId, { imaLogPath: logPath, imaFormat: 'ascii' });
  const builder = new ImaLogBuilder({ templateHashAlgorithm: 'sha1' });
  // boot_aggregate over the (zero) PCRs 0-9 of this freshly started TPM, as the kernel computes it.
  builder.bootAggregate(await bootAggregateOf(node.tpm));
  for (const path of ALLOWED) builder.realFile(path);
  more(builder);
  const host = { node, builder, logPath };
  await writeFile(logPath, builder.ascii());
  await extend(host, builder.entries);
  return host;
}

/** The runtime policy of this fleet: the allowed files (less `without`), and the backlog's synthetic tree excluded. */
async function pushPolicy(without: readonly string[] = []): Promise<void> {
  const b = new ImaLogBuilder();
  const measured = ALLOWED.filter((p) => !without.includes(p)).map((p) => b.realFile(p));
  const policy = buildRuntimePolicy(
    measured.map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
    { generatedAt: new Date().toISOString(), generator: 'test', excludes: [BACKLOG_EXCLUDE] },
  );
  const path = join(root, `runtime-${randomBytes(4).toString('hex')}.json`);
  await writeFile(path, JSON.stringify(formatRuntimePolicy(policy)));
  const pushed = await fleet.ctl(['policy', 'push', 'runtime', 'fleet', path]);
  if (pushed.code !== 0) throw new Error(`policy push failed: ${pushed.err}`);
}

t.before(async () => {
  await pushPolicy();
  const assigned = await fleet.ctl(['policy', 'assign', 'runtime', 'fleet', '--default']);
  if (assigned.code !== 0) throw new Error(`policy assign failed: ${assigned.err}`);
});

t.test('a 50 MB backlog at enrollment is verified over several rounds; trusted only after the last', async (t) => {
  const started = Date.now();
  // ima-sig entries with an RSA-2048 signature (about 700 bytes a line, as on a distribution
  // that signs its files): the policy excludes their tree, the point is their volume.
  const host = await imaHost('ima-backlog-50mb', (b) => addImaBacklog(b, BACKLOG_BYTES));
  const listBytes = (await readFile(host.logPath)).length;
  const generated = Date.now();
  t.ok(listBytes >= BACKLOG_BYTES, `the list holds ${listBytes} bytes in ${host.builder.entries.length} entries`);
  await host.node.agent.start();
  const n = await fleet.waitForNode('ima-backlog-50mb', (x) => x.state === 'trusted', 600_000);
  const verifiedAt = Date.now();
  t.equal(n.reasons.length, 0);
  // The record is stored before the reply goes out: wait for the agent to have it too.
  await waitFor('the trusted reply at the agent', () => (host.node.rounds.some((r) => r.reply.verdict === 'trusted') ? true : undefined), 30_000);
  const replies = host.node.rounds.map((r) => r.reply);
  const firstTrusted = replies.findIndex((r) => r.verdict === 'trusted');
  const before = replies.slice(0, firstTrusted);
  t.ok(before.length >= Math.floor(listBytes / (768 * 1024)), `${before.length} rounds before the trusted one (768 KiB each at most)`);
  t.ok(
    before.every((r) => r.verdict === 'untrusted' && r.findings.length === 1 && r.findings[0]?.code === 'IMA_LOG_INCOMPLETE'),
    'every round before the last is untrusted, in progress (IMA_LOG_INCOMPLETE only)',
  );
  t.match(before.at(-1)?.findings[0]?.message, /IMA backlog in progress/);
  const progress = before.map((r) => Number(r.findings[0]?.details['receivedEntries']));
  t.ok(
    progress.every((p, i) => i === 0 || p > (progress[i - 1] ?? 0)),
    'each round carried new entries (the agent reads only what follows what was received)',
  );
  t.equal(replies[firstTrusted]?.imaEntry, host.builder.entries.length, 'the trusted verdict covers the whole list');
  t.comment(`list ${listBytes} bytes, ${host.builder.entries.length} entries: generated and extended in ${generated - started} ms, verified over ${firstTrusted + 1} rounds in ${verifiedAt - generated} ms`);
});

t.test('an agent restart and a controller restart mid-backlog continue from what was received', async (t) => {
  const host = await imaHost('ima-backlog-restart', (b) => addImaBacklog(b, 8 * 1024 * 1024));
  const chunks = Math.ceil((await readFile(host.logPath)).length / (700 * 1024));
  const inProgress = (min: number) => (x: { reasons: readonly { code: string; details: Record<string, string> }[] }) =>
    x.reasons.some((r) => r.code === 'IMA_LOG_INCOMPLETE' && Number(r.details['rounds']) >= min);
  await host.node.agent.start();
  await fleet.waitForNode('ima-backlog-restart', inProgress(2), 120_000);
  await host.node.agent.stop();
  const firstAgent = host.node.rounds.length;
  // The agent restarts on the same host (same data directory and boot): it resumes from its saved position.
  const again = fleet.newAgent('ima-backlog-restart');
  await again.agent.start();
  await waitFor('a round of the restarted agent', () => (again.rounds.length > 0 ? true : undefined), 120_000);
  t.match(again.rounds[0]?.reply.findings[0]?.code, /^IMA_LOG_INCOMPLETE$/, 'still in progress: the controller restarts mid-backlog');
  await fleet.stopController();
  await fleet.startController();
  const n = await fleet.waitForNode('ima-backlog-restart', (x) => x.state === 'trusted', 300_000);
  t.equal(n.reasons.length, 0);
  await waitFor('the trusted reply at the agent', () => (again.rounds.some((r) => r.reply.verdict === 'trusted') ? true : undefined), 30_000);
  const secondAgent = again.rounds.findIndex((r) => r.reply.verdict === 'trusted') + 1;
  t.ok(secondAgent > 0, 'the restarted agent saw the trusted verdict');
  t.ok(firstAgent + secondAgent <= chunks + 4, `${firstAgent} + ${secondAgent} rounds for about ${chunks} chunks: nothing was sent again from the start`);
  t.equal(again.rounds[secondAgent - 1]?.reply.imaEntry, host.builder.entries.length, 'the whole list');
});

t.test('a policy change judges what ran again, without new evidence, naming the revision', async (t) => {
  const host = await imaHost('ima-policy-change');
  await host.node.agent.start();
  const trusted = await fleet.waitForNode('ima-policy-change', (x) => x.state === 'trusted');
  // No more rounds from this node: whatever changes now is the controller judging again.
  await host.node.agent.stop();
  const rounds = host.node.rounds.length;
  const settled = await fleet.waitForNode('ima-policy-change', (x) => x.lastEvidenceAt !== '' && x.state === 'trusted');

  await pushPolicy(['/usr/bin/env']);
  const removed = await fleet.waitForNode('ima-policy-change', (x) => x.state === 'untrusted');
  const f = removed.reasons.find((r) => r.code === 'IMA_DIGEST_NOT_ALLOWED');
  t.ok(f, `IMA_DIGEST_NOT_ALLOWED: ${JSON.stringify(removed.reasons)}`);
  t.equal(f?.details['path'], '/usr/bin/env', 'the file the removed digest was for');
  t.equal(f?.details['policy'], 'fleet');
  t.match(f?.details['policyRevision'], /^\d+$/, 'the revision of the policy in force');
  t.match(f?.message, /runtime policy fleet revision \d+/);
  t.equal(removed.lastEvidenceAt, settled.lastEvidenceAt, 'judged without new evidence');

  await pushPolicy();
  const readded = await fleet.waitForNode('ima-policy-change', (x) => x.state === 'trusted');
  t.equal(readded.reasons.length, 0, 'the digest added back clears the finding');
  t.equal(readded.lastEvidenceAt, settled.lastEvidenceAt, 'again without new evidence');
  t.equal(host.node.rounds.length, rounds, 'the agent sent nothing meanwhile');
  t.ok(trusted);
});

t.test('a list that does not replay: IMA_REPLAY_MISMATCH lists what the policy would refuse', async (t) => {
  const host = await imaHost('ima-mismatch', (b) => {
    b.file('/usr/local/bin/dropper', { digest: randomBytes(32) });
  });
  // The kernel measured one more file than the list shows (an entry cut from the list).
  const cut = host.builder.file('/usr/local/bin/hidden', { digest: randomBytes(32) });
  await extend(host, [cut]);
  await host.node.agent.start();
  const n = await fleet.waitForNode('ima-mismatch', (x) => x.reasons.some((r) => r.code === 'IMA_REPLAY_MISMATCH'));
  const f = n.reasons.find((r) => r.code === 'IMA_REPLAY_MISMATCH');
  t.equal(n.state, 'untrusted');
  t.equal(f?.details['wouldRefuseCount'], '1', 'one unverified entry the policy would refuse');
  t.match(f?.details['wouldRefuse'], /\/usr\/local\/bin\/dropper/);
  t.equal(f?.details['wouldRefuseEntries'], String(ALLOWED.length + 1), 'by its index');
  t.match(f?.details['wouldRefusePolicy'], /^fleet@\d+$/);
  t.notMatch(f?.details['wouldRefuse'], /hidden/, 'only what the list shows');
});
