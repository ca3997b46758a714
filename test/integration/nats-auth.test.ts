/**
 * Per-node NATS permissions against the real nats-server (Debian's 2.9.10 here), started
 * from a config rendered by lib/nats-auth with TLS from a CA made by openssl in a temp dir:
 * no client gets in without TLS and credentials; the controller has JetStream and KV; a
 * node's own nkey lets it publish its own requests and receive its own challenges and
 * replies, and every other thing it tries — KV writes, audit stream deletes and purges,
 * trust events, other nodes' subjects, any JetStream API call — is refused by the server
 * and changes nothing. Removing a node and reloading the server cuts it off.
 */
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import {
  connect,
  headers,
  nkeyAuthenticator,
  usernamePasswordAuthenticator,
  Events,
  ErrorCode,
  NatsError,
  StringCodec,
  type ConnectionOptions,
  type NatsConnection,
} from 'nats';
import { BulwarkError } from '../../lib/index.js';
import { NATS_SERVER_DEFAULTS, NODE_SUBJECTS, createNkeyUser, nodeIdFromSubject, parseNatsNodeId, renderNatsServerConfig, type NatsNodeId, type NodeNatsIdentity } from '../../lib/nats-auth/index.js';
import { ConfiguredNatsServer, createNatsPassword, issueNkeySeedFile, natsClientAuthOptions, readNkeySeedFile, writeNatsPasswordFile } from '../../controller/nats-auth/index.js';
import { AUDIT_STREAM, BUCKETS } from '../../controller/state/index.js';
import { POLICY_BUCKET } from '../../controller/policies/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor, waitUntil } from '../helpers/wait.js';

const sc = StringCodec();
const root = await makeTempDir('nats-auth');
const connections: NatsConnection[] = [];
const servers: ConfiguredNatsServer[] = [];

t.teardown(async () => {
  for (const nc of connections) if (!nc.isClosed()) await nc.close().catch(() => undefined);
  for (const s of servers) await s.stop();
  await removeDir(root);
});

// --- TLS: a CA and a server certificate for 127.0.0.1, made with openssl. ---------------------
const caFile = join(root, 'ca.pem');
const certFile = join(root, 'server.pem');
const keyFile = join(root, 'server-key.pem');
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
await execa('openssl', ['req', '-x509', ...ec, '-keyout', join(root, 'ca-key.pem'), '-out', caFile, '-days', '2', '-subj', '/CN=bulwark test NATS CA',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
await execa('openssl', ['req', '-new', ...ec, '-keyout', keyFile, '-out', join(root, 'server.csr'), '-subj', '/CN=127.0.0.1']);
await writeFile(join(root, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
await execa('openssl', ['x509', '-req', '-in', join(root, 'server.csr'), '-CA', caFile, '-CAkey', join(root, 'ca-key.pem'), '-CAcreateserial',
  '-out', certFile, '-days', '2', '-extfile', join(root, 'server.ext')]);

// --- Identities: nkey seed files (0600) for the controller and three nodes. --------------------
const seedFile = (name: string): string => join(root, 'credentials', `${name}.nk`);
const controllerKey = await issueNkeySeedFile(seedFile('controller'));
const nodeIds = { a: parseNatsNodeId('node-a'), b: parseNatsNodeId('node-b'), c: parseNatsNodeId('node-c') };
const nodeIdentities: NodeNatsIdentity[] = [];
for (const nodeId of Object.values(nodeIds)) nodeIdentities.push({ nodeId, publicKey: (await issueNkeySeedFile(seedFile(nodeId))).publicKey });

let enrolled: readonly NodeNatsIdentity[] = nodeIdentities;
let renderBroken = false;
const HOST = '127.0.0.1';
const nats = await ConfiguredNatsServer.start({
  configPath: join(root, 'nats', 'nats-server.conf'),
  host: HOST,
  render: (port) =>
    renderBroken
      ? 'port: {\n'
      : renderNatsServerConfig({
          host: HOST,
          port,
          tls: { certFile, keyFile, caFile },
          storeDir: join(root, 'jetstream'),
          controller: { kind: 'nkey', publicKey: controllerKey.publicKey },
          nodes: enrolled,
        }),
});
servers.push(nats);

async function open(opts: Partial<ConnectionOptions>): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: 0, reconnect: false, ...opts });
  connections.push(nc);
  return nc;
}

async function openController(): Promise<NatsConnection> {
  return open({ name: 'controller', ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: seedFile('controller') }, caFile })) });
}

async function openNode(nodeId: NatsNodeId): Promise<NatsConnection> {
  return open({ name: nodeId, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: seedFile(nodeId) }, caFile, nodeId })) });
}

/** The nats.js error code a promise rejects with ('resolved' when it does not). */
async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    if (err instanceof NatsError) return err.code;
    if (err instanceof BulwarkError) return err.code;
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** Permission violations the server reported on a connection (nats.js status events). */
class Violations {
  readonly seen: Array<{ operation: string; subject: string }> = [];

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Error && s.data === ErrorCode.PermissionsViolation && s.permissionContext !== undefined) {
          this.seen.push({ operation: s.permissionContext.operation, subject: s.permissionContext.subject });
        }
      }
    })();
  }

  async expect(t: Test, operation: 'publish' | 'subscription', subject: string): Promise<void> {
    const found = await waitFor(
      `the server to refuse ${operation} to ${subject}`,
      () => (this.seen.some((v) => v.operation === operation && v.subject === subject) ? true : undefined),
      5000,
      10,
    ).catch(() => false);
    t.ok(found, `server refused ${operation} to ${subject} (PERMISSIONS_VIOLATION)`);
  }
}

// --- Controller state the nodes will try to change. --------------------------------------------
const controller = await openController();
const js = controller.jetstream();
const jsm = await controller.jetstreamManager();
const kvs = {
  nodes: await js.views.kv(BUCKETS.nodes, { history: 1 }),
  leases: await js.views.kv(BUCKETS.leases, { history: 1 }),
  policies: await js.views.kv(POLICY_BUCKET, { history: 1 }),
};
await kvs.nodes.put('node-b', sc.encode('{"state":"untrusted"}'));
await kvs.nodes.put('node-a', sc.encode('{"state":"untrusted"}'));
await kvs.leases.put('verifier-scheduler', sc.encode('{"holder":"controller-1","expiresAt":9999999999999}'));
await kvs.policies.put('measured-boot.strict', sc.encode('{"version":1}'));
await jsm.streams.add({ name: AUDIT_STREAM, subjects: ['bulwark.v1.audit.>'] });
await js.publish('bulwark.v1.audit.node-a', sc.encode('enrolled'));
await js.publish('bulwark.v1.audit.node-b', sc.encode('enrolled'));

/** Every KV entry (key → revision:value) and the audit stream's counters, read by the controller. */
async function snapshot(): Promise<string> {
  const out: string[] = [];
  for (const [name, kv] of Object.entries(kvs)) {
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    keys.sort();
    for (const k of keys) {
      const e = await kv.get(k);
      out.push(`${name}/${k}=${e === null ? 'null' : `${e.revision}:${e.operation}:${sc.decode(e.value)}`}`);
    }
  }
  const info = await jsm.streams.info(AUDIT_STREAM);
  out.push(`audit messages=${info.state.messages} first=${info.state.first_seq} last=${info.state.last_seq}`);
  return out.join('\n');
}

// What a forger would want seen: the controller listens where trust events, evidence and nonces arrive.
const forged: string[] = [];
const LEGIT = 'legit:';
for (const subject of ['bulwark.v1.trust.>', 'bulwark.v1.audit.>', 'bulwark.v1.evidence.>', 'bulwark.v1.nonce.>', 'bulwark.v1.challenge.>']) {
  controller.subscribe(subject, {
    callback: (err, msg) => {
      // The test's own traffic is marked; anything else arriving here came from a forger.
      if (err === null && !sc.decode(msg.data).startsWith(LEGIT)) forged.push(`${msg.subject}: ${sc.decode(msg.data)}`);
    },
  });
}
// The controller serves node-scoped requests and answers with the node id the subject names.
for (const [kind, subject] of [['evidence', NODE_SUBJECTS.evidenceAll], ['nonce', NODE_SUBJECTS.nonceAll]] as const) {
  controller.subscribe(subject, {
    queue: 'bulwark-controller',
    callback: (err, msg) => {
      if (err === null) msg.respond(sc.encode(`${kind} from ${nodeIdFromSubject(kind, msg.subject)}`));
    },
  });
}
await controller.flush();
const before = await snapshot();

t.test('no client gets in without TLS and valid credentials', async (t) => {
  t.equal(await rejection(open({ tls: { caFile } })), ErrorCode.AuthorizationViolation, 'TLS with the pinned CA, no credentials: refused (GHSA-fr2g-9hjm-wr23 shape avoided)');
  const stranger = createNkeyUser();
  t.equal(await rejection(open({ tls: { caFile }, authenticator: nkeyAuthenticator(sc.encode(stranger.seed)) })), ErrorCode.AuthorizationViolation, 'an nkey not in the config: refused');
  t.equal(await rejection(open({ tls: { caFile }, authenticator: usernamePasswordAuthenticator('controller', 'guess-guess-guess-guess') })), ErrorCode.AuthorizationViolation, 'a guessed user/password: refused');
  t.not(await rejection(open({ tls: null, authenticator: nkeyAuthenticator(sc.encode(controllerKey.seed)) })), 'resolved', 'nats.js without TLS: no connection');

  // Below nats.js: a plaintext client that ignores tls_required and talks the protocol anyway.
  const result = await new Promise<{ info: string; after: string; closed: boolean }>((resolve) => {
    const sock = createConnection({ host: HOST, port: nats.port });
    let buf = '';
    let info = '';
    let sent = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ info, after: buf, closed: false });
    }, 10_000);
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const eol = buf.indexOf('\r\n');
      if (!sent && eol >= 0) {
        info = buf.slice(0, eol);
        buf = buf.slice(eol + 2);
        sent = true;
        sock.write('CONNECT {"verbose":true,"pedantic":false,"protocol":1}\r\nPUB bulwark.v1.trust.node-a 6\r\nforged\r\nPING\r\n');
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ info, after: buf, closed: true });
    });
  });
  t.match(result.info, /^INFO .*"tls_required":true/, 'the server announces that TLS is required');
  t.ok(result.closed, 'the server closed the plaintext connection');
  t.notMatch(result.after, /PONG|\+OK|MSG/, 'and answered nothing to it');
  await controller.flush();
  t.same(forged, [], 'nothing from these clients reached any subscriber');
});

t.test('the controller has JetStream and KV', async (t) => {
  const e = await kvs.nodes.get('node-b');
  t.equal(e === null ? null : sc.decode(e.value), '{"state":"untrusted"}');
  const info = await jsm.streams.info(AUDIT_STREAM);
  t.equal(info.state.messages, 2);
  const r = await kvs.leases.put('probe', sc.encode('x'));
  t.ok(r > 0, 'a KV put');
  await kvs.leases.purge('probe');
  const account = await jsm.getAccountInfo();
  t.equal(account.limits.max_streams, NATS_SERVER_DEFAULTS.accountLimits.maxStreams, 'account stream limit applied');
  t.equal(account.limits.max_consumers, NATS_SERVER_DEFAULTS.accountLimits.maxConsumers, 'account consumer limit applied');
  t.equal(account.limits.max_storage, NATS_SERVER_DEFAULTS.accountLimits.maxFileBytes, 'account file limit applied');
  t.equal(controller.info?.max_payload, NATS_SERVER_DEFAULTS.limits.maxPayloadBytes, 'max_payload applied');
});

t.test('secrets are on disk with mode 0600 and read only when private', async (t) => {
  for (const file of [seedFile('controller'), seedFile(nodeIds.a), nats.configPath]) {
    t.equal((await stat(file)).mode & 0o777, 0o600, `${file} is 0600`);
  }
  t.equal((await stat(join(root, 'credentials'))).mode & 0o777, 0o700, 'credentials directory is 0700');
  const config = await readFile(nats.configPath, 'utf8');
  t.notMatch(config, controllerKey.seed, 'the config holds public keys only');
  await chmod(seedFile(nodeIds.b), 0o644);
  t.equal(await rejection(readNkeySeedFile(seedFile(nodeIds.b))), 'NATS_AUTH_CREDENTIAL_INVALID', 'a seed file others can read is refused');
  await chmod(seedFile(nodeIds.b), 0o600);
  t.equal((await readNkeySeedFile(seedFile(nodeIds.b))).publicKey, nodeIdentities[1]?.publicKey);
});

t.test('a controller with user and password, and a config requiring client certificates, are accepted by nats-server', async (t) => {
  const password = createNatsPassword();
  const passwordFile = join(root, 'credentials', 'controller.password');
  await writeNatsPasswordFile(passwordFile, password);
  const dir = join(root, 'password-server');
  const other = await ConfiguredNatsServer.start({
    configPath: join(dir, 'nats-server.conf'),
    host: HOST,
    render: (port) =>
      renderNatsServerConfig({
        host: HOST,
        port,
        tls: { certFile, keyFile, caFile },
        storeDir: join(dir, 'jetstream'),
        controller: { kind: 'password', user: 'bulwark-controller', password },
        nodes: nodeIdentities,
      }),
  });
  servers.push(other);
  try {
    const auth = await natsClientAuthOptions({ credentials: { kind: 'password', user: 'bulwark-controller', passwordFile }, caFile });
    const nc = await open({ servers: `${HOST}:${other.port}`, ...auth });
    const kv = await nc.jetstream().views.kv(BUCKETS.nodes, { history: 1 });
    t.ok((await kv.put('node-a', sc.encode('x'))) > 0, 'the password controller has KV');
    await nc.close();
    t.equal(
      await rejection(open({ servers: `${HOST}:${other.port}`, tls: { caFile }, authenticator: usernamePasswordAuthenticator('bulwark-controller', `${password}x`) })),
      ErrorCode.AuthorizationViolation,
      'a wrong password is refused',
    );
  } finally {
    await other.stop();
  }
  // verify: true (mutual TLS) renders a config nats-server accepts.
  const mtls = join(root, 'mtls.conf');
  await writeFile(
    mtls,
    renderNatsServerConfig({ host: HOST, port: 4222, tls: { certFile, keyFile, caFile, verify: true }, storeDir: join(root, 'mtls-js'), controller: { kind: 'nkey', publicKey: controllerKey.publicKey }, nodes: nodeIdentities }),
  );
  const checked = await execa('nats-server', ['-c', mtls, '-t'], { reject: false });
  t.equal(checked.exitCode, 0, `nats-server -t accepts the verify: true config ${checked.stderr}`);
});

t.test('a node with its own identity: its own requests, challenges and replies work', async (t) => {
  const nodeA = await openNode(nodeIds.a);
  const ev = await nodeA.request(NODE_SUBJECTS.evidence(nodeIds.a), sc.encode(`${LEGIT} quote`), { timeout: 5000 });
  t.equal(sc.decode(ev.data), 'evidence from node-a', 'evidence request answered on its own inbox');
  const nonce = await nodeA.request(NODE_SUBJECTS.nonce(nodeIds.a), sc.encode(`${LEGIT} nonce`), { timeout: 5000 });
  t.equal(sc.decode(nonce.data), 'nonce from node-a', 'nonce request answered');

  const challenges: string[] = [];
  nodeA.subscribe(NODE_SUBJECTS.challenge(nodeIds.a), { callback: (err, msg) => err === null && challenges.push(sc.decode(msg.data)) });
  await nodeA.flush();
  controller.publish(NODE_SUBJECTS.challenge(nodeIds.a), sc.encode(`${LEGIT} attest now`));
  await waitUntil('node-a to receive its challenge', async () => challenges.length === 1, 5000);
  t.same(challenges, [`${LEGIT} attest now`], 'its own challenge arrives');

  // Without its inbox prefix, the reply subscription on _INBOX.<nuid> is refused: the prefix is required.
  const bare = await open({ name: 'node-a-bare', ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: seedFile(nodeIds.a) }, caFile })) });
  t.equal(await rejection(bare.request(NODE_SUBJECTS.evidence(nodeIds.a), sc.encode(`${LEGIT} quote`), { timeout: 5000 })), ErrorCode.PermissionsViolation, 'default _INBOX refused');
  await bare.close();
});

t.test('everything else a node tries is refused by the server and changes nothing', async (t) => {
  const nodeA = await openNode(nodeIds.a);
  const v = new Violations(nodeA);

  // KV put / delete / purge as raw publishes into the buckets' subjects.
  for (const bucket of [BUCKETS.nodes, BUCKETS.leases, POLICY_BUCKET]) {
    const subject = `$KV.${bucket}.${bucket === BUCKETS.leases ? 'verifier-scheduler' : 'node-b'}`;
    nodeA.publish(subject, sc.encode('{"state":"trusted","holder":"node-a"}'));
    await v.expect(t, 'publish', subject);
    for (const op of ['DEL', 'PURGE']) {
      const h = headers();
      h.set('KV-Operation', op);
      nodeA.publish(`$KV.${bucket}.node-a`, sc.encode(''), { headers: h });
    }
    await v.expect(t, 'publish', `$KV.${bucket}.node-a`);
  }

  // The same through nats.js's JetStream and KV clients.
  t.equal(await rejection(nodeA.jetstreamManager()), ErrorCode.PermissionsViolation, 'jetstreamManager ($JS.API.INFO)');
  t.equal(await rejection(nodeA.jetstream().views.kv(BUCKETS.nodes)), ErrorCode.PermissionsViolation, 'open a KV bucket');
  for (const bucket of [BUCKETS.nodes, BUCKETS.leases, POLICY_BUCKET]) {
    t.equal(await rejection(nodeA.jetstream().views.kv(bucket, { bindOnly: true })), ErrorCode.PermissionsViolation, `${bucket}: bind to the bucket`);
    // What kv.put / kv.delete / kv.purge send: a JetStream publish to $KV.<bucket>.<key>, the operation in a header.
    const js = nodeA.jetstream();
    t.equal(await rejection(js.publish(`$KV.${bucket}.node-a`, sc.encode('{"state":"trusted"}'))), ErrorCode.PermissionsViolation, `${bucket}: put`);
    for (const op of ['DEL', 'PURGE']) {
      const h = headers();
      h.set('KV-Operation', op);
      if (op === 'PURGE') h.set('Nats-Rollup', 'sub');
      t.equal(await rejection(js.publish(`$KV.${bucket}.node-b`, sc.encode(''), { headers: h })), ErrorCode.PermissionsViolation, `${bucket}: ${op}`);
    }
  }
  t.equal(await rejection(nodeA.jetstream().publish('bulwark.v1.audit.node-a', sc.encode('forged'))), ErrorCode.PermissionsViolation, 'JetStream publish into the audit stream');

  // The audit stream and any other JetStream API call.
  for (const api of [
    `STREAM.DELETE.${AUDIT_STREAM}`,
    `STREAM.PURGE.${AUDIT_STREAM}`,
    `STREAM.MSG.DELETE.${AUDIT_STREAM}`,
    `STREAM.UPDATE.${AUDIT_STREAM}`,
    `STREAM.INFO.${AUDIT_STREAM}`,
    `CONSUMER.CREATE.${AUDIT_STREAM}`,
    `STREAM.DELETE.KV_${BUCKETS.nodes}`,
    `STREAM.PURGE.KV_${BUCKETS.leases}`,
    'STREAM.CREATE.FORGED',
    'STREAM.LIST',
    'INFO',
  ]) {
    t.equal(await rejection(nodeA.request(`$JS.API.${api}`, sc.encode('{}'), { timeout: 5000 })), ErrorCode.PermissionsViolation, `$JS.API.${api}`);
  }

  // Trust events, audit subjects, another node's requests, the old shared subjects, someone else's inbox.
  for (const subject of [
    'bulwark.v1.trust.node-a',
    'bulwark.v1.trust.node-b',
    'bulwark.v1.audit.node-b',
    NODE_SUBJECTS.evidence(nodeIds.b),
    NODE_SUBJECTS.nonce(nodeIds.b),
    NODE_SUBJECTS.challenge(nodeIds.b),
    NODE_SUBJECTS.challenge(nodeIds.a),
    'bulwark.v1.evidence',
    'bulwark.v1.nonce',
    '_INBOX.node.node-b.x.y',
    '_INBOX.ABCDEFGHIJKLMNOPQRSTUV.x',
    '$SYS.REQ.SERVER.PING',
  ]) {
    nodeA.publish(subject, sc.encode('forged'));
    await v.expect(t, 'publish', subject);
  }
  t.equal(await rejection(nodeA.request(NODE_SUBJECTS.evidence(nodeIds.b), sc.encode('forged'), { timeout: 5000 })), ErrorCode.PermissionsViolation, 'evidence request as node-b');
  t.equal(await rejection(nodeA.request(NODE_SUBJECTS.nonce(nodeIds.b), sc.encode('forged'), { timeout: 5000 })), ErrorCode.PermissionsViolation, 'nonce request as node-b');

  // Subscriptions to what is not its own.
  const subErrors: string[] = [];
  const received: string[] = [];
  const refusedSubs = [
    NODE_SUBJECTS.challenge(nodeIds.b),
    NODE_SUBJECTS.evidence(nodeIds.b),
    NODE_SUBJECTS.nonce(nodeIds.b),
    NODE_SUBJECTS.evidence(nodeIds.a),
    'bulwark.v1.challenge.*',
    'bulwark.v1.evidence.*',
    'bulwark.v1.trust.>',
    'bulwark.v1.>',
    '>',
    '_INBOX.>',
    '_INBOX.node.node-b.>',
    `$KV.${BUCKETS.nodes}.>`,
    '$JS.API.>',
  ];
  for (const subject of refusedSubs) {
    nodeA.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) subErrors.push(`${err.code} ${subject}`);
        else received.push(msg.subject);
      },
    });
    await v.expect(t, 'subscription', subject);
  }
  controller.publish(NODE_SUBJECTS.challenge(nodeIds.b), sc.encode(`${LEGIT} for node-b`));
  await controller.flush();
  await nodeA.flush();
  t.same(subErrors.sort(), refusedSubs.map((s) => `${ErrorCode.PermissionsViolation} ${s}`).sort(), 'each refused subscription reports PERMISSIONS_VIOLATION');
  t.same(received, [], 'and delivers nothing');

  // Nothing changed, and nothing forged reached a subscriber.
  await controller.flush();
  t.same(forged, [], 'no forged message reached the controller');
  t.equal(await snapshot(), before, 'KV entries (revisions) and the audit stream are unchanged');
  t.notOk(nodeA.isClosed(), 'the node stays connected for its own work');
  const ev = await nodeA.request(NODE_SUBJECTS.evidence(nodeIds.a), sc.encode(`${LEGIT} quote`), { timeout: 5000 });
  t.equal(sc.decode(ev.data), 'evidence from node-a');
});

t.test('a failed reload keeps the previous config', async (t) => {
  renderBroken = true;
  t.equal(await rejection(nats.reload()), 'NATS_AUTH_RELOAD_FAILED');
  renderBroken = false;
  t.equal(await rejection(open({ tls: { caFile } })), ErrorCode.AuthorizationViolation, 'still refuses clients without credentials');
  const nodeA = await openNode(nodeIds.a);
  t.equal(sc.decode((await nodeA.request(NODE_SUBJECTS.evidence(nodeIds.a), sc.encode(`${LEGIT} q`), { timeout: 5000 })).data), 'evidence from node-a');
});

t.test('removing a node and reloading the server cuts its access within seconds', async (t) => {
  const nodeC = await openNode(nodeIds.c);
  const nodeA = await openNode(nodeIds.a);
  t.equal(sc.decode((await nodeC.request(NODE_SUBJECTS.evidence(nodeIds.c), sc.encode(`${LEGIT} q`), { timeout: 5000 })).data), 'evidence from node-c', 'node-c works before');

  enrolled = nodeIdentities.filter((n) => n.nodeId !== nodeIds.c);
  const started = Date.now();
  await nats.reload();
  await waitUntil(
    'node-c to lose its connection and be refused a new one',
    async () => nodeC.isClosed() && (await rejection(openNode(nodeIds.c))) === ErrorCode.AuthorizationViolation,
    5000,
  );
  t.pass(`node-c cut off ${Date.now() - started} ms after the reload was signalled`);
  t.equal(await rejection(openNode(nodeIds.c)), ErrorCode.AuthorizationViolation, 'node-c cannot connect again');
  t.equal(sc.decode((await nodeA.request(NODE_SUBJECTS.evidence(nodeIds.a), sc.encode(`${LEGIT} q`), { timeout: 5000 })).data), 'evidence from node-a', 'node-a keeps working on its existing connection');
  t.equal(await snapshot(), before, 'state unchanged');
});
