/**
 * Who may call what on the controller's gRPC API, over real TLS against two real
 * controller replicas on one nats-server: every RPC × {no certificate, another CA's,
 * expired, revoked, node certificate, viewer, operator, admin} is allowed or refused exactly
 * as the table below says (a call that is allowed may still fail for business reasons —
 * NOT_FOUND, INVALID_ARGUMENT — which counts as authorised), and every refusal is in the
 * audit stream. Plaintext and TLS 1.2 are refused; a revocation made on one replica is
 * refused by the other within a second; bulwarkctl issues credentials and exits 5 when a
 * viewer approves.
 */
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect, type NatsConnection } from 'nats';
import { runCtl } from '../../cli/ctl.js';
import { ACCESS_AUDIT_RECORD, ACCESS_AUDIT_SUBJECT, RPC_ACCESS } from '../../controller/api/index.js';
import { parseControllerConfig } from '../../controller/config/config.js';
import { Controller } from '../../controller/controller.js';
import { loadControllerCa, privateKeyToPem } from '../../controller/pki/index.js';
import { AUDIT_STREAM } from '../../controller/state/store.js';
import { startEmbeddedNats } from '../../controller/nats-auth/index.js';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { silentLogger } from '../../daemon/index.js';
import {
  createCertificateAuthority,
  generateKeyPair,
  issueNodeCertificate,
  issuePersonCertificate,
  validityFor,
  type CertificateAuthority,
} from '../../lib/pki/index.js';
import {
  APPS_SERVICE,
  ATTESTATION_SERVICE,
  AUDIT_SERVICE,
  CREDENTIALS_SERVICE,
  clientCredentials,
  ControllerClient,
  ERROR_CODE_METADATA,
  HEALTH_SERVICE,
  PLACEMENT_SERVICE,
  POLICIES_SERVICE,
  REFLECTION_SERVICE_NAMES,
  REGISTRAR_SERVICE,
  type ClientTls,
} from '../../proto/index.js';
import { adminTlsFor } from '../helpers/fleet.js';
import { freePort, makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 24 * 60 * 60 * 1000;

const root = await makeTempDir('bulwark-grpc-access-');
// An authenticated nats-server (TLS, the controller's nkey), as every controller connects to.
const nats = await startEmbeddedNats({ dataDir: join(root, 'nats'), port: 0 });
const dataDir = join(root, 'controller');
const configFor = async (): Promise<ReturnType<typeof parseControllerConfig>> =>
  parseControllerConfig([{ dataDir, natsUrl: nats.url, natsCaFile: nats.caFile, natsNkeySeedFile: nats.seedFile, grpcListen: `127.0.0.1:${await freePort()}`, ekCaDir: join(root, 'no-ek-ca') }], {});
// Two replicas on one NATS, sharing the data directory's CA (as replicas share it in production).
const first = new Controller(await configFor(), silentLogger());
await first.start();
const second = new Controller(await configFor(), silentLogger());
await second.start();
const nc: NatsConnection = await connect({ servers: nats.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: nats.seedFile }, caFile: nats.caFile })) });
t.teardown(async () => {
  await nc.close();
  await first.stop();
  await second.stop();
  await nats.stop();
  await removeDir(root);
});

const ca = await loadControllerCa(dataDir);
const admin = adminTlsFor(dataDir);
const caPem = admin.caPem;

/** A person's credential issued directly by `issuer` (the controller's CA, or another). */
function personTls(issuer: CertificateAuthority, name: string, role: 'viewer' | 'operator' | 'admin', validity = validityFor(new Date(), DAY)): ClientTls & { serial: string } {
  const { privateKey, publicKey } = generateKeyPair('p256');
  const issued = issuePersonCertificate(issuer, { name, role, publicKey, validity });
  return { caPem, certPem: issued.pem, keyPem: privateKeyToPem(privateKey), serial: issued.serial };
}

const otherKey = generateKeyPair('p256').privateKey;
const otherCa = createCertificateAuthority({ key: otherKey, commonName: 'Bulwark controller CA', validity: validityFor(new Date(), DAY) });
const nodeKey = generateKeyPair('p256');
const nodeCert = issueNodeCertificate(ca, {
  nodeId: 'host-1',
  akName: new Uint8Array(34).fill(9),
  spki: new Uint8Array(nodeKey.publicKey.export({ type: 'spki', format: 'der' })),
  validity: validityFor(new Date(), DAY),
});
const revokedAdmin = personTls(ca, 'mallory', 'admin');
const adminClient = new ControllerClient(first.grpcAddress, { tls: admin });
t.teardown(() => adminClient.close());
await adminClient.revokeCredential(revokedAdmin.serial);

const CALLERS = {
  none: { tls: { caPem }, audited: 'anonymous' },
  'another CA': { tls: personTls(otherCa, 'eve', 'admin'), audited: 'anonymous' },
  expired: { tls: personTls(ca, 'old', 'admin', { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) }), audited: 'anonymous' },
  revoked: { tls: revokedAdmin, audited: 'anonymous' },
  node: { tls: { caPem, certPem: nodeCert.pem, keyPem: privateKeyToPem(nodeKey.privateKey) }, audited: 'node:host-1' },
  viewer: { tls: personTls(ca, 'vera', 'viewer'), audited: 'person:vera(viewer)' },
  operator: { tls: personTls(ca, 'otto', 'operator'), audited: 'person:otto(operator)' },
  admin: { tls: admin, audited: 'person:admin(admin)' },
} as const;
type CallerName = keyof typeof CALLERS;

/** Who the issue says may call each RPC, written out here independently of RPC_ACCESS. */
type Allowed = 'open' | 'viewer' | 'operator' | 'admin' | 'viewer-or-own-node' | 'own-node';
const EXPECTED: Readonly<Record<string, Allowed>> = {
  '/bulwark.v1.Registrar/Enroll': 'open',
  '/bulwark.v1.Registrar/ActivateCredential': 'open',
  '/grpc.health.v1.Health/Check': 'open',
  '/grpc.health.v1.Health/Watch': 'open',
  '/bulwark.v1.Attestation/ListNodes': 'viewer',
  '/bulwark.v1.Attestation/GetNode': 'viewer',
  '/bulwark.v1.Attestation/WatchTrust': 'viewer',
  '/bulwark.v1.Attestation/History': 'viewer',
  '/bulwark.v1.Attestation/GetBaseline': 'viewer',
  '/bulwark.v1.Attestation/GetStatementKey': 'viewer',
  '/bulwark.v1.Attestation/GetStatus': 'viewer',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'viewer',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'viewer',
  '/bulwark.v1.Attestation/Reattest': 'operator',
  '/bulwark.v1.Attestation/ApproveReenrollment': 'admin',
  '/bulwark.v1.Attestation/MoveNode': 'admin',
  '/bulwark.v1.Attestation/ListHeldEnrollments': 'admin',
  '/bulwark.v1.Attestation/ApproveEnrollment': 'admin',
  '/bulwark.v1.Policies/ListPolicies': 'viewer',
  '/bulwark.v1.Policies/GetPolicy': 'viewer',
  '/bulwark.v1.Policies/AssignPolicy': 'operator',
  '/bulwark.v1.Policies/SetNodeGroup': 'operator',
  '/bulwark.v1.Policies/PutPolicy': 'admin',
  '/bulwark.v1.Policies/PutKeySet': 'admin',
  '/bulwark.v1.Policies/GetKeySet': 'viewer',
  '/bulwark.v1.Apps/ListApps': 'viewer',
  '/bulwark.v1.Apps/AppStatus': 'viewer',
  '/bulwark.v1.Apps/DeployApp': 'operator',
  '/bulwark.v1.Apps/StopApp': 'operator',
  '/bulwark.v1.Placement/IsTrusted': 'viewer-or-own-node',
  '/bulwark.v1.Credentials/IssueCredential': 'admin',
  '/bulwark.v1.Credentials/RevokeCredential': 'admin',
  '/bulwark.v1.Credentials/RenewNodeCertificate': 'own-node',
  '/bulwark.v1.Audit/GetAuditCheckpoint': 'viewer',
  '/bulwark.v1.Audit/ExportAudit': 'admin',
};

/** Each RPC with a request (serialized by its generated definition) that changes nothing that matters here. */
/** ServerReflectionRequest { list_services: "" }: field 7, length-delimited, empty (a bidi stream). */
const LIST_SERVICES = Buffer.from([0x3a, 0x00]);
const REFLECTION_PATHS = REFLECTION_SERVICE_NAMES.map((name) => `/${name}/ServerReflectionInfo`);

const CASES: { path: string; stream: boolean | 'bidi'; body: Buffer }[] = [
  { path: ATTESTATION_SERVICE.getStatus.path, stream: false, body: ATTESTATION_SERVICE.getStatus.requestSerialize({}) },
  ...REFLECTION_PATHS.map((path) => ({ path, stream: 'bidi' as const, body: LIST_SERVICES })),
  { path: REGISTRAR_SERVICE.enroll.path, stream: false, body: REGISTRAR_SERVICE.enroll.requestSerialize({ nodeId: 'nobody', ekType: 1, ekPublic: new Uint8Array(1), ekCertificate: new Uint8Array(0), akPublic: new Uint8Array(1), nomadNode: '' }) },
  { path: REGISTRAR_SERVICE.activateCredential.path, stream: false, body: REGISTRAR_SERVICE.activateCredential.requestSerialize({ challengeId: 'none', secret: new Uint8Array(32), nodePublicKey: new Uint8Array(0), natsPublicKey: '' }) },
  { path: HEALTH_SERVICE.check.path, stream: false, body: HEALTH_SERVICE.check.requestSerialize({ service: '' }) },
  { path: HEALTH_SERVICE.watch.path, stream: true, body: HEALTH_SERVICE.watch.requestSerialize({ service: '' }) },
  { path: ATTESTATION_SERVICE.listNodes.path, stream: false, body: ATTESTATION_SERVICE.listNodes.requestSerialize({}) },
  { path: ATTESTATION_SERVICE.getNode.path, stream: false, body: ATTESTATION_SERVICE.getNode.requestSerialize({ nodeId: 'nobody' }) },
  { path: ATTESTATION_SERVICE.watchTrust.path, stream: true, body: ATTESTATION_SERVICE.watchTrust.requestSerialize({ nodeId: 'nobody' }) },
  { path: ATTESTATION_SERVICE.history.path, stream: false, body: ATTESTATION_SERVICE.history.requestSerialize({ nodeId: 'nobody', limit: 1 }) },
  { path: ATTESTATION_SERVICE.getBaseline.path, stream: false, body: ATTESTATION_SERVICE.getBaseline.requestSerialize({ nodeId: 'nobody' }) },
  { path: ATTESTATION_SERVICE.getStatementKey.path, stream: false, body: ATTESTATION_SERVICE.getStatementKey.requestSerialize({}) },
  { path: ATTESTATION_SERVICE.reattest.path, stream: false, body: ATTESTATION_SERVICE.reattest.requestSerialize({ nodeId: 'nobody' }) },
  { path: ATTESTATION_SERVICE.approveReenrollment.path, stream: false, body: ATTESTATION_SERVICE.approveReenrollment.requestSerialize({ nodeId: 'nobody' }) },
  { path: ATTESTATION_SERVICE.moveNode.path, stream: false, body: ATTESTATION_SERVICE.moveNode.requestSerialize({ from: 'nobody', toNodeId: 'nobody-else' }) },
  { path: ATTESTATION_SERVICE.listHeldEnrollments.path, stream: false, body: ATTESTATION_SERVICE.listHeldEnrollments.requestSerialize({}) },
  { path: ATTESTATION_SERVICE.approveEnrollment.path, stream: false, body: ATTESTATION_SERVICE.approveEnrollment.requestSerialize({ nodeOrEk: 'nobody' }) },
  { path: POLICIES_SERVICE.listPolicies.path, stream: false, body: POLICIES_SERVICE.listPolicies.requestSerialize({ kind: '' }) },
  { path: POLICIES_SERVICE.getPolicy.path, stream: false, body: POLICIES_SERVICE.getPolicy.requestSerialize({ kind: 'measured-boot', name: 'nope' }) },
  { path: POLICIES_SERVICE.assignPolicy.path, stream: false, body: POLICIES_SERVICE.assignPolicy.requestSerialize({ kind: 'measured-boot', name: 'nope', nodeId: 'nobody', group: '' }) },
  { path: POLICIES_SERVICE.setNodeGroup.path, stream: false, body: POLICIES_SERVICE.setNodeGroup.requestSerialize({ nodeId: 'nobody', group: '' }) },
  { path: POLICIES_SERVICE.putPolicy.path, stream: false, body: POLICIES_SERVICE.putPolicy.requestSerialize({ kind: 'measured-boot', name: 'nope', document: 'not json' }) },
  { path: POLICIES_SERVICE.putKeySet.path, stream: false, body: POLICIES_SERVICE.putKeySet.requestSerialize({ kind: 'no-such-kind', envelope: '{}', init: true }) },
  { path: POLICIES_SERVICE.getKeySet.path, stream: false, body: POLICIES_SERVICE.getKeySet.requestSerialize({ kind: 'runtime' }) },
  { path: APPS_SERVICE.listApps.path, stream: false, body: APPS_SERVICE.listApps.requestSerialize({}) },
  { path: APPS_SERVICE.appStatus.path, stream: false, body: APPS_SERVICE.appStatus.requestSerialize({ name: 'nope' }) },
  { path: APPS_SERVICE.deployApp.path, stream: false, body: APPS_SERVICE.deployApp.requestSerialize({ name: 'nope', hcl: '', envelope: '' }) },
  { path: APPS_SERVICE.stopApp.path, stream: false, body: APPS_SERVICE.stopApp.requestSerialize({ name: 'nope' }) },
  { path: PLACEMENT_SERVICE.isTrusted.path, stream: false, body: PLACEMENT_SERVICE.isTrusted.requestSerialize({ nodeId: 'host-1' }) },
  { path: CREDENTIALS_SERVICE.issueCredential.path, stream: false, body: CREDENTIALS_SERVICE.issueCredential.requestSerialize({ name: 'x', role: 'viewer', validForMs: 1000, publicKey: new Uint8Array(0) }) },
  { path: CREDENTIALS_SERVICE.revokeCredential.path, stream: false, body: CREDENTIALS_SERVICE.revokeCredential.requestSerialize({ nameOrSerial: 'nobody-at-all' }) },
  { path: CREDENTIALS_SERVICE.renewNodeCertificate.path, stream: false, body: CREDENTIALS_SERVICE.renewNodeCertificate.requestSerialize({ publicKey: new Uint8Array(0) }) },
  { path: AUDIT_SERVICE.getAuditCheckpoint.path, stream: false, body: AUDIT_SERVICE.getAuditCheckpoint.requestSerialize({}) },
  { path: AUDIT_SERVICE.exportAudit.path, stream: false, body: AUDIT_SERVICE.exportAudit.requestSerialize({ from: 0, to: 1, withPrevious: false, previousSize: 0 }) },
];

interface Outcome {
  readonly status: number;
  readonly code: string;
}

const identity = (b: Buffer): Buffer => b;

/** Makes one raw call; a server stream gets a short deadline (an allowed watch stays open until it). */
function call(client: grpc.Client, path: string, stream: boolean | 'bidi', body: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const codeOf = (err: grpc.ServiceError): string => {
      const v = err.metadata.get(ERROR_CODE_METADATA)[0];
      return typeof v === 'string' ? v : '';
    };
    if (!stream) {
      client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null) => {
        resolve(err === null ? { status: grpc.status.OK, code: '' } : { status: err.code, code: codeOf(err) });
      });
      return;
    }
    if (stream === 'bidi') {
      // One request, then half-close: an allowed reflection stream answers and ends.
      const b = client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      b.on('data', () => undefined);
      b.on('error', (err: grpc.ServiceError) => resolve({ status: err.code, code: codeOf(err) }));
      b.on('end', () => resolve({ status: grpc.status.OK, code: '' }));
      b.write(body);
      b.end();
      return;
    }
    const s = client.makeServerStreamRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + 1500 });
    s.on('data', () => undefined);
    s.on('error', (err: grpc.ServiceError) => resolve({ status: err.code, code: codeOf(err) }));
    s.on('end', () => resolve({ status: grpc.status.OK, code: '' }));
  });
}

function expectedRefusal(caller: CallerName, allowed: Allowed): { status: number; code: string } | null {
  if (allowed === 'open') return null;
  if (caller === 'none' || caller === 'another CA' || caller === 'expired') return { status: grpc.status.UNAUTHENTICATED, code: 'AUTH_CERTIFICATE_REQUIRED' };
  if (caller === 'revoked') return { status: grpc.status.UNAUTHENTICATED, code: 'AUTH_CERTIFICATE_REVOKED' };
  const denied = { status: grpc.status.PERMISSION_DENIED, code: 'AUTH_PERMISSION_DENIED' };
  if (caller === 'node') return allowed === 'own-node' || allowed === 'viewer-or-own-node' ? null : denied;
  if (allowed === 'own-node') return denied;
  const rank = { viewer: 1, operator: 2, admin: 3 } as const;
  const need = allowed === 'viewer-or-own-node' ? 1 : rank[allowed];
  return rank[caller] >= need ? null : denied;
}

/** Access records on the audit stream, as parsed by their schema. */
async function accessRecords(): Promise<ReturnType<typeof ACCESS_AUDIT_RECORD.parseJson>[]> {
  const consumer = await nc.jetstream().consumers.get(AUDIT_STREAM, { filterSubjects: ACCESS_AUDIT_SUBJECT });
  let remaining = (await consumer.info()).num_pending;
  const out: ReturnType<typeof ACCESS_AUDIT_RECORD.parseJson>[] = [];
  while (remaining > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(remaining, 256), expires: 5000 });
    for await (const m of batch) {
      remaining = m.info.pending;
      out.push(ACCESS_AUDIT_RECORD.parseJson(m.data));
    }
  }
  return out;
}

t.test('the table names every RPC the controller serves, and the matrix covers it', async (t) => {
  const served = [
    ...[REGISTRAR_SERVICE, ATTESTATION_SERVICE, POLICIES_SERVICE, PLACEMENT_SERVICE, APPS_SERVICE, CREDENTIALS_SERVICE, AUDIT_SERVICE, HEALTH_SERVICE].flatMap((d) => Object.values(d).map((m) => m.path)),
    ...REFLECTION_PATHS,
  ].sort();
  t.same(Object.keys(RPC_ACCESS).sort(), served, 'RPC_ACCESS has exactly the served methods');
  t.same(Object.keys(EXPECTED).sort(), served, 'the expectations here cover them all');
  t.same(CASES.map((c) => c.path).sort(), served, 'and there is a call for each');
});

t.test('every RPC × every kind of caller, allowed or refused per the table, refusals audited', async (t) => {
  const before = (await accessRecords()).filter((r) => r.decision === 'refused').length;
  const refusals: string[] = [];
  const names: readonly CallerName[] = ['none', 'another CA', 'expired', 'revoked', 'node', 'viewer', 'operator', 'admin'];
  for (const name of names) {
    const callerName = name;
    const caller = CALLERS[name];
    const client = new grpc.Client(first.grpcAddress, clientCredentials(caller.tls));
    try {
      for (const c of CASES) {
        const allowed = EXPECTED[c.path];
        if (allowed === undefined) throw new Error(`no expectation for ${c.path}`);
        const got = await call(client, c.path, c.stream, c.body);
        const refusal = expectedRefusal(callerName, allowed);
        if (refusal === null) {
          t.ok(got.status !== grpc.status.UNAUTHENTICATED && got.status !== grpc.status.PERMISSION_DENIED && !got.code.startsWith('AUTH_'), `${name} → ${c.path}: authorised (${got.status} ${got.code})`);
        } else {
          t.same(got, refusal, `${name} → ${c.path}: refused`);
          refusals.push(`${caller.audited} ${c.path} ${refusal.code}`);
        }
      }
    } finally {
      client.close();
    }
  }
  // A node certificate asking about another node is refused.
  const asNode = new grpc.Client(first.grpcAddress, clientCredentials(CALLERS.node.tls));
  t.same(await call(asNode, PLACEMENT_SERVICE.isTrusted.path, false, PLACEMENT_SERVICE.isTrusted.requestSerialize({ nodeId: 'host-2' })), { status: grpc.status.PERMISSION_DENIED, code: 'AUTH_PERMISSION_DENIED' }, 'node host-1 may not ask about host-2');
  refusals.push(`node:host-1 ${PLACEMENT_SERVICE.isTrusted.path} AUTH_PERMISSION_DENIED`);
  asNode.close();

  const records = (await accessRecords()).filter((r) => r.decision === 'refused');
  t.equal(records.length - before, refusals.length, `one audit record per refusal (${refusals.length})`);
  const audited = records.slice(before).map((r) => `${r.caller} ${r.rpc} ${r.code}`).sort();
  t.same(audited, [...refusals].sort(), 'each names the caller, the RPC and why');
});

t.test('plaintext and TLS 1.2 are refused', async (t) => {
  const plain = new grpc.Client(first.grpcAddress, grpc.credentials.createInsecure());
  const got = await call(plain, ATTESTATION_SERVICE.listNodes.path, false, ATTESTATION_SERVICE.listNodes.requestSerialize({}));
  plain.close();
  t.equal(got.status, grpc.status.UNAVAILABLE, 'a plaintext HTTP/2 connection gets no answer');
  const port = Number(first.grpcAddress.split(':').pop());
  const tls12 = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
    s.on('secureConnect', () => {
      resolve(`connected with ${String(s.getProtocol())}`);
      s.destroy();
    });
    s.on('error', (err) => resolve(`refused: ${err.message}`));
  });
  t.match(tls12, /^refused/, `a TLS 1.2 handshake is refused (${tls12})`);
});

t.test('a revocation on one replica is refused by the other within a second', async (t) => {
  const { privateKey, publicKey } = generateKeyPair('p256');
  const issued = await adminClient.issueCredential('rita', 'viewer', DAY, new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })));
  const rita: ClientTls = { caPem: issued.ca, certPem: issued.certificate, keyPem: privateKeyToPem(privateKey) };
  const onSecond = new grpc.Client(second.grpcAddress, clientCredentials(rita));
  t.teardown(() => onSecond.close());
  const listNodes = (): Promise<Outcome> => call(onSecond, ATTESTATION_SERVICE.listNodes.path, false, ATTESTATION_SERVICE.listNodes.requestSerialize({}));
  t.equal((await listNodes()).status, grpc.status.OK, 'rita reads on the second replica');
  t.same(await adminClient.revokeCredential('rita'), [issued.serial], 'revoked by name on the first replica');
  const refused = await waitFor('the second replica to refuse rita', async () => {
    const got = await listNodes();
    return got.status === grpc.status.UNAUTHENTICATED ? got : undefined;
  }, 1000, 20);
  t.same(refused, { status: grpc.status.UNAUTHENTICATED, code: 'AUTH_CERTIFICATE_REVOKED' });
  const records = await accessRecords();
  t.ok(records.some((r) => r.rpc === 'credentials.issue' && r.caller === 'person:admin(admin)' && r.message.includes('rita')), 'the issue is audited');
  t.ok(records.some((r) => r.rpc === 'credentials.revoke' && r.message.includes(issued.serial)), 'the revocation is audited');
});

t.test('bulwarkctl: credentials issue writes a set (0700/0600), a viewer approving exits 5, no credentials exits 2', async (t) => {
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runCtl(['--controller', first.grpcAddress, ...args], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
    return { code, out, err };
  };
  const dir = join(root, 'viewer-set');
  const issued = await run(['--credentials', join(dataDir, 'credentials', 'admin'), 'credentials', 'issue', 'val', '--role', 'viewer', '--valid-for', '1d', '--output', dir]);
  t.equal(issued.code, 0, issued.err);
  t.equal((await stat(dir)).mode & 0o777, 0o700, 'the directory is 0700');
  t.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o600, 'the key is 0600');
  const nodes = await run(['--credentials', dir, 'nodes']);
  t.equal(nodes.code, 0, `a viewer lists nodes: ${nodes.err}`);
  const approve = await run(['--credentials', dir, 'approve', 'host-1']);
  t.equal(approve.code, 5, 'a viewer approving is refused: exit 5');
  t.match(approve.err, /AUTH_PERMISSION_DENIED/);
  t.notMatch(approve.err, /\n\s+at /, 'no stack trace');
  const none = await run(['--credentials', join(root, 'none'), 'nodes']);
  t.equal(none.code, 2);
  t.match(none.err, /credentials\/admin/);
  const again = await run(['--credentials', join(dataDir, 'credentials', 'admin'), 'credentials', 'issue', 'val', '--role', 'viewer', '--output', dir]);
  t.not(again.code, 0, 'an existing set is never overwritten');
});
