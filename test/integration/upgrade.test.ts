/**
 * Upgrades with the real bulwark-controller process and its NATS (TLS, nkey): a store as
 * 0.1.0 left it (node records and leases without `version`, no data-format marker) is
 * migrated at start and the node is still listed; then a record written by a newer
 * Bulwark (version 2) makes the controller refuse to start (exit 3, STORE_VERSION_NEWER
 * naming the bucket and key) without changing a byte of the store.
 */
import t from 'tap';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, StorageType, type NatsConnection } from 'nats';
import { startEmbeddedNats } from '../../controller/nats-auth/index.js';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { DATA_FORMAT, FORMAT_KEY, META_BUCKET } from '../../controller/upgrade/index.js';
import { bucketKeys } from '../../controller/state/index.js';
import { decodeNodeRecord } from '../../lib/attestation/index.js';
import { ControllerClient } from '../../proto/grpc.js';
import { adminTlsFor, CONTROLLER_MAIN, ControllerProcess } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { oldNodeRecord } from '../helpers/old-records.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

const OLD_NODE = oldNodeRecord('old-node', 'untrusted');

const root = await makeTempDir('upgrade');
const nats = await startEmbeddedNats({ dataDir: join(root, 'nats'), port: 0 });
const nc = await connect({ servers: nats.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: nats.seedFile }, caFile: nats.caFile })) });
t.teardown(async () => {
  await nc.close();
  await nats.stop();
  await removeDir(root);
});

const configPath = join(root, 'controller.json');
await writeFile(
  configPath,
  JSON.stringify({
    dataDir: join(root, 'controller'),
    natsUrl: nats.url,
    natsCaFile: nats.caFile,
    natsNkeySeedFile: nats.seedFile,
    grpcListen: '127.0.0.1:0',
    ekCaDir: join(root, 'no-ek-ca'),
    ekAllowList: ['aa'.repeat(32)],
  }),
);

/** Every bucket's keys with their bytes and revisions. */
async function storeSnapshot(conn: NatsConnection): Promise<Record<string, string>> {
  const jsm = await conn.jetstreamManager();
  const out: Record<string, string> = {};
  for await (const name of jsm.streams.names()) {
    if (!name.startsWith('KV_')) continue;
    const bucket = name.slice(3);
    const kv = await conn.jetstream().views.kv(bucket, { bindOnly: true });
    for (const key of await bucketKeys(jsm, bucket)) {
      const e = await kv.get(key);
      out[`${bucket}/${key}`] = e === null ? 'none' : `${e.revision} ${e.operation} ${dec.decode(e.value)}`;
    }
  }
  return out;
}

t.test('a 0.1.0 store is migrated at start and its node still listed', async (t) => {
  const nodes = await nc.jetstream().views.kv('bulwark_nodes', { history: 5, storage: StorageType.File });
  await nodes.put('old-node', enc.encode(JSON.stringify(OLD_NODE)));
  const leases = await nc.jetstream().views.kv('bulwark_leases', { history: 1, storage: StorageType.File });
  await leases.put('old-lease', enc.encode(JSON.stringify({ holder: 'gone', expiresAt: 1 })));

  const controller = await ControllerProcess.start(configPath);
  t.teardown(() => controller.kill('SIGTERM'));
  const stored = await nodes.get('old-node');
  t.match(JSON.parse(dec.decode(stored?.value)), { version: 1, nodeId: 'old-node' }, 'the node record carries its version');
  t.same(decodeNodeRecord(stored?.value ?? new Uint8Array(), 'old-node'), { version: 1, ...OLD_NODE }, 'and is otherwise the same');
  t.match(JSON.parse(dec.decode((await leases.get('old-lease'))?.value)), { version: 1, holder: 'gone' });
  const marker = await (await nc.jetstream().views.kv(META_BUCKET, { bindOnly: true })).get(FORMAT_KEY);
  t.match(JSON.parse(dec.decode(marker?.value)), { dataFormat: DATA_FORMAT, writtenBy: /^bulwark-controller / });
  const client = new ControllerClient(controller.grpcAddress, { tls: adminTlsFor(join(root, 'controller')) });
  t.teardown(() => client.close());
  const listed = await client.listNodes();
  t.match(listed.find((n) => n.nodeId === 'old-node'), { nodeId: 'old-node', state: 'untrusted' }, 'the migrated node is served');
  await controller.kill('SIGTERM');
});

t.test('a record from a newer Bulwark: the controller refuses to start and writes nothing', async (t) => {
  const nodes = await nc.jetstream().views.kv('bulwark_nodes', { bindOnly: true });
  await nodes.put('future-node', enc.encode(JSON.stringify({ ...OLD_NODE, nodeId: 'future-node', version: 2, newField: 'x' })));
  const before = await storeSnapshot(nc);
  // The timeout only ends a controller that (wrongly) started; the assertions say what went wrong.
  const r = await execa(process.execPath, [CONTROLLER_MAIN, '--config', configPath], { reject: false, env: { BULWARK_CONTROLLER_CONFIG: '' }, timeout: 120_000 });
  t.equal(r.exitCode, 3, 'exit 3: newer data (the unit does not restart on it)');
  const output = `${r.stdout}\n${r.stderr}`;
  t.match(output, /"code":"STORE_VERSION_NEWER"/, 'a typed error');
  t.match(output, 'bulwark_nodes/future-node holds record version 2, newer than this controller reads (1)', 'naming the bucket, key and versions');
  t.notMatch(output, /"ready":true/, 'it never became ready');
  t.same(await storeSnapshot(nc), before, 'every record, the newer one included, is byte for byte as it was');
});
