/**
 * Corrupt appraiser state, end to end: a garbled IMA replay state in KV `bulwark_ima`
 * costs the node untrusted rounds with STATE_CORRUPT while the controller replays the
 * whole list from entry 0 against the quote, then the node is trusted again; a garbled
 * stored runtime policy makes the nodes it applies to untrusted with STATE_CORRUPT until
 * a good one is pushed. Neither throws out of the round.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRuntimePolicy, formatRuntimePolicy } from '../../lib/ima/index.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { TestFleet } from '../helpers/fleet.js';
import { ImaLogBuilder } from '../helpers/ima-builder.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const FILES = ['/usr/bin/ls', '/usr/bin/cat'];

const root = await makeTempDir('ima-state-corrupt');
const fleet = await TestFleet.create({ root });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

t.test('corrupt IMA state and a corrupt policy fail the round closed, then recover', async (t) => {
  const logPath = join(root, 'ima.ascii');
  await writeFile(logPath, '');
  const node = await fleet.addNode('ima-host', { imaLogPath: logPath, imaFormat: 'ascii' });
  const pcrs = await node.tpm.readPcrs('sha256:0,1,2,3,4,5,6,7,8,9');
  const aggregate = createHash('sha256');
  for (let i = 0; i <= 9; i++) aggregate.update(pcrs.get(TPM_ALG.SHA256)?.get(i) ?? new Uint8Array(32));
  const builder = new ImaLogBuilder({ templateHashAlgorithm: 'sha1' });
  builder.bootAggregate(aggregate.digest());
  const measured = FILES.map((p) => builder.realFile(p));
  await appendFile(logPath, builder.ascii(0));
  for (const e of builder.entries) await node.swtpm.extendPcr(10, builder.extendValue(e, 'sha256').toString('hex'));

  const policyPath = join(root, 'runtime.json');
  const policy = buildRuntimePolicy(
    measured.map((e) => ({ path: e.path, digest: { algorithm: 'sha256', value: e.digest } })),
    { generatedAt: new Date().toISOString(), generator: 'test', excludes: [] },
  );
  await writeFile(policyPath, JSON.stringify(formatRuntimePolicy(policy)));
  t.equal((await fleet.ctl(['policy', 'push', 'runtime', 'base', policyPath])).code, 0);
  t.equal((await fleet.ctl(['policy', 'assign', 'runtime', 'base', '--default'])).code, 0);

  await node.agent.start();
  await fleet.waitForNode('ima-host', (n) => n.state === 'trusted');
  const nc = await fleet.natsConnection();
  t.teardown(() => nc.close());
  const js = nc.jetstream();

  // Garbage in the node's IMA replay state.
  const ima = await js.views.kv('bulwark_ima');
  await ima.put('ima-host', new TextEncoder().encode('{"resetCount": 0, "format": "ascii", "state": 7}'));
  const from = node.rounds.length;
  const corrupt = await waitFor('a round with STATE_CORRUPT', () => node.rounds.slice(from).find((r) => r.reply.findings.some((f) => f.code === 'STATE_CORRUPT')), 20_000);
  t.equal(corrupt.reply.verdict, 'untrusted', 'the round after the corruption is untrusted');
  t.same(
    corrupt.reply.findings.find((f) => f.code === 'STATE_CORRUPT')?.details,
    { path: '/state' },
    'the finding names the JSON path',
  );
  const healed = await waitFor('a trusted round after the full replay', () => node.rounds.slice(from).find((r) => r.round > corrupt.round && r.reply.verdict === 'trusted'), 20_000);
  t.equal(healed.reply.findings.length, 0, 'trusted again once the whole list replayed from entry 0');
  const rewritten = await ima.get('ima-host');
  const state: unknown = JSON.parse(new TextDecoder().decode(rewritten?.value));
  t.match(state, { version: 1, format: 'ascii', state: { entryCount: builder.entries.length } }, 'the state was rebuilt from the replay');

  // Garbage in the stored policy the node's default assignment points at.
  const policies = await js.views.kv('bulwark_policies');
  await policies.put('policy.runtime.base', new TextEncoder().encode('not json at all'));
  const policyFrom = node.rounds.length;
  const bad = await waitFor('a round judged without a readable policy', () => node.rounds.slice(policyFrom).find((r) => r.reply.findings.some((f) => f.code === 'STATE_CORRUPT')), 20_000);
  t.equal(bad.reply.verdict, 'untrusted', 'a corrupt policy fails the round closed');
  const listed = await fleet.ctl(['node', 'ima-host']);
  t.match(listed.out, /STATE_CORRUPT/, 'bulwarkctl node shows why');
  t.equal((await fleet.ctl(['policy', 'push', 'runtime', 'base', policyPath])).code, 0, 'an operator pushes the policy again');
  const back = await fleet.waitForNode('ima-host', (n) => n.state === 'trusted');
  t.equal(back.reasons.length, 0, 'trusted again with a readable policy');
});
