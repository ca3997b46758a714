/**
 * Audit checkpoints signed on a PKCS#11 token (SoftHSM2 in a temp dir): the configured
 * pkcs11: URI is loaded as the checkpoint signer, ECDSA P-256 and P-384 keys sign C2SP
 * type 0x02 notes (SHA-256 digest signed on the token, DER) that lib/merkle verifies with
 * the token's public key; a wrong PIN or an RSA key fails the start (typed, no PIN in it).
 */
import t from 'tap';
import { join } from 'node:path';
import { connect } from 'nats';
import { AuditLog, CHECKPOINTS_BUCKET, loadCheckpointSigner } from '../../controller/audit/index.js';
import { startEmbeddedNats } from '../../controller/nats-auth/index.js';
import { AdminAudit, ControllerStore, KvLease } from '../../controller/state/index.js';
import { Hsm, natsClientAuthOptions, silentLogger } from '../../daemon/index.js';
import { BulwarkError } from '../../lib/index.js';
import { noteVerifierFromKey, verifyCheckpoint } from '../../lib/merkle/index.js';
import { SOFTHSM_MODULE, startSoftHsm } from '../helpers/softhsm.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';

const PIN = '246810';
const soft = await startSoftHsm('audit-hsm');
await soft.initToken('audit', PIN);
const hsm = await Hsm.open('pkcs11:token=audit', { env: { BULWARK_PKCS11_MODULE: SOFTHSM_MODULE, BULWARK_PKCS11_PIN: PIN } });
await hsm.keygen({ label: 'cp-p256', type: 'ec-p256' });
await hsm.keygen({ label: 'cp-p384', type: 'ec-p384' });
await hsm.keygen({ label: 'cp-rsa', type: 'rsa-2048' });
await hsm.close();

const root = await makeTempDir('audit-hsm');
const server = await startEmbeddedNats({ dataDir: join(root, 'nats'), port: 0 });
const nc = await connect({ servers: server.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: server.seedFile }, caFile: server.caFile })) });
const store = await ControllerStore.open(nc);
const audit = new AdminAudit(nc.jetstream());
for (let i = 0; i < 3; i++) await audit.record('policy.assign', `measured-boot/h${i}`, { target: `g${i}` });
t.teardown(async () => {
  await nc.close();
  await server.stop();
  await removeDir(root);
  await soft.cleanup();
});

const uri = (label: string, pin = PIN): string => `pkcs11:token=audit;object=${label};type=private?module-path=${SOFTHSM_MODULE}&pin-value=${pin}`;

for (const label of ['cp-p256', 'cp-p384']) {
  t.test(`${label}: checkpoints signed on the token verify with its public key`, async (t) => {
    const signer = await loadCheckpointSigner(uri(label), root, silentLogger());
    t.notMatch(signer.name, PIN, 'the signer name carries no PIN');
    const origin = `bulwark.${label}/audit`;
    // Each key starts a log of its own: the checkpoints of the other key would not be trusted.
    await (await nc.jetstreamManager()).streams.delete(`KV_${CHECKPOINTS_BUCKET}`).catch(() => false);
    const log = await AuditLog.open({ nc, origin, signer, lease: new KvLease(store.leases, `audit-${label}`, label, 60_000), intervalMs: 3_600_000, records: 1_000_000, holder: label });
    t.teardown(() => log.close());
    const stored = await log.signCheckpoint();
    t.equal(stored?.size, 3);
    const { checkpoint } = verifyCheckpoint(stored?.note ?? '', [noteVerifierFromKey(origin, signer.publicKey)], origin);
    t.equal(checkpoint.size, 3);
  });
}

t.test('a wrong PIN or an RSA key fails the start, typed', async (t) => {
  const wrong = await loadCheckpointSigner(uri('cp-p256', '999999'), root, silentLogger()).then(() => null, (err: unknown) => err);
  t.ok(wrong instanceof BulwarkError);
  t.equal(wrong instanceof BulwarkError ? wrong.code : '', 'PKCS11_PIN_INCORRECT');
  t.notMatch(wrong instanceof Error ? wrong.message : '', '999999', 'the PIN is not in the error');
  await t.rejects(loadCheckpointSigner(uri('cp-rsa'), root, silentLogger()), { code: 'AUDIT_SIGNER_FAILED' });
});
