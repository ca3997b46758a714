/**
 * controller/audit against a real nats-server, without a controller: the checkpoint
 * signer (PEM file, default key, refusals), two replicas signing the same stream (one
 * checkpoint per size, both consistent), and a tree that does not extend the stored
 * checkpoint (a stream written again from scratch) refused at open.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { AuditLog, CHECKPOINTS_BUCKET, DEFAULT_CHECKPOINT_KEY_FILE, keyObjectCheckpointSigner, loadCheckpointSigner, pemFileCheckpointSigner, type CheckpointSigner } from '../../controller/audit/index.js';
import { startEmbeddedNats } from '../../controller/nats-auth/index.js';
import { AUDIT_STREAM, AdminAudit, ControllerStore, KvLease } from '../../controller/state/index.js';
import { natsClientAuthOptions, silentLogger } from '../../daemon/index.js';
import { parseCheckpointText, parseSignedNote, verifyCheckpoint } from '../../lib/merkle/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const root = await makeTempDir('audit-log-unit');
const server = await startEmbeddedNats({ dataDir: join(root, 'nats'), port: 0 });
const connectAdmin = async (): Promise<NatsConnection> =>
  connect({ servers: server.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: server.seedFile }, caFile: server.caFile })) });
const nc = await connectAdmin();
const store = await ControllerStore.open(nc);
const audit = new AdminAudit(nc.jetstream());
t.teardown(async () => {
  await nc.close();
  await server.stop();
  await removeDir(root);
});

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = keyObjectCheckpointSigner('test-key', privateKey);

function openLog(holder: string, s: CheckpointSigner = signer, conn: NatsConnection = nc): Promise<AuditLog> {
  return AuditLog.open({ nc: conn, origin: 'bulwark.unit/audit', signer: s, lease: new KvLease(store.leases, `audit-${holder}`, holder, 60_000), intervalMs: 3_600_000, records: 1_000_000, holder, log: silentLogger() });
}

t.test('checkpoint signers: a PEM file, the default key (0600, once), refusals', async (t) => {
  const pem = join(root, 'key.pem');
  await writeFile(pem, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const fromFile = await pemFileCheckpointSigner(pem);
  t.ok(fromFile.publicKey.equals(signer.publicKey));
  await t.rejects(pemFileCheckpointSigner(join(root, 'missing.pem')), { code: 'AUDIT_SIGNER_FAILED' });
  const notKey = join(root, 'not-a-key.pem');
  await writeFile(notKey, 'hello');
  await t.rejects(pemFileCheckpointSigner(notKey), { code: 'AUDIT_SIGNER_FAILED' });
  const rsa = join(root, 'rsa.pem');
  await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await t.rejects(pemFileCheckpointSigner(rsa), { code: 'AUDIT_SIGNER_FAILED' }, 'RSA cannot sign notes');

  const dataDir = await makeTempDir('audit-key');
  const first = await loadCheckpointSigner(null, dataDir, silentLogger());
  t.equal((await stat(join(dataDir, DEFAULT_CHECKPOINT_KEY_FILE))).mode & 0o777, 0o600);
  t.equal(first.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const again = await loadCheckpointSigner(null, dataDir, silentLogger());
  t.ok(again.publicKey.equals(first.publicKey), 'the key is created once and read back');
  await t.rejects(loadCheckpointSigner(null, join(dataDir, 'no', 'such', 'dir'), silentLogger()), { code: 'AUDIT_SIGNER_FAILED' }, 'fails closed when the key cannot be created');
  await removeDir(dataDir);
});

t.test('two replicas on one stream: one checkpoint per size, each consistent with the last', async (t) => {
  for (let i = 0; i < 5; i++) await audit.record('policy.assign', `measured-boot/a${i}`, { target: `g${i}` });
  const nc2 = await connectAdmin();
  const a = await openLog('a');
  const b = await openLog('b', signer, nc2);
  t.teardown(async () => {
    await a.close();
    await b.close();
    await nc2.close();
  });
  t.equal(a.size, 5);
  t.equal(b.size, 5);
  // Both sign at once (each holds its own lease here, to force the race the KV must settle).
  const results = await Promise.allSettled([a.signCheckpoint(), b.signCheckpoint()]);
  const stored = results.flatMap((r) => (r.status === 'fulfilled' && r.value !== null ? [r.value] : []));
  t.equal(stored.length, 1, 'exactly one checkpoint of size 5 is stored');
  const kv = await nc.jetstream().views.kv(CHECKPOINTS_BUCKET);
  const entry = await kv.get('size.5');
  t.ok(entry !== null);
  for (let i = 5; i < 8; i++) await audit.record('policy.assign', `measured-boot/a${i}`, { target: `g${i}` });
  await a.whenSize(8);
  await b.whenSize(8);
  const next = await b.signCheckpoint();
  t.equal(next?.size, 8);
  t.equal(await a.signCheckpoint(), null, 'a replica does not sign a size already signed');
  const { checkpoint } = verifyCheckpoint(next?.note ?? '', [a.verifier], 'bulwark.unit/audit');
  t.equal(checkpoint.size, 8);
  t.equal(a.problem, null);
  t.equal(b.problem, null);
});

t.test('a stream written again from scratch: the rebuilt tree does not extend the stored checkpoint', async (t) => {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(AUDIT_STREAM);
  await jsm.streams.delete(AUDIT_STREAM);
  await jsm.streams.add(info.config);
  for (let i = 0; i < 9; i++) await audit.record('policy.assign', `measured-boot/other${i}`, { target: `g${i}` });
  const log = await openLog('c');
  t.teardown(() => log.close());
  t.equal(log.problem?.code, 'AUDIT_LOG_REWRITTEN');
  t.match(log.problem?.message ?? '', /rewritten/);
  await t.rejects(log.signCheckpoint(), { code: 'AUDIT_LOG_REWRITTEN' }, 'and refuses to sign');
  const state = await log.state();
  t.equal(parseCheckpointText(parseSignedNote(state.checkpoint?.note ?? '').text).size, 8, 'the last signed checkpoint stays');

  // Another key is not this log's: its stored checkpoints are not trusted.
  const other = keyObjectCheckpointSigner('other', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const foreign = await openLog('d', other);
  t.teardown(() => foreign.close());
  t.equal(foreign.problem?.code, 'NOTE_UNTRUSTED');
});
