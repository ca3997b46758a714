/**
 * NATS as an enrolled host sees it: two swtpm hosts enroll through the real controller and
 * each gets its own nkey; connected with host-a's real seed (from its agent's data dir),
 * every attack on the control plane is refused by the real nats-server with a permission
 * violation and changes nothing — node records, leases, policies, the audit stream. Without
 * TLS or credentials no one gets in (the nats-server here is Debian's 2.9.10: the config
 * shape of GHSA-fr2g-9hjm-wr23 is avoided and this proves it). A node whose record is
 * removed loses its connection.
 */
import t, { type Test } from 'tap';
import { createConnection } from 'node:net';
import { connect, ErrorCode, Events, NatsError, StringCodec, headers, type NatsConnection } from 'nats';
import { NODE_SUBJECTS, parseNatsNodeId } from '../../lib/nats-auth/index.js';
import { AUDIT_STREAM, BUCKETS, ControllerStore, decodeLease } from '../../controller/state/index.js';
import { POLICY_BUCKET } from '../../controller/policies/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const sc = StringCodec();
const root = await makeTempDir('fleet-nats-auth');
const fleet = await TestFleet.create({ root });
await fleet.startController();
const connections: NatsConnection[] = [];

t.teardown(async () => {
  for (const c of connections) if (!c.isClosed()) await c.close().catch(() => undefined);
  await fleet.stop();
  await removeDir(root);
});

for (const id of ['host-a', 'host-b']) {
  const node = await fleet.addNode(id);
  await node.agent.start();
}
await fleet.waitForNode('host-a', (n) => n.state === 'trusted');
await fleet.waitForNode('host-b', (n) => n.state === 'trusted');

const admin = await fleet.natsConnection();
connections.push(admin);
const store = await ControllerStore.open(admin);
const jsm = await admin.jetstreamManager();
const js = admin.jetstream();
const kvs = {
  nodes: await js.views.kv(BUCKETS.nodes),
  leases: await js.views.kv(BUCKETS.leases),
  policies: await js.views.kv(POLICY_BUCKET),
};
await kvs.policies.put('measured-boot.strict', sc.encode('{"version":1}'));

/** What an attacker would want to change, as the controller reads it (rounds go on meanwhile, so revisions are not compared). */
async function snapshot(): Promise<string> {
  const out: string[] = [];
  for (const n of await store.listNodes()) out.push(`node ${n.nodeId} ${n.state} ${n.natsPublicKey ?? '-'} ${n.ekPublic.slice(0, 16)}`);
  for await (const k of await kvs.leases.keys()) {
    const e = await kvs.leases.get(k);
    out.push(`lease ${k} ${e === null || e.operation !== 'PUT' ? 'none' : decodeLease(e.value, k).holder}`);
  }
  for await (const k of await kvs.policies.keys()) {
    const e = await kvs.policies.get(k);
    out.push(`policy ${k} ${e === null ? 'none' : `${e.revision}:${e.operation}:${sc.decode(e.value)}`}`);
  }
  const audit = await jsm.streams.info(AUDIT_STREAM);
  out.push(`audit first=${audit.state.first_seq} deny_delete=${String(audit.config.deny_delete)} deny_purge=${String(audit.config.deny_purge)}`);
  return out.sort().join('\n');
}

/** The nats.js error code a promise rejects with ('resolved' when it does not). */
async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    if (err instanceof NatsError) return err.code;
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** Permission violations the server reported on a connection. */
function violations(nc: NatsConnection): Array<{ operation: string; subject: string }> {
  const seen: Array<{ operation: string; subject: string }> = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Error && s.data === ErrorCode.PermissionsViolation && s.permissionContext !== undefined) {
        seen.push({ operation: s.permissionContext.operation, subject: s.permissionContext.subject });
      }
    }
  })();
  return seen;
}

async function expectViolation(t: Test, seen: Array<{ operation: string; subject: string }>, operation: 'publish' | 'subscription', subject: string): Promise<void> {
  const found = await waitFor(`the server to refuse ${operation} to ${subject}`, () => (seen.some((v) => v.operation === operation && v.subject === subject) ? true : undefined), 5000, 10).catch(() => false);
  t.ok(found, `server refused ${operation} to ${subject} (PERMISSIONS_VIOLATION)`);
}

t.test('no TLS or no credentials: refused (no anonymous access, GHSA-fr2g-9hjm-wr23 shape avoided)', async (t) => {
  t.match(fleet.nats.url, /^tls:\/\//);
  await t.rejects(connect({ servers: fleet.nats.url, reconnect: false }), 'TLS with the right CA but no credentials');
  await t.rejects(connect({ servers: fleet.nats.url, reconnect: false, tls: { ca: '' }, user: 'controller', pass: 'guess-guess-guess-guess' }), 'a guessed user and password');
  // A plaintext client: the server asks for TLS first and never takes a plaintext CONNECT.
  const port = Number(new URL(fleet.nats.url.replace('tls://', 'http://')).port);
  const reply = await new Promise<string>((resolve) => {
    let buf = '';
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('INFO')) sock.write('CONNECT {"verbose":true}\r\nPING\r\n');
      if (buf.includes('PONG') || buf.includes('-ERR')) sock.destroy();
    });
    sock.on('close', () => resolve(buf));
    sock.on('error', () => resolve(buf));
  });
  t.match(reply, /"tls_required":true/, 'the server requires TLS');
  t.notMatch(reply, /PONG/, 'a plaintext client is never served');
});

t.test('as host-a with its own nkey: every attack is refused and changes nothing', async (t) => {
  const before = await snapshot();
  const hostA = await fleet.nodeNatsConnection('host-a', { reconnect: false });
  connections.push(hostA);
  const seen = violations(hostA);
  const a = parseNatsNodeId('host-a');
  const b = parseNatsNodeId('host-b');
  const forged: string[] = [];
  for (const subject of ['bulwark.v1.trust.>', NODE_SUBJECTS.evidenceAll, NODE_SUBJECTS.nonceAll, 'bulwark.v1.challenge.>']) {
    admin.subscribe(subject, { callback: (err, msg) => err === null && sc.decode(msg.data) === 'forged' && forged.push(msg.subject) });
  }
  await admin.flush();

  // KV writes and deletes (nats.js KV is publishes to $KV.<bucket>.<key> and $JS.API calls).
  for (const [bucket, key] of [[BUCKETS.nodes, 'host-b'], [BUCKETS.nodes, 'host-a'], [BUCKETS.leases, 'verifier-scheduler'], [POLICY_BUCKET, 'measured-boot.strict']] as const) {
    t.equal(await rejection(hostA.request(`$KV.${bucket}.${key}`, sc.encode('forged'), { timeout: 5000 })), ErrorCode.PermissionsViolation, `put ${bucket}/${key}`);
    const del = headers();
    del.set('KV-Operation', 'DEL');
    t.equal(await rejection(hostA.request(`$KV.${bucket}.${key}`, new Uint8Array(0), { timeout: 5000, headers: del })), ErrorCode.PermissionsViolation, `delete ${bucket}/${key}`);
  }
  await t.rejects(hostA.jetstream().views.kv(BUCKETS.nodes, { bindOnly: true }).then((kv) => kv.put('host-b', sc.encode('forged'))), 'the KV client cannot even bind');
  // The audit stream, and any JetStream API call.
  for (const api of [`STREAM.DELETE.${AUDIT_STREAM}`, `STREAM.PURGE.${AUDIT_STREAM}`, `STREAM.MSG.DELETE.${AUDIT_STREAM}`, `STREAM.INFO.${AUDIT_STREAM}`, 'INFO', `STREAM.UPDATE.${AUDIT_STREAM}`, 'STREAM.LIST']) {
    t.equal(await rejection(hostA.request(`$JS.API.${api}`, sc.encode('{}'), { timeout: 5000 })), ErrorCode.PermissionsViolation, `$JS.API.${api}`);
  }
  // Trust events, and requests as another node.
  for (const subject of ['bulwark.v1.trust.host-a', 'bulwark.v1.trust.host-b', 'bulwark.v1.audit.host-b', NODE_SUBJECTS.evidence(b), NODE_SUBJECTS.nonce(b), NODE_SUBJECTS.challenge(b), NODE_SUBJECTS.challenge(a)]) {
    hostA.publish(subject, sc.encode('forged'));
    await expectViolation(t, seen, 'publish', subject);
  }
  t.equal(await rejection(hostA.request(NODE_SUBJECTS.evidence(b), sc.encode('forged'), { timeout: 5000 })), ErrorCode.PermissionsViolation, 'evidence as host-b');
  t.equal(await rejection(hostA.request(NODE_SUBJECTS.nonce(b), sc.encode('forged'), { timeout: 5000 })), ErrorCode.PermissionsViolation, 'nonce request as host-b');
  // Subscriptions to another node's challenges or evidence (and wider).
  const received: string[] = [];
  for (const subject of [NODE_SUBJECTS.challenge(b), NODE_SUBJECTS.evidence(b), NODE_SUBJECTS.evidence(a), NODE_SUBJECTS.evidenceAll, 'bulwark.v1.trust.>', '_INBOX.node.host-b.>', '>']) {
    hostA.subscribe(subject, { callback: (err, msg) => err === null && received.push(msg.subject) });
    await expectViolation(t, seen, 'subscription', subject);
  }
  // A challenge to host-b goes out and is answered; host-a's refused subscriptions see none of it.
  const roundsB = fleet.nodes.get('host-b')?.rounds ?? [];
  const roundsBefore = roundsB.length;
  t.equal((await fleet.ctl(['reattest', 'host-b'])).code, 0, 'reattest host-b');
  await waitFor('host-b to answer the challenge', () => (roundsB.length > roundsBefore ? true : undefined), 20_000);
  await admin.flush();
  await hostA.flush();
  t.same(received, [], 'host-a received nothing of host-b');
  t.same(forged, [], 'nothing forged reached a subscriber');
  t.equal(await snapshot(), before, 'node records, leases, policies and the audit stream are unchanged');

  // Its own requests still work: the permissions are exact, not a closed door.
  const nonce = await hostA.request(NODE_SUBJECTS.nonce(a), new Uint8Array(0), { timeout: 5000 });
  t.equal(nonce.headers?.get('Bulwark-Error'), 'WIRE_MALFORMED', 'its own nonce subject reaches the controller (an empty body is refused by it)');
});

t.test('a body naming another node is refused on its own subject', async (t) => {
  const hostA = await fleet.nodeNatsConnection('host-a', { reconnect: false });
  connections.push(hostA);
  const { wire } = await import('../../proto/wire.js');
  const msg = await hostA.request(NODE_SUBJECTS.nonce(parseNatsNodeId('host-a')), wire.nonceRequest.encode({ nodeId: 'host-b' }), { timeout: 5000 });
  t.equal(msg.headers?.get('Bulwark-Error'), 'NATS_AUTH_NODE_MISMATCH');
});

t.test('enrolling again replaces the node\'s key: the old one is cut, the agent goes on with the new one', async (t) => {
  const node = fleet.nodes.get('host-a');
  if (node === undefined) throw new Error('host-a is missing');
  const old = await fleet.nodeNatsConnection('host-a', { reconnect: false });
  connections.push(old);
  await old.flush();
  const closed = old.closed();
  const before = (await store.getNode('host-a'))?.record.natsPublicKey;
  await node.agent.enroll();
  const after = (await store.getNode('host-a'))?.record.natsPublicKey;
  t.ok(after !== undefined && after !== before, 'the node record holds the new key');
  await closed;
  t.ok(old.isClosed(), 'the connection with the old key was cut');
  const rounds = node.rounds.length;
  t.equal((await fleet.ctl(['reattest', 'host-a'])).code, 0);
  await waitFor('host-a to answer on its new identity', () => (node.rounds.length > rounds ? true : undefined), 20_000);
  t.equal(node.rounds.at(-1)?.reply.verdict, 'trusted', 'and it is still trusted');
});

t.test('a removed node loses its NATS connection', async (t) => {
  const hostB = await fleet.nodeNatsConnection('host-b', { reconnect: false });
  connections.push(hostB);
  await hostB.flush();
  const closed = hostB.closed();
  await fleet.nodes.get('host-b')?.agent.stop();
  await store.deleteNode('host-b');
  const err = await closed;
  t.ok(hostB.isClosed(), 'the server closed the connection after reloading without host-b');
  t.ok(err === undefined || err instanceof Error, 'closed (with the server\'s reason, if any)');
  await t.rejects(fleet.nodeNatsConnection('host-b', { reconnect: false }), 'and host-b cannot connect again');
});
