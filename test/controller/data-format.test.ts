/**
 * The stored state's data format (controller/upgrade), against a real nats-server: records
 * written as 0.1.0 wrote them (no `version`, no marker) are rewritten as version 1 and the
 * marker set; a second start changes nothing; a record or a marker newer than this code
 * reads refuses the start with STORE_VERSION_NEWER naming the bucket, key and versions,
 * and not one byte is written.
 */
import t from 'tap';
import { join } from 'node:path';
import { connect, StorageType, type KV, type NatsConnection } from 'nats';
import { NatsServerProcess } from '../../controller/state/embedded-nats.js';
import { decodeNodeRecord } from '../../lib/attestation/node-record.js';
import { decodeLease } from '../../controller/state/lease.js';
import { decodeStoredIma } from '../../controller/appraisers/ima-appraiser.js';
import { DATA_FORMAT, FORMAT_KEY, META_BUCKET, prepareDataFormat } from '../../controller/upgrade/data-format.js';
import { bucketKeys } from '../../controller/state/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { oldNodeRecord } from '../helpers/old-records.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

/** A node record as 0.1.0 wrote it: no `version`. */
const OLD_NODE = oldNodeRecord('node-1', 'trusted');
const OLD_LEASE = { holder: 'replica-a', expiresAt: 1_700_000_000_000 };
const OLD_IMA = { resetCount: 2, format: 'ascii', state: { entryCount: 10, byteOffset: 900, pcr10: { sha256: 'ab'.repeat(32) } } };
const OLD_NONCE = { nodeId: 'node-1', issuedAt: 1, usedAt: null };

interface Bed {
  readonly nc: NatsConnection;
  bucket(name: string): Promise<KV>;
  close(): Promise<void>;
}

async function openBed(name: string): Promise<Bed> {
  const root = await makeTempDir(name);
  const server = await NatsServerProcess.start({ storeDir: join(root, 'nats') });
  const nc = await connect({ servers: server.url });
  return {
    nc,
    bucket: (b) => nc.jetstream().views.kv(b, { history: 5, storage: StorageType.File }),
    async close() {
      await nc.close();
      await server.stop();
      await removeDir(root);
    },
  };
}

/** Every key's bytes and revision in `kv`. */
async function snapshot(nc: NatsConnection, bucket: string): Promise<Record<string, { text: string; revision: number }>> {
  const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true });
  const out: Record<string, { text: string; revision: number }> = {};
  for (const key of await bucketKeys(await nc.jetstreamManager(), bucket)) {
    const e = await kv.get(key);
    if (e !== null) out[key] = { text: dec.decode(e.value), revision: e.revision };
  }
  return out;
}

async function metaBucketExists(nc: NatsConnection): Promise<boolean> {
  const jsm = await nc.jetstreamManager();
  return jsm.streams.info(`KV_${META_BUCKET}`).then(() => true, () => false);
}

t.test('an empty store gets the marker', async (t) => {
  const bed = await openBed('format-empty');
  t.teardown(() => bed.close());
  const report = await prepareDataFormat(bed.nc, { writtenBy: 'test' });
  t.same(report, { from: null, to: DATA_FORMAT, migrated: {} });
  const marker = await (await bed.bucket(META_BUCKET)).get(FORMAT_KEY);
  t.match(JSON.parse(dec.decode(marker?.value)), { dataFormat: DATA_FORMAT, writtenBy: 'test' });
});

t.test('0.1.0 records (no version, no marker) are migrated to version 1', async (t) => {
  const bed = await openBed('format-migrate');
  t.teardown(() => bed.close());
  const nodes = await bed.bucket('bulwark_nodes');
  await nodes.put('node-1', json(OLD_NODE));
  await nodes.put('node-2', json({ ...OLD_NODE, nodeId: 'node-2', state: 'untrusted' }));
  await nodes.put('node-3', json({ ...OLD_NODE, nodeId: 'node-3', version: 1 }));
  await nodes.put('broken', enc.encode('{"nodeId": "broken", "state": 7}'));
  const leases = await bed.bucket('bulwark_leases');
  await leases.put('verifier', json(OLD_LEASE));
  const ima = await bed.bucket('bulwark_ima');
  await ima.put('node-1', json(OLD_IMA));
  const nonces = await bed.bucket('bulwark_nonces');
  await nonces.put('aa', json(OLD_NONCE));
  const before = { nodes: await snapshot(bed.nc, 'bulwark_nodes'), nonces: await snapshot(bed.nc, 'bulwark_nonces') };

  const report = await prepareDataFormat(bed.nc, { writtenBy: 'bulwark-controller 0.2.0' });
  t.same(report, { from: 1, to: DATA_FORMAT, migrated: { bulwark_nodes: 2, bulwark_leases: 1, bulwark_ima: 1 } });
  const after = await snapshot(bed.nc, 'bulwark_nodes');
  for (const id of ['node-1', 'node-2']) {
    const stored: unknown = JSON.parse(after[id]?.text ?? '');
    t.match(stored, { version: 1, nodeId: id }, `${id} carries its version`);
    t.same(decodeNodeRecord(enc.encode(after[id]?.text ?? ''), id), { ...decodeNodeRecord(enc.encode(before.nodes[id]?.text ?? ''), id), version: 1 }, `${id}: the same record otherwise`);
  }
  t.same(after['node-3'], before.nodes['node-3'], 'a record with its version is not rewritten');
  t.same(after['broken'], before.nodes['broken'], 'a corrupt record is left for its reader, not blessed with a version');
  t.same(decodeLease((await leases.get('verifier'))?.value ?? new Uint8Array(), 'verifier'), { version: 1, ...OLD_LEASE });
  t.match(JSON.parse(dec.decode((await ima.get('node-1'))?.value)), { version: 1, ...OLD_IMA });
  t.equal(decodeStoredIma((await ima.get('node-1'))?.value ?? new Uint8Array(), 'node-1').state.entryCount, 10);
  t.same(await snapshot(bed.nc, 'bulwark_nonces'), before.nonces, 'nonces expire within the hour: left as they are');
  const marker = await (await bed.bucket(META_BUCKET)).get(FORMAT_KEY);
  t.match(JSON.parse(dec.decode(marker?.value)), { dataFormat: DATA_FORMAT, writtenBy: 'bulwark-controller 0.2.0' });

  const again = await prepareDataFormat(bed.nc, { writtenBy: 'bulwark-controller 0.2.0' });
  t.same(again, { from: DATA_FORMAT, to: DATA_FORMAT, migrated: {} }, 'a second start finds the current format');
  t.same(await snapshot(bed.nc, 'bulwark_nodes'), after, 'and writes nothing');
  t.equal((await (await bed.bucket(META_BUCKET)).get(FORMAT_KEY))?.revision, marker?.revision, 'not even the marker');
});

t.test('a record newer than this code reads: refused, nothing written', async (t) => {
  const bed = await openBed('format-newer-record');
  t.teardown(() => bed.close());
  const nodes = await bed.bucket('bulwark_nodes');
  await nodes.put('node-1', json(OLD_NODE));
  await nodes.put('node-9', json({ ...OLD_NODE, nodeId: 'node-9', version: 2, somethingNew: true }));
  const leases = await bed.bucket('bulwark_leases');
  await leases.put('verifier', json(OLD_LEASE));
  const before = { nodes: await snapshot(bed.nc, 'bulwark_nodes'), leases: await snapshot(bed.nc, 'bulwark_leases') };
  await t.rejects(prepareDataFormat(bed.nc, { writtenBy: 'test' }), {
    code: 'STORE_VERSION_NEWER',
    message: /^bulwark_nodes\/node-9 holds record version 2, newer than this controller reads \(1\)/,
    details: { bucket: 'bulwark_nodes', key: 'node-9', version: 2, supported: 1 },
  });
  t.same(await snapshot(bed.nc, 'bulwark_nodes'), before.nodes, 'the newer record and the old one are byte for byte as they were');
  t.same(await snapshot(bed.nc, 'bulwark_leases'), before.leases, 'no migration of another bucket either');
  t.notOk(await metaBucketExists(bed.nc), 'no marker written');
});

t.test('a marker newer than this code reads (a downgrade): refused, nothing written', async (t) => {
  const bed = await openBed('format-newer-marker');
  t.teardown(() => bed.close());
  const meta = await bed.bucket(META_BUCKET);
  await meta.put(FORMAT_KEY, json({ dataFormat: DATA_FORMAT + 1, writtenBy: 'bulwark-controller 9.0.0', future: { x: 1 } }));
  const nodes = await bed.bucket('bulwark_nodes');
  await nodes.put('node-1', json(OLD_NODE));
  const before = { meta: await snapshot(bed.nc, META_BUCKET), nodes: await snapshot(bed.nc, 'bulwark_nodes') };
  await t.rejects(prepareDataFormat(bed.nc, { writtenBy: 'test' }), {
    code: 'STORE_VERSION_NEWER',
    message: new RegExp(`^bulwark_meta/format holds data format ${DATA_FORMAT + 1}, newer than this controller reads \\(${DATA_FORMAT}\\)`),
    details: { bucket: META_BUCKET, key: FORMAT_KEY, version: DATA_FORMAT + 1, supported: DATA_FORMAT },
  });
  t.same(await snapshot(bed.nc, META_BUCKET), before.meta);
  t.same(await snapshot(bed.nc, 'bulwark_nodes'), before.nodes, 'the old record is not migrated');
  await meta.put(FORMAT_KEY, enc.encode('{"dataFormat": "two"}'));
  await t.rejects(prepareDataFormat(bed.nc, { writtenBy: 'test' }), { code: 'STORE_CORRUPT', details: { path: '/dataFormat' } }, 'a marker that is not one is not overwritten');
});
