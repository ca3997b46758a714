/**
 * ControllerClient against a real gRPC server built on the generated service definitions:
 * each call reaches the method the .proto file names, answers are checked like any peer's
 * (an oversized field is WIRE_MALFORMED), and a failed call carries its BulwarkError code.
 */
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { BulwarkError } from '../../lib/index.js';
import { controllerServerCredentials } from '../../controller/api/index.js';
import { ensureControllerCa } from '../../controller/pki/index.js';
import { adminTlsFor } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import {
  APPS_SERVICE,
  ATTESTATION_SERVICE,
  ControllerClient,
  ERROR_CODE_METADATA,
  HEALTH_SERVICE,
  HealthServingStatus,
  PLACEMENT_SERVICE,
  POLICIES_SERVICE,
  REGISTRAR_SERVICE,
  WIRE_LIMITS,
  baselineStatusToWire,
  type AppsServer,
  type AttestationServer,
  type BaselineStatusMsg,
  type HealthServer,
  type PlacementServer,
  type PoliciesServer,
  type RegistrarServer,
} from '../../proto/index.js';

function refuse(code: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, code);
  return { code: grpc.status.NOT_FOUND, details: `${code}: refused`, metadata };
}

const seen: string[] = [];

const registrar: RegistrarServer = {
  enroll: (call, cb) => {
    seen.push(`enroll ${call.request.nodeId} ${call.request.ekType} ${call.request.facts === undefined ? 'no facts' : 'facts'}`);
    cb(null, { challengeId: 'c1', idObject: new Uint8Array([1, 2]), encryptedSecret: new Uint8Array([3]) });
  },
  activateCredential: (call, cb) => {
    seen.push(`activate ${call.request.challengeId} ${call.request.secret.length}`);
    cb(null, { nodeId: 'node-1', nodeIdentity: 'id', natsUrl: 'nats://127.0.0.1:4222', pcrSelection: 'sha256:0', intervalMs: 5000, nodeCertificate: '', controllerCa: '' });
  },
};

const node = {
  nodeId: 'node-1',
  state: 2 as const,
  reasons: [{ code: 'NODE_STALE', message: 'm', details: { at: '1' } }],
  enrolledAt: 'e',
  stateSince: 's',
  lastEvidenceAt: '',
  lastVerdictAt: '',
  akName: 'ak',
  ekCertificateSubject: '',
  resetCount: 3,
  restartCount: 4,
  requiresReenrollment: false,
  notes: [],
};

const BASELINE_STATUS: BaselineStatusMsg = {
  nodeId: 'node-1',
  baselineName: 'web',
  baselineSha256: 'ab'.repeat(32),
  baselineMode: 'enforce',
  chainLength: 3,
  bootId: 'boot-1',
  latestReportAt: '2026-01-01T00:00:00.000Z',
  latestReceivedAt: '2026-01-01T00:00:01.000Z',
  reportBaselineSha256: 'ab'.repeat(32),
  exposureKnown: true,
  tcp: [{ from: 22, to: 22 }, { from: 443, to: 443 }],
  udp: [],
  conditional: [{ protocol: 'tcp', ports: { from: 9100, to: 9100 }, condition: 'ip saddr 10.0.0.0/8' }],
  otherProtocols: false,
  forwardOpen: false,
  selinuxMode: 'enforcing',
  changes: ['rule added to inet bulwark input'],
  findings: [{ code: 'NFT_BASELINE_DRIFT', message: 'tcp 8080 reachable', details: {} }],
  judgedAt: '2026-01-01T00:00:01.000Z',
  enforcement: [{ target: 'nftables', action: 'replaced table inet bulwark', changed: 'tcp 8080', ok: true, error: '' }],
  enforcedAt: '2026-01-01T00:00:01.000Z',
  reportError: '',
};

const attestation: AttestationServer = {
  getStatus: (_call, cb) => cb(null, { version: 'v'.repeat(65), replica: '', startedAt: '', uptimeMs: 0, nodeVersion: '', dependencies: [], leases: [], nodes: [] }),
  listNodes: (_call, cb) => cb(null, { nodes: Array.from({ length: WIRE_LIMITS.list + 4 }, (_, i) => ({ ...node, nodeId: `node-${i}` })) }),
  getNode: (call, cb) => (call.request.nodeId === 'huge' ? cb(null, { ...node, akName: 'a'.repeat(257) }) : cb(refuse('NODE_NOT_FOUND'))),
  watchTrust: (call) => {
    call.sendMetadata(new grpc.Metadata());
    call.write({ nodeId: 'node-1', previous: 1, state: 2, reasons: [], at: 'now', sequence: 7 });
    call.write({ nodeId: 'node 1', previous: 2, state: 3, reasons: [], at: 'later', sequence: 8 });
  },
  history: (call, cb) => cb(null, { events: [{ nodeId: call.request.nodeId, previous: 0, state: 3, reasons: [], at: `limit ${call.request.limit}`, sequence: 1 }] }),
  reattest: (call, cb) => cb(null, { nonce: `nonce for ${call.request.nodeId}` }),
  getStatementKey: (_call, cb) => cb(null, { publicKeyPem: '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n', sha256: 'ab'.repeat(32) }),
  getBaseline: (call, cb) =>
    cb(null, {
      ...baselineStatusToWire(BASELINE_STATUS),
      nodeId: call.request.nodeId,
      ...(call.request.nodeId === 'inverted' ? { tcp: [{ from: 443, to: 22 }] } : {}),
    }),
  approveReenrollment: (_call, cb) => cb(null, node),
  moveNode: (call, cb) => cb(null, { ekName: 'ab', fromNodeId: call.request.from, toNodeId: call.request.toNodeId }),
  listHeldEnrollments: (_call, cb) => cb(null, { enrollments: [] }),
  approveEnrollment: (call, cb) => cb(null, { nodeId: call.request.nodeOrEk, ekName: 'ab', ekCertificateSubject: '', nomadNode: '', heldAt: '' }),
};

const policies: PoliciesServer = {
  putPolicy: (call, cb) => cb(null, { kind: call.request.kind, name: call.request.name, sha256: 'ab', revision: 2, updatedAt: 'u', assignedTo: ['*'] }),
  getPolicy: (call, cb) => cb(null, { kind: call.request.kind, name: call.request.name, document: '{}' }),
  listPolicies: (_call, cb) => cb(null, { policies: [] }),
  putKeySet: (call, cb) => cb(null, { kind: call.request.kind, serial: 2, threshold: 1, keys: [{ keyid: 'k1', publicKeyPem: 'pem', scheme: '' }], expires: '', sha256: 'ab', envelope: call.request.envelope }),
  getKeySet: (call, cb) => cb(null, { kind: call.request.kind, serial: 1, threshold: 1, keys: [], expires: '', sha256: 'ab', envelope: '{}' }),
  assignPolicy: (call, cb) => {
    seen.push(`assign ${call.request.kind} ${call.request.name} node=${call.request.nodeId} group=${call.request.group}`);
    cb(null, {});
  },
  setNodeGroup: (call, cb) => {
    seen.push(`group ${call.request.nodeId}=${call.request.group}`);
    cb(null, {});
  },
};

const placement: PlacementServer = {
  isTrusted: (call, cb) =>
    cb(null, { trusted: call.request.nodeId === 'node-1', state: call.request.nodeId === 'node-1' ? 'trusted' : '', reasons: [{ code: 'NODE_STALE', message: '', details: {} }], lastVerdictAt: '' }),
};

const apps: AppsServer = {
  listApps: (_call, cb) => cb(null, { apps: [{ name: 'redis', file: 'redis.nomad.hcl', deployed: true }] }),
  deployApp: (call, cb) => cb(null, { name: call.request.name, jobId: 'j', status: `hcl ${call.request.hcl.length}`, allocations: [], evalId: 'e' }),
  appStatus: (call, cb) =>
    cb(null, {
      name: call.request.name,
      jobId: 'j',
      status: 'running',
      allocations: [{ id: 'a', nodeId: 'n', nodeName: 'node-1', taskGroup: 'g', clientStatus: 'running', desiredStatus: 'run' }],
      evalId: '',
    }),
  stopApp: (call, cb) => cb(null, { name: call.request.name, jobId: 'j', status: 'dead', allocations: [], evalId: 'e' }),
};

const health: HealthServer = {
  check: (_call, cb) => cb(null, { status: HealthServingStatus.NOT_SERVING }),
  watch: (call) => call.end(),
};

const server = new grpc.Server();
server.addService(REGISTRAR_SERVICE, registrar);
server.addService(ATTESTATION_SERVICE, attestation);
server.addService(POLICIES_SERVICE, policies);
server.addService(PLACEMENT_SERVICE, placement);
server.addService(APPS_SERVICE, apps);
server.addService(HEALTH_SERVICE, health);
// The controller's own TLS (1.3, its CA), as every gRPC connection uses.
const pkiRoot = await makeTempDir('bulwark-grpc-');
const pki = await ensureControllerCa(join(pkiRoot, 'controller'));
const tls = adminTlsFor(join(pkiRoot, 'controller'));
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', controllerServerCredentials(pki.server), (err, p) => (err !== null ? reject(err) : resolve(p))),
);
const client = new ControllerClient(`127.0.0.1:${port}`, { tls, timeoutMs: 5000 });
t.teardown(async () => {
  client.close();
  server.forceShutdown();
  await removeDir(pkiRoot);
});

t.test('registrar', async (t) => {
  const res = await client.enroll({ nodeId: 'node-1', ekType: 'ecc', ekPublic: new Uint8Array([1]), ekCertificate: new Uint8Array(0), akPublic: new Uint8Array([2]), facts: null, nomadNode: '' });
  t.same(res, { challengeId: 'c1', idObject: new Uint8Array([1, 2]), encryptedSecret: new Uint8Array([3]) });
  t.same(await client.activateCredential({ challengeId: 'c1', secret: new Uint8Array(32), natsPublicKey: 'UKEY' }), {
    nodeId: 'node-1',
    nodeIdentity: 'id',
    natsUrl: 'nats://127.0.0.1:4222',
    pcrSelection: 'sha256:0',
    intervalMs: 5000,
    nodeCertificate: '',
    controllerCa: '',
  });
  t.same(seen.splice(0), ['enroll node-1 2 no facts', 'activate c1 32'], 'the server got typed requests (EK_TYPE_ECC is 2)');
});

t.test('attestation', async (t) => {
  const nodes = await client.listNodes();
  t.equal(nodes.length, WIRE_LIMITS.list + 4, 'a fleet listing is not cut at the per-message list cap');
  t.same(nodes[0], { ...node, nodeId: 'node-0', state: 'trusted', facts: null }, 'enum values become trust states; no facts is null');
  await t.rejects(client.getNode('node-x'), { name: 'BulwarkError', code: 'NODE_NOT_FOUND' }, 'the code in metadata comes back');
  await t.rejects(client.getNode('huge'), { name: 'BulwarkError', code: 'WIRE_MALFORMED' }, 'an oversized field in an answer');
  await t.rejects(client.status(), { name: 'BulwarkError', code: 'WIRE_MALFORMED' }, 'a status whose version is oversized');
  const history = await client.history('node-1', 7);
  t.same(history.map((e) => [e.previous, e.state, e.at]), [['unknown', 'untrusted', 'limit 7']]);
  t.equal(await client.reattest('node-1'), 'nonce for node-1');
  t.same(await client.getBaseline('node-1'), BASELINE_STATUS, 'a baseline status comes back as it was sent');
  await t.rejects(client.getBaseline('inverted'), { name: 'BulwarkError', code: 'WIRE_MALFORMED' }, 'a port range whose start is past its end');
  t.equal((await client.approveReenrollment('node-1')).nodeId, 'node-1');
  const events: number[] = [];
  let ready = false;
  await t.rejects(
    client.watchTrust(
      'node-1',
      (e) => events.push(e.sequence),
      undefined,
      () => (ready = true),
    ),
    { code: 'WIRE_MALFORMED' },
    'a trust event with a malformed node id ends the watch',
  );
  t.ok(ready, 'onReady ran when the headers came');
  t.same(events, [7]);
});

t.test('policies', async (t) => {
  t.same(await client.putPolicy('measured-boot', 'p', '{}'), { kind: 'measured-boot', name: 'p', sha256: 'ab', revision: 2, updatedAt: 'u', assignedTo: ['*'] });
  t.equal(await client.getPolicy('measured-boot', 'p'), '{}');
  t.same(await client.listPolicies(''), []);
  await client.assignPolicy('measured-boot', 'p', { group: 'web' });
  await client.assignPolicy('measured-boot', null, 'node-1');
  await client.setNodeGroup('node-1', null);
  t.same(seen.splice(0), ['assign measured-boot p node= group=web', 'assign measured-boot  node=node-1 group=', 'group node-1='], 'targets and removals as the server sees them');
});

t.test('placement, apps and health', async (t) => {
  t.same(await client.isTrusted('node-1'), { trusted: true, state: 'trusted', reasons: ['NODE_STALE'] });
  t.same(await client.isTrusted('node-2'), { trusted: false, state: 'unknown', reasons: ['NODE_STALE'] }, 'an empty state reads as unknown');
  t.same(await client.listApps(), [{ name: 'redis', file: 'redis.nomad.hcl', deployed: true }]);
  t.equal((await client.deployApp('redis', 'job {}')).status, 'hcl 6');
  t.same((await client.appStatus('redis')).allocations, [{ id: 'a', nodeId: 'n', nodeName: 'node-1', taskGroup: 'g', clientStatus: 'running', desiredStatus: 'run' }]);
  t.equal((await client.stopApp('redis')).status, 'dead');
  t.equal(await client.healthCheck(), 'NOT_SERVING', 'the health enum by its name');
});

t.test('a controller that is not there', async (t) => {
  const nowhere = new ControllerClient('127.0.0.1:1', { tls, timeoutMs: 2000 });
  t.teardown(() => nowhere.close());
  const err: unknown = await nowhere.healthCheck().catch((e: unknown) => e);
  t.ok(err instanceof BulwarkError && err.code === 'RPC_FAILED', 'RPC_FAILED');
});
