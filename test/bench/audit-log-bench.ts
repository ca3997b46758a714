/**
 * The audit log through the controller's path, against a real nats-server (TLS, nkey):
 * µs per admin audit record published and appended to the Merkle tree (the AuditLog
 * following the stream), against publishing alone; the rebuild at start (µs per record
 * read back from the stream and hashed); and the time to sign a checkpoint (stream check,
 * KV reads, note signing, two revision-checked KV writes) against signing the note alone.
 *
 *   npx tsc -p . && node dist/test/bench/audit-log-bench.js
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { AuditLog, keyObjectCheckpointSigner, noteKeysOf } from '../../controller/audit/index.js';
import { startEmbeddedNats } from '../../controller/nats-auth/index.js';
import { AdminAudit, ControllerStore, KvLease } from '../../controller/state/index.js';
import { natsClientAuthOptions } from '../../daemon/index.js';
import { formatCheckpointText, signNote } from '../../lib/merkle/index.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { printResults, type BenchResult } from './result.js';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export async function benchAuditLog(opts: { records?: number; checkpoints?: number } = {}): Promise<BenchResult[]> {
  const records = opts.records ?? 2000;
  const checkpoints = opts.checkpoints ?? 30;
  const root = await makeTempDir('audit-log-bench');
  const server = await startEmbeddedNats({ dataDir: join(root, 'nats'), port: 0 });
  const nc = await connect({ servers: server.url, ...(await natsClientAuthOptions({ credentials: { kind: 'nkey', seedFile: server.seedFile }, caFile: server.caFile })) });
  let log: AuditLog | null = null;
  try {
    const store = await ControllerStore.open(nc);
    const audit = new AdminAudit(nc.jetstream());
    const publish = (i: number): Promise<number> => audit.record('policy.assign', `measured-boot/bench-${i}`, { kind: 'measured-boot', name: 'bench', target: `group g${i}` });

    // Publishing alone (no tree follows the stream yet).
    let start = performance.now();
    for (let i = 0; i < records; i++) await publish(i);
    const publishUs = ((performance.now() - start) * 1000) / records;

    // The rebuild at start: every record read back and hashed.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = keyObjectCheckpointSigner('bench-key.pem', privateKey);
    start = performance.now();
    log = await AuditLog.open({
      nc,
      origin: 'bulwark.bench/audit',
      signer,
      lease: new KvLease(store.leases, 'audit-checkpoint', 'bench', 60_000),
      // Count and interval out of reach: checkpoints are signed below, one at a time.
      intervalMs: 3_600_000,
      records: 1_000_000,
      holder: 'bench',
    });
    const rebuildUs = ((performance.now() - start) * 1000) / records;

    // Publishing with the tree following: each record waited for until it is a leaf.
    start = performance.now();
    for (let i = 0; i < records; i++) {
      await publish(records + i);
      await log.whenSize(records + i + 1);
    }
    const appendUs = ((performance.now() - start) * 1000) / records;

    // Checkpoint signing through the controller path (lease held), one per new record.
    const lease = new KvLease(store.leases, 'audit-checkpoint', 'bench', 60_000);
    await lease.tryAcquire();
    const signMs: number[] = [];
    for (let i = 0; i < checkpoints; i++) {
      await publish(2 * records + i);
      await log.whenSize(2 * records + i + 1);
      const t0 = performance.now();
      if ((await log.signCheckpoint()) === null) throw new Error('no checkpoint signed');
      signMs.push(performance.now() - t0);
    }
    const { noteSigner } = noteKeysOf('bulwark.bench/audit', signer);
    const text = formatCheckpointText({ origin: 'bulwark.bench/audit', size: log.size, rootHash: new Uint8Array(32), extensions: [] });
    const noteMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await signNote(text, [noteSigner]);
      noteMs.push(performance.now() - t0);
    }
    const signed = median(signMs);
    const note = median(noteMs);
    return [
      { name: 'publish + tree append, per record', value: appendUs, unit: 'µs', baseline: { name: 'publish alone', value: publishUs }, ratio: appendUs / publishUs },
      { name: `rebuild at start (${records} records), per record`, value: rebuildUs, unit: 'µs' },
      { name: 'checkpoint signed and stored (ECDSA P-256, median)', value: signed * 1000, unit: 'µs', baseline: { name: 'note signing alone', value: note * 1000 }, ratio: signed / note },
    ];
  } finally {
    await log?.close();
    await nc.close();
    await server.stop();
    await removeDir(root);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printResults(await benchAuditLog());
