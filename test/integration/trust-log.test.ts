/**
 * What the controller and agent log, against the real fleet: every trust transition is one
 * info line ("trust transition", node, from, to, codes) that matches the audit history one
 * for one, records about a node carry its id, and an audit entry that cannot be read is
 * dropped with a warning, not in silence.
 */
import t from 'tap';
import { TestFleet } from '../helpers/fleet.js';
import { recordingLogger, type LogRecord } from '../helpers/logs.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';
import { SUBJECTS } from '../../proto/wire.js';

const records: LogRecord[] = [];
const root = await makeTempDir('trust-log');
const fleet = await TestFleet.create({ root, logger: recordingLogger((r) => records.push(r)) });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const NODE = 'node-log';
const transitions = (): LogRecord[] => records.filter((r) => r.msg === 'trust transition' && r.fields['node'] === NODE);

t.test('enrolled → trusted → stale: one info line per transition, as in the audit history', async (t) => {
  await fleet.addNode(NODE);
  await fleet.nodes.get(NODE)?.agent.start();
  await fleet.waitForNode(NODE, (n) => n.state === 'trusted');
  await fleet.nodes.get(NODE)?.agent.stop();
  await fleet.waitForNode(NODE, (n) => n.state === 'stale');
  // The record changes first, then the audit entry is appended and the line written.
  await waitFor('the stale transition logged', () => (transitions().some((l) => l.fields['to'] === 'stale') ? true : undefined), 10_000);

  const lines = transitions();
  t.ok(lines.every((l) => l.level === 'info'), 'every transition is logged at info');
  t.match(
    lines.map((l) => l.fields),
    [
      { from: 'unknown', to: 'enrolled', codes: [], cause: 'enrollment' },
      { from: 'enrolled', to: 'trusted', codes: [], cause: 'evidence' },
      { from: 'trusted', to: 'stale', codes: ['NODE_STALE'], cause: 'stale' },
    ],
  );
  const client = fleet.client();
  try {
    const history = await client.history(NODE, 100);
    t.same(
      lines.map((l) => [l.fields['sequence'], l.fields['from'], l.fields['to']]),
      history.map((e) => [e.sequence, e.previous, e.state]),
      'each line names the audit entry it belongs to (sequence), one line per entry',
    );
  } finally {
    client.close();
  }
  t.ok(records.some((r) => r.msg === 'node is stale' && r.level === 'warn' && r.fields['node'] === NODE && r.fields['code'] === 'NODE_STALE'), 'the sweep warns with node id and code');
  t.ok(records.some((r) => r.msg === 'controller verdict' && r.fields['node'] === NODE), "the agent's verdict records carry its node id");
});

t.test('an audit entry that does not decode is dropped from the history with a warning', async (t) => {
  const nc = await fleet.natsConnection();
  try {
    // Not a TrustEvent: a field tag whose varint never ends.
    await nc.jetstream().publish(SUBJECTS.audit(NODE), new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  } finally {
    await nc.close();
  }
  const client = fleet.client();
  try {
    const before = (await client.history(NODE, 100)).length;
    t.equal(before, transitions().length, 'the history still lists every readable entry');
  } finally {
    client.close();
  }
  const dropped = records.filter((r) => r.msg === 'dropped an audit entry from the history: it does not decode');
  t.equal(dropped.length, 1, 'one warning for the one unreadable entry');
  t.match(dropped[0], { level: 'warn', fields: { node: NODE, sequence: Number } });
});
