/**
 * The controller's other stored records (pending enrollments, leases, IMA replay state,
 * policy envelopes, nonces): each decoded through its schema, a record without `version`
 * (as the previous release wrote them) read as version 1, and corruption a coded error
 * with the JSON path. Against a real nats-server: a corrupt nonce, lease or node record is
 * reported with a warn line and fails closed without stopping anything else.
 */
import { recordingLogger } from '../helpers/logs.js';
import t from 'tap';
import { join } from 'node:path';
import { connect } from 'nats';
import { decodePendingEnrollment } from '../../controller/registrar/registrar.js';
import { decodeLease, KvLease } from '../../controller/state/lease.js';
import { decodeStoredIma } from '../../controller/appraisers/ima-appraiser.js';
import { decodeStoredBaseline } from '../../controller/appraisers/baseline-appraiser.js';
import { decodeStoredPolicy } from '../../controller/policies/policy-store.js';
import { ControllerStore } from '../../controller/state/store.js';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { EMPTY_ATTESTATION, type NodeRecord } from '../../lib/attestation/node-record.js';
import { TPM_ALG } from '../../lib/tpm/types.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { testFacts } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const enc = new TextEncoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

const pending = {
  nodeId: 'node-1',
  ekType: 'rsa',
  ekPublic: '0001',
  ekName: '000b' + 'aa'.repeat(32),
  akPublic: '0001',
  akName: '000b' + 'bb'.repeat(32),
  ekCertificateSubject: 'CN=x',
  facts: testFacts('node-1'),
  nomadNode: null,
  secretSha256: 'cc'.repeat(32),
  createdAt: 1_700_000_000_000,
};

t.test('pending enrollments', async (t) => {
  const old = decodePendingEnrollment(json(pending), 'c1');
  t.equal(old.version, undefined, 'a record without version (the previous release) decodes');
  t.same(old.facts, pending.facts);
  t.equal(decodePendingEnrollment(json({ ...pending, version: 1 }), 'c1').nodeId, 'node-1');
  t.throws(() => decodePendingEnrollment(json({ ...pending, version: 2 }), 'c1'), { code: 'STORE_CORRUPT', details: { path: '/version' } });
  t.throws(() => decodePendingEnrollment(json({ ...pending, ekType: 'dsa' }), 'c1'), { code: 'STORE_CORRUPT', details: { path: '/ekType' } });
  t.throws(() => decodePendingEnrollment(json({ ...pending, createdAt: 'now' }), 'c1'), { code: 'STORE_CORRUPT', details: { path: '/createdAt' } });
  t.throws(() => decodePendingEnrollment(json({ ...pending, facts: { hostname: 1 } }), 'c1'), { code: 'STORE_CORRUPT', details: { path: '/facts' } });
  t.throws(() => decodePendingEnrollment(enc.encode('{"nodeId":'), 'c1'), { code: 'STORE_CORRUPT' }, 'broken JSON is coded, not a SyntaxError');
  t.throws(() => decodePendingEnrollment(new Uint8Array([0xc3, 0x28]), 'c1'), { code: 'STORE_CORRUPT' }, 'bytes that are not UTF-8');
});

t.test('leases', async (t) => {
  t.same(decodeLease(json({ holder: 'r1', expiresAt: 5 }), 'l'), { holder: 'r1', expiresAt: 5 }, 'without version');
  t.same(decodeLease(json({ version: 1, holder: 'r1', expiresAt: 5 }), 'l'), { version: 1, holder: 'r1', expiresAt: 5 });
  t.throws(() => decodeLease(json({ holder: 'r1', expiresAt: -1 }), 'l'), { code: 'STORE_CORRUPT', details: { path: '/expiresAt', source: 'bulwark_leases/l' } });
  t.throws(() => decodeLease(json({ holder: 7, expiresAt: 1 }), 'l'), { code: 'STORE_CORRUPT', details: { path: '/holder' } });
  t.throws(() => decodeLease(enc.encode('garbage'), 'l'), { code: 'STORE_CORRUPT' });
});

t.test('IMA replay state', async (t) => {
  const stored = { resetCount: 2, format: 'ascii', state: { entryCount: 10, byteOffset: 900, pcr10: { sha256: 'ab'.repeat(32) } } };
  const old = decodeStoredIma(json(stored), 'node-1');
  t.equal(old.format, 'ascii');
  t.equal(old.state.entryCount, 10);
  t.same([...old.state.pcr10.keys()], [TPM_ALG.SHA256], 'banks by algorithm');
  t.equal(decodeStoredIma(json({ ...stored, version: 1 }), 'node-1').resetCount, 2);
  t.throws(() => decodeStoredIma(json({ ...stored, format: 'xml' }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/format' } });
  t.throws(() => decodeStoredIma(json({ ...stored, state: { ...stored.state, entryCount: -1 } }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/state/entryCount' } });
  t.throws(() => decodeStoredIma(json({ ...stored, state: { ...stored.state, pcr10: { sha256: 'ab' } } }), 'node-1'), { code: 'IMA_STATE_INVALID' }, 'a PCR value of the wrong length');
  t.throws(() => decodeStoredIma(enc.encode('{'), 'node-1'), { code: 'STORE_CORRUPT' });
  const withKernel = decodeStoredIma(json({ ...stored, version: 1, kernelSelinux: { state: '696e697469616c697a65643d313b', policyHash: null } }), 'node-1');
  t.equal(Buffer.from(withKernel.kernelSelinux.state ?? []).toString(), 'initialized=1;', 'the kernel SELinux buffers kept with it');
  t.equal(withKernel.kernelSelinux.policyHash, null);
  t.same(old.kernelSelinux, { state: null, policyHash: null }, 'a state written before they were kept has none');
  t.throws(() => decodeStoredIma(json({ ...stored, kernelSelinux: { state: 'xyz', policyHash: null } }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/kernelSelinux/state' } });
});

t.test('baseline chains', async (t) => {
  const chain = {
    version: 1,
    resetCount: 3,
    bootId: 'boot-1',
    count: 2,
    pcr: 'ab'.repeat(32),
    latest: { sha256: 'cd'.repeat(32), bytes: Buffer.from('{}').toString('base64'), receivedAt: '2026-01-01T00:00:00.000Z' },
    judged: { at: '2026-01-01T00:00:00.000Z', baseline: { name: 'web', sha256: 'ef'.repeat(32) }, findings: [{ code: 'NFT_BASELINE_DRIFT', message: 'tcp 8080' }] },
    lastEnforcement: { at: '2026-01-01T00:00:00.000Z', bootId: 'boot-1', seq: 1, actions: [{ target: 'nftables', action: 'replaced table inet bulwark', changed: 'tcp 8080', ok: true }] },
  };
  t.same(decodeStoredBaseline(json(chain), 'node-1'), chain);
  t.same(decodeStoredBaseline(json({ ...chain, latest: null, lastEnforcement: null }), 'node-1').latest, null, 'before the first report');
  t.throws(() => decodeStoredBaseline(json({ ...chain, version: undefined }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/version' } }, 'a new kind of record has its version from the start');
  t.throws(() => decodeStoredBaseline(json({ ...chain, pcr: 'ab' }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/pcr', source: 'bulwark_baselines/node-1' } });
  t.throws(() => decodeStoredBaseline(json({ ...chain, count: -1 }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/count' } });
  t.throws(() => decodeStoredBaseline(json({ ...chain, latest: { ...chain.latest, bytes: 'not base64!' } }), 'node-1'), { code: 'STORE_CORRUPT', details: { path: '/latest/bytes' } });
  t.throws(
    () => decodeStoredBaseline(json({ ...chain, lastEnforcement: { ...chain.lastEnforcement, actions: [{ target: 'iptables', action: 'x', changed: 'y', ok: true }] } }), 'node-1'),
    { code: 'STORE_CORRUPT', details: { path: '/lastEnforcement/actions/0/target' } },
  );
  t.throws(() => decodeStoredBaseline(enc.encode('{"version":1,'), 'node-1'), { code: 'STORE_CORRUPT' });
});

t.test('policy envelopes', async (t) => {
  const env = { kind: 'runtime', name: 'p1', updatedAt: '2026-01-01T00:00:00.000Z', document: { any: ['thing'] } };
  t.same(decodeStoredPolicy(json(env), 'policy.runtime.p1'), env, 'without version');
  t.throws(() => decodeStoredPolicy(json({ ...env, kind: 'Runtime!' }), 'k'), { code: 'STORE_CORRUPT', details: { path: '/kind' } });
  t.throws(() => decodeStoredPolicy(json({ ...env, name: '../x' }), 'k'), { code: 'STORE_CORRUPT', details: { path: '/name' } });
  t.throws(() => decodeStoredPolicy(json({ kind: 'runtime', name: 'p1', updatedAt: 'x' }), 'k'), { code: 'STORE_CORRUPT', details: { path: '/document' } });
  t.throws(() => decodeStoredPolicy(enc.encode('not json'), 'k'), { code: 'STORE_CORRUPT' });
});

t.test('against nats-server: corrupt records fail closed, each with a warn line', async (t) => {
  const root = await makeTempDir('stored-records');
  const server = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
  const nc = await connect({ servers: server.url });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
    await removeDir(root);
  });
  const warnings: Array<Record<string, unknown>> = [];
  const log = recordingLogger((r) => {
    if (r.level === 'warn') warnings.push({ ...r.fields, msg: r.msg });
  });
  const store = await ControllerStore.open(nc, { log });

  // Nonces: one issued by this release, one as the previous release wrote it, one corrupt.
  await store.issueNonce('aa', 'node-1', 1000);
  t.same(await store.consumeNonce('aa', 'node-1', 1500, 30_000), { ok: true });
  const kvNonces = await nc.jetstream().views.kv('bulwark_nonces');
  await kvNonces.put('bb', json({ nodeId: 'node-1', issuedAt: 1000, usedAt: null }));
  t.same(await store.consumeNonce('bb', 'node-1', 1500, 30_000), { ok: true }, 'a nonce without version is accepted');
  await kvNonces.put('cc', enc.encode('{"nodeId": "node-1", "issuedAt": "soon"'));
  const corruptNonce = await store.consumeNonce('cc', 'node-1', 1500, 30_000);
  t.equal(corruptNonce.ok, false, 'a corrupt nonce is refused');
  t.ok(warnings.some((w) => w['node'] === 'node-1' && String(w['msg']).includes('nonce')), 'with a warn line');

  // Node records: a good one and a corrupt one; listing goes on, the corrupt one is a stand-in.
  const record: NodeRecord = {
    version: 1,
    nodeId: 'node-1',
    state: 'trusted',
    reasons: [],
    stateSince: '2026-01-01T00:00:00.000Z',
    enrolledAt: '2026-01-01T00:00:00.000Z',
    ekType: 'rsa',
    ekPublic: '00',
    ekCertificateSubject: 'CN=x',
    akPublic: '00',
    akName: '00',
    facts: null,
    factsDigest: '',
    lastEvidenceAt: null,
    lastVerdictAt: null,
    attestation: EMPTY_ATTESTATION,
    requiresReenrollment: false,
    reenrollApproved: false,
    nomadNode: null,
  };
  const seen: NodeRecord[] = [];
  const stopWatching = store.watchNodes((r) => seen.push(r));
  t.teardown(stopWatching);
  await store.putNode(record, 0);
  const kvNodes = await nc.jetstream().views.kv('bulwark_nodes');
  const corruptRevision = await kvNodes.put('node-2', enc.encode('\u0000garbage'));
  await kvNodes.put('node-3', new Uint8Array(0));
  const listed = await store.listNodes();
  t.same(
    listed.map((n) => [n.nodeId, n.state, n.reasons[0]?.code ?? '']),
    [
      ['node-1', 'trusted', ''],
      ['node-2', 'untrusted', 'STATE_CORRUPT'],
      ['node-3', 'untrusted', 'STATE_CORRUPT'],
    ],
    'a corrupt record, and an empty value, are listed as untrusted stand-ins',
  );
  await store.listNodes();
  t.equal(warnings.filter((w) => w['node'] === 'node-2').length, 1, 'a corrupt revision is reported once, not at every listing');
  await t.rejects(
    store.updateNode('node-2', () => ({ ...record, nodeId: 'node-2' })),
    { code: 'STORE_CORRUPT' },
    'a corrupt record is never overwritten by an update',
  );
  const watched = await waitFor('the watcher to see node-2', () => seen.find((r) => r.nodeId === 'node-2'), 10_000);
  t.equal(watched.state, 'untrusted', 'a watcher gets the untrusted stand-in (the Nomad gate closes)');
  await store.removeCorruptNode('node-2', corruptRevision);
  t.equal(await store.getNode('node-2'), null, "an operator's approval removes it");

  // Leases: a corrupt lease names no holder to wait for and is taken over.
  const kvLeases = await nc.jetstream().views.kv('bulwark_leases');
  await kvLeases.put('sched', enc.encode('[1,2,3]'));
  const lease = new KvLease(store.leases, 'sched', 'replica-1', 5000, log);
  t.equal(await lease.tryAcquire(), true, 'a corrupt lease is taken over');
  t.ok(warnings.some((w) => w['lease'] === 'sched' && w['path'] === '/'), 'with a warn line naming the lease and path');
  const other = new KvLease(store.leases, 'sched', 'replica-2', 5000, log);
  t.equal(await other.tryAcquire(), false, 'and then held like any lease');
});
