/**
 * A corrupt node record fails only its own node. Three hosts enroll and become trusted;
 * then garbage is written straight into one node's entry in KV `bulwark_nodes`. The other
 * nodes keep getting fresh verdicts, keep being pulled and swept; the corrupt one is
 * untrusted with STATE_CORRUPT over gRPC and in bulwarkctl, its stored bytes are never
 * overwritten by its rounds, and it comes back only after an operator approves it and it
 * enrolls again.
 */
import { recordingLogger } from '../helpers/logs.js';
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { KV, NatsConnection } from 'nats';
import { NO_LOGS, SUBJECTS } from '../../proto/wire.js';
import { requestChallenge, sendEvidence } from '../helpers/rounds.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

const logs: LogLine[] = [];
const root = await makeTempDir('state-corrupt');
const fleet = await TestFleet.create({ root, logger: recordingLogger((r) => logs.push({ level: r.level, msg: r.msg, fields: { ...r.fields } })) });
await fleet.startController();
let nc: NatsConnection | null = null;

t.teardown(async () => {
  await nc?.close();
  await fleet.stop();
  await removeDir(root);
});

const ids = ['node-a', 'node-b', 'node-c'] as const;
const [pulled, silent, corrupt] = ids;

t.test('a corrupt record fails only its own node', async (t) => {
  for (const id of ids) await fleet.addNode(id);
  await Promise.all(ids.map((id) => fleet.nodes.get(id)?.agent.start()));
  for (const id of ids) await fleet.waitForNode(id, (n) => n.state === 'trusted');

  nc = await fleet.natsConnection();
  const kv: KV = await nc.jetstream().views.kv('bulwark_nodes');
  const challenges: number[] = [];
  const sub = nc.subscribe(SUBJECTS.challenge(pulled), { callback: () => challenges.push(Date.now()) });
  t.teardown(() => sub.unsubscribe());

  // Garbage in one field of node-c's record, written behind the controller's back.
  const before = await kv.get(corrupt);
  t.ok(before !== null, 'node-c has a stored record');
  const record: unknown = JSON.parse(new TextDecoder().decode(before?.value));
  t.ok(typeof record === 'object' && record !== null);
  const attestation: unknown = typeof record === 'object' && record !== null ? Reflect.get(record, 'attestation') : null;
  const mangled = JSON.stringify({ ...(typeof record === 'object' ? record : {}), attestation: { ...(typeof attestation === 'object' ? attestation : {}), resetCount: 'garbage' } });
  const corruptedAt = Date.now();
  const corruptRevision = await kv.put(corrupt, new TextEncoder().encode(mangled));

  const client = fleet.client();
  t.teardown(() => client.close());

  const bad = await fleet.waitForNode(corrupt, (n) => n.state === 'untrusted');
  t.equal(bad.reasons[0]?.code, 'STATE_CORRUPT', 'GetNode: the corrupt node is untrusted with STATE_CORRUPT');
  t.equal(bad.reasons[0]?.details['path'], '/attestation/resetCount', 'the finding names the JSON path');
  t.equal(bad.requiresReenrollment, true, 'it needs an operator');

  // The others go on: fresh verdicts after the corruption, pulls, and the stale sweep.
  const fresh = await fleet.waitForNode(pulled, (n) => n.state === 'trusted' && Date.parse(n.lastVerdictAt) > corruptedAt);
  t.equal(fresh.reasons.length, 0, 'node-a has a fresh trusted verdict after the corruption');
  await waitFor('a pull of node-a after the corruption', () => (challenges.some((at) => at > corruptedAt) ? true : undefined), 20_000);
  t.pass('the scheduler still pulls evidence from node-a');
  await fleet.nodes.get(silent)?.agent.stop();
  const stale = await fleet.waitForNode(silent, (n) => n.state === 'stale', fleet.controllerConfig.staleAfterMs * 4);
  t.equal(stale.reasons[0]?.code, 'NODE_STALE', 'the stale sweep still runs: silent node-b became stale');

  const listed = await client.listNodes();
  t.same(
    listed.map((n) => [n.nodeId, n.state, n.reasons[0]?.code ?? '']),
    [
      [pulled, 'trusted', ''],
      [silent, 'stale', 'NODE_STALE'],
      [corrupt, 'untrusted', 'STATE_CORRUPT'],
    ],
    'ListNodes lists every node, the corrupt one untrusted',
  );
  const ctl = await fleet.ctl(['nodes']);
  t.equal(ctl.code, 0);
  t.match(ctl.out, new RegExp(`${corrupt}\\s+untrusted.*STATE_CORRUPT`), 'bulwarkctl nodes shows it untrusted with STATE_CORRUPT');
  const one = await fleet.ctl(['node', corrupt]);
  t.equal(one.code, 1, 'bulwarkctl node exits 1: the node is not trusted');
  t.match(one.out, /state:\s+untrusted/);
  t.match(one.out, /STATE_CORRUPT: the stored node record does not decode/, 'and says why');
  const json = await fleet.ctl(['nodes', '--json']);
  t.match(json.out, new RegExp(`"nodeId":"${corrupt}","state":"untrusted"`), 'bulwarkctl nodes --json too');
  t.ok(
    logs.some((l) => l.level === 'warn' && l.fields['node'] === corrupt && l.fields['path'] === '/attestation/resetCount'),
    'a warn line names the node and the JSON path',
  );

  // Its own rounds are refused (no nonce for a node that cannot be verified), evidence it
  // sends anyway is answered untrusted, and neither overwrites the corrupt bytes.
  const nodeC = fleet.nodes.get(corrupt);
  if (nodeC === undefined) throw new Error('node-c is missing');
  await waitFor(
    "node-c's own round refused with STORE_CORRUPT",
    () => (logs.some((l) => l.msg === 'attestation round failed' && String(l.fields['error']).includes('STORE_CORRUPT')) ? true : undefined),
    20_000,
  );
  await t.rejects(requestChallenge(nc, corrupt), /STORE_CORRUPT/, 'no nonce is issued to a node whose record is corrupt');
  const quote = await nodeC.tpm.quote(randomBytes(32), nodeC.config.pcrSelection, nodeC.config.akHandle);
  const reply = await sendEvidence(nc, {
    nodeId: corrupt,
    nonce: randomBytes(32),
    attest: quote.attest,
    signature: quote.signature,
    pcrs: quote.pcrs,
    bootId: (await readFile(nodeC.bootIdPath, 'utf8')).trim(),
    facts: null,
    factsDigest: '',
    round: 0,
    ...NO_LOGS,
  });
  t.equal(reply.verdict, 'untrusted', 'evidence from the corrupt node is answered untrusted');
  t.same(
    reply.findings.map((f) => f.code),
    ['STATE_CORRUPT'],
    'with STATE_CORRUPT',
  );
  const after = await kv.get(corrupt);
  t.equal(after?.revision, corruptRevision, 'nothing was written over the corrupt record');
  t.equal(new TextDecoder().decode(after?.value), mangled, 'the stored bytes were left as they were');
  t.equal((await client.getNode(corrupt)).state, 'untrusted', 'still untrusted after its own rounds');
  await t.rejects(nodeC.agent.enroll(), { code: 'NODE_REENROLL_NOT_APPROVED' }, 'the host cannot clear it by enrolling again');

  // An operator approves: the corrupt record goes, the host enrolls afresh and earns trust again.
  const approved = await fleet.ctl(['approve', corrupt]);
  t.equal(approved.code, 0, 'bulwarkctl approve accepts a corrupt node');
  await t.rejects(client.getNode(corrupt), { code: 'NODE_NOT_FOUND' }, 'the corrupt record was removed');
  await nodeC.agent.enroll();
  const back = await fleet.waitForNode(corrupt, (n) => n.state === 'trusted');
  t.equal(back.reasons.length, 0, 'after approval and enrollment node-c is trusted on fresh evidence');
});
