/**
 * Every stream and bucket the controller opens has its size and age limits, and the audit
 * stream refuses deletes and purges (real nats-server).
 */
import t from 'tap';
import { connect, nanos } from 'nats';
import { join } from 'node:path';
import { STREAM_LIMITS } from '../../controller/state/limits.js';
import { AUDIT_STREAM, BUCKETS, ControllerStore } from '../../controller/state/store.js';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { PolicyStore } from '../../controller/policies/policy-store.js';
import { KeySetStore } from '../../controller/policies/keyset-store.js';
import { EkBindings } from '../../controller/registrar/ek-bindings.js';
import { RevocationStore } from '../../controller/pki/revocation-store.js';
import { generateKeyPairSync } from 'node:crypto';
import { AuditLog, keyObjectCheckpointSigner } from '../../controller/audit/index.js';
import { KvLease } from '../../controller/state/lease.js';
import { openStateBed } from './state-bed.js';

t.test('limits on every stream; the audit stream is append-only', async (t) => {
  const bed = await openStateBed('stream-limits');
  t.teardown(() => bed.close());
  await PolicyStore.open(bed.nc.jetstream());
  await KeySetStore.open(bed.nc.jetstream(), null);
  await EkBindings.open(bed.nc.jetstream());
  const revocations = await RevocationStore.open(bed.nc);
  t.teardown(() => revocations.close());
  const auditLog = await AuditLog.open({
    nc: bed.nc,
    origin: 'bulwark.limits/audit',
    signer: keyObjectCheckpointSigner('limits', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
    lease: new KvLease(bed.store.leases, 'audit-checkpoint', 'limits', 60_000),
    intervalMs: 3_600_000,
    records: 1_000_000,
    holder: 'limits',
  });
  t.teardown(() => auditLog.close());
  await bed.store.appendAudit({ nodeId: 'node-a', previous: 'unknown', state: 'enrolled', reasons: [], at: new Date(0).toISOString(), sequence: 0 });
  const jsm = await bed.nc.jetstreamManager();
  for (const [name, limits] of Object.entries(STREAM_LIMITS)) {
    if (name.startsWith('bulwark_eventlogs') || name.startsWith('bulwark_ima') || name.startsWith('bulwark_baselines')) continue; // opened by the appraisers
    const stream = name === AUDIT_STREAM ? name : `KV_${name}`;
    const info = await jsm.streams.info(stream);
    t.equal(info.config.max_bytes, limits.maxBytes, `${stream} max_bytes`);
    t.equal(info.config.max_age, nanos(limits.maxAgeMs), `${stream} max_age`);
  }
  const audit = await jsm.streams.info(AUDIT_STREAM);
  t.equal(audit.config.deny_delete, true);
  t.equal(audit.config.deny_purge, true);
  await t.rejects(jsm.streams.purge(AUDIT_STREAM), 'purge refused');
  await t.rejects(jsm.streams.deleteMessage(AUDIT_STREAM, 1), 'message delete refused');
  t.equal((await jsm.streams.info(AUDIT_STREAM)).state.messages, 1, 'the audit entry is still there');
});

t.test('streams created by an older release without limits get them on open', async (t) => {
  const root = await makeTempDir('stream-limits-upgrade');
  const server = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
  t.teardown(async () => {
    await server.stop();
    await removeDir(root);
  });
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const jsm = await nc.jetstreamManager();
  // As the previous release created them: no size or age limit, deletes and purges allowed.
  await nc.jetstream().views.kv(BUCKETS.nodes, { history: 5 });
  await jsm.streams.add({ name: AUDIT_STREAM, subjects: ['bulwark.v1.audit.>'] });
  await ControllerStore.open(nc);
  const nodes = await jsm.streams.info(`KV_${BUCKETS.nodes}`);
  t.equal(nodes.config.max_bytes, STREAM_LIMITS.bulwark_nodes.maxBytes);
  t.equal(nodes.config.max_age, nanos(STREAM_LIMITS.bulwark_nodes.maxAgeMs));
  const audit = await jsm.streams.info(AUDIT_STREAM);
  t.equal(audit.config.max_bytes, STREAM_LIMITS.BULWARK_AUDIT.maxBytes);
  t.equal(audit.config.deny_delete, true);
  t.equal(audit.config.deny_purge, true);
  await t.rejects(jsm.streams.purge(AUDIT_STREAM), 'purge refused after the upgrade');
});
