/**
 * The audit log no one can rewrite, against a real nats-server and controller: records of
 * real admin actions are leaves of the Merkle tree; `audit export` + offline `audit verify`
 * pass; a controller restart continues the tree and its next checkpoint is consistent with
 * the previous one (checked with lib/merkle); a record edited directly in the stream (admin
 * NATS connection: nats-server refuses to lift deny_delete, so the stream is deleted and
 * published again with one record changed) makes `audit verify` of a fresh
 * export fail naming it, and the controller refuses to sign from then on, also after a
 * restart; a record deleted, and two records swapped, the same way are named too. Count-based checkpoints (one per record): every wait is on a checkpoint size.
 */
import t from 'tap';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_STREAM } from '../../controller/state/index.js';
import { DEFAULT_CHECKPOINT_KEY_FILE } from '../../controller/audit/index.js';
import { decodeBase64Strict, parseAuditBundle, parseCheckpointText, parseSignedNote, verifyConsistency } from '../../lib/merkle/index.js';
import { TestFleet } from '../helpers/fleet.js';
import { makeTempDir, removeDir } from '../helpers/swtpm.js';
import { waitFor } from '../helpers/wait.js';

const root = await makeTempDir('audit-log');
const fleet = await TestFleet.create({ root, controller: { auditCheckpointRecords: 1, auditCheckpointIntervalMs: 3_600_000, auditLogName: 'test-fleet' } });
await fleet.startController();
t.teardown(async () => {
  await fleet.stop();
  await removeDir(root);
});

const ORIGIN = 'bulwark.test-fleet/audit';
const keyPath = join(root, 'audit-pub.pem');
let groups = 0;

/** One real admin action (a policy assignment): one audit record. */
async function adminAction(): Promise<void> {
  const r = await fleet.ctl(['policy', 'assign', 'measured-boot', 'test-accept-all', '--group', `g${++groups}`]);
  if (r.code !== 0) throw new Error(`policy assign failed: ${r.err}`);
}

/** Messages in the audit stream now. */
async function streamMessages(): Promise<number> {
  const nc = await fleet.natsConnection();
  try {
    return (await (await nc.jetstreamManager()).streams.info(AUDIT_STREAM)).state.messages;
  } finally {
    await nc.close();
  }
}

/** The latest checkpoint as the controller reports it. */
async function checkpointNow(): Promise<{ note: string; size: number; rootHash: Uint8Array; errorCode: string; errorMessage: string; publicKeyPem: string }> {
  const client = fleet.client();
  try {
    const cp = await client.auditCheckpoint();
    const parsed = cp.checkpoint === '' ? { size: 0, rootHash: new Uint8Array(32) } : parseCheckpointText(parseSignedNote(cp.checkpoint).text);
    return { note: cp.checkpoint, size: parsed.size, rootHash: parsed.rootHash, errorCode: cp.errorCode, errorMessage: cp.errorMessage, publicKeyPem: cp.publicKeyPem };
  } finally {
    client.close();
  }
}

/** Waits until a checkpoint covers at least `size` records. */
async function checkpointOf(size: number): Promise<Awaited<ReturnType<typeof checkpointNow>>> {
  return waitFor(`an audit checkpoint of size >= ${size}`, async () => {
    const cp = await checkpointNow();
    return cp.size >= size ? cp : undefined;
  }, 30_000);
}

async function exportAndVerify(name: string, args: readonly string[]): Promise<{ code: number; out: string; err: string; bundlePath: string }> {
  const bundlePath = join(root, name);
  const exported = await fleet.ctl(['audit', 'export', ...args, '-o', bundlePath]);
  if (exported.code !== 0) throw new Error(`audit export failed (${exported.code}): ${exported.err}`);
  const verified = await fleet.ctl(['audit', 'verify', bundlePath, '--key', keyPath, '--origin', ORIGIN]);
  return { ...verified, bundlePath };
}

t.test('the default checkpoint key is created 0600 in the data directory', async (t) => {
  const s = await stat(join(fleet.controllerConfig.dataDir, DEFAULT_CHECKPOINT_KEY_FILE));
  t.equal(s.mode & 0o777, 0o600);
});

t.test('records of admin actions are leaves; an export verifies offline', async (t) => {
  for (let i = 0; i < 3; i++) await adminAction();
  const total = await streamMessages();
  t.ok(total >= 5, 'the fleet policy push and assignment and three assignments are in the stream');
  const cp = await checkpointOf(total);
  t.equal(cp.errorCode, '');
  t.match(cp.note, /^bulwark\.test-fleet\/audit\n/);
  await writeFile(keyPath, cp.publicKeyPem);

  const shown = await fleet.ctl(['audit', 'checkpoint']);
  t.equal(shown.code, 0);
  t.match(shown.out, ORIGIN);

  const r = await exportAndVerify('all.json', ['--from', '0', '--to', String(total)]);
  t.equal(r.code, 0, r.out + r.err);
  t.match(r.out, `verified: records 0..${total - 1} are in ${ORIGIN}`);
  // The leaves are the stream's stored bytes, record i at sequence i + 1.
  const bundle = parseAuditBundle(await readFile(r.bundlePath));
  const nc = await fleet.natsConnection();
  try {
    const jsm = await nc.jetstreamManager();
    for (let i = 0; i < total; i++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq: i + 1 });
      t.same(decodeBase64Strict(bundle.records[i] ?? '', 'AUDIT_BUNDLE_INVALID', 'record', 1024 * 1024), m.data, `record ${i} is the stored message`);
    }
  } finally {
    await nc.close();
  }
  t.ok(bundle.records.some((b) => Buffer.from(b, 'base64').toString().includes('"policy.assign"')), 'admin assignment records are among them');

  // Another key does not verify the checkpoint; a broken bundle is malformed.
  const { generateKeyPairSync } = await import('node:crypto');
  const other = join(root, 'other.pem');
  await writeFile(other, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
  const wrongKey = await fleet.ctl(['audit', 'verify', r.bundlePath, '--key', other]);
  t.equal(wrongKey.code, 1, 'a checkpoint not signed by the trusted key: exit 1');
  t.match(wrongKey.err, /NOTE_UNTRUSTED/);
  const broken = join(root, 'broken.json');
  await writeFile(broken, '{"version":1,');
  t.equal((await fleet.ctl(['audit', 'verify', broken, '--key', keyPath])).code, 3, 'malformed: exit 3');
});

t.test('a controller restart continues the tree: its next checkpoint is consistent with the previous one', async (t) => {
  const before = await checkpointOf(await streamMessages());
  await fleet.stopController();
  await fleet.startController();
  const rebuilt = await checkpointNow();
  t.equal(rebuilt.errorCode, '', 'the rebuilt tree extends the last signed checkpoint');
  t.equal(rebuilt.note, before.note, 'nothing new signed at start');
  await adminAction();
  await adminAction();
  const after = await checkpointOf(before.size + 2);
  t.ok(after.size > before.size);

  const r = await exportAndVerify('since-restart.json', ['--from', String(before.size), '--previous', String(before.size)]);
  t.equal(r.code, 0, r.out + r.err);
  const bundle = parseAuditBundle(await readFile(r.bundlePath));
  t.equal(bundle.previous?.checkpoint, before.note, 'the previous checkpoint is the one signed before the restart');
  const proof = (bundle.previous?.consistencyProof ?? []).map((h) => decodeBase64Strict(h, 'AUDIT_BUNDLE_INVALID', 'proof', 32));
  const latest = parseCheckpointText(parseSignedNote(bundle.checkpoint).text);
  t.ok(verifyConsistency(before.size, latest.size, before.rootHash, latest.rootHash, proof), 'lib/merkle verifies the consistency proof');
  t.notOk(verifyConsistency(before.size, latest.size, after.rootHash, latest.rootHash, proof), 'and refuses it against another root');

  // Exports outside the signed log, or from a size never signed, are refused with their code.
  const past = await fleet.ctl(['audit', 'export', '--from', String(latest.size), '-o', join(root, 'past.json')]);
  t.equal(past.code, 2, 'records past the latest checkpoint: usage');
  t.match(past.err, /USAGE/);
  const unsigned = await fleet.ctl(['audit', 'export', '--from', '0', '--previous', '0', '-o', join(root, 'unsigned.json')]);
  t.equal(unsigned.code, 1, 'size 0, never signed: not found');
  t.match(unsigned.err, /AUDIT_CHECKPOINT_MISSING/);
});


/** What an admin of NATS can do to a stream that denies deletes: delete it, create it again, publish `records`. */
async function republish(records: readonly { subject: string; data: Uint8Array }[]): Promise<void> {
  const nc = await fleet.natsConnection();
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(AUDIT_STREAM);
    await jsm.streams.delete(AUDIT_STREAM);
    await jsm.streams.add(info.config);
    for (const m of records) await nc.jetstream().publish(m.subject, m.data);
  } finally {
    await nc.close();
  }
}

/** The audit stream's records now, in order. */
async function streamRecords(): Promise<{ subject: string; data: Uint8Array }[]> {
  const nc = await fleet.natsConnection();
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(AUDIT_STREAM);
    const out: { subject: string; data: Uint8Array }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq });
      out.push({ subject: m.subject, data: m.data });
    }
    return out;
  } finally {
    await nc.close();
  }
}

t.test('an export beyond 2,000 records is made in pages joined into one bundle that verifies', async (t) => {
  const [last] = (await streamRecords()).slice(-1);
  if (last === undefined) throw new Error('no record to copy');
  // More records than one export request carries: copies of a real record, published as the controller publishes them.
  const nc = await fleet.natsConnection();
  try {
    const js = nc.jetstream();
    for (let i = 0; i < 2100; i++) await js.publish(last.subject, last.data);
  } finally {
    await nc.close();
  }
  const signed = await checkpointOf(await streamMessages());
  t.ok(signed.size > 2000, `a checkpoint of ${signed.size} records`);
  const r = await exportAndVerify('paged.json', ['--from', '0', '--to', String(signed.size)]);
  t.equal(r.code, 0, `verified (${r.out}${r.err})`);
  t.match(r.out, `records 0..${signed.size - 1} are in ${ORIGIN} at size ${signed.size}`);
  const bundle = parseAuditBundle(await readFile(r.bundlePath, 'utf8'));
  t.same([bundle.firstIndex, bundle.records.length, bundle.inclusionProofs.length], [0, signed.size, signed.size], 'one bundle of every record');
  const tail = await exportAndVerify('paged-tail.json', ['--from', '5']);
  t.equal(tail.code, 0, 'from 5 to the latest checkpoint (no --to): verified');
});

t.test('a record deleted, or two records swapped, in the stream: verify names the first record out of place', async (t) => {
  await adminAction();
  await adminAction();
  const signed = await checkpointOf(await streamMessages());
  const asSigned = await streamRecords();
  t.equal(asSigned.length, signed.size, 'every record is signed');
  const k = asSigned.findIndex((m) => /g(\d+)/.test(Buffer.from(m.data).toString()));
  const [a, b] = [asSigned[k], asSigned[k + 1]];
  if (k < 0 || a === undefined || b === undefined) throw new Error('no records to delete or swap');
  const swapped = [...asSigned];
  swapped[k] = b;
  swapped[k + 1] = a;
  const cases: [string, { subject: string; data: Uint8Array }[]][] = [
    // Record k removed, and a copy of the last one published so the stream is as long as the signed tree.
    ['deleted', [...asSigned.filter((_, i) => i !== k), b]],
    ['reordered', swapped],
  ];
  for (const [what, records] of cases) {
    await republish(records);
    const r = await exportAndVerify(`${what}.json`, ['--from', '0', '--to', String(signed.size)]);
    t.equal(r.code, 1, `${what}: exit 1`);
    t.match(r.out, `record ${k} does not verify`, `${what}: names record ${k}`);
  }
  // The stream as it was, for the tests that follow (the controller has seen it rewritten: it no longer signs).
  await republish(asSigned);
});

t.test('a record edited in the stream: verify names it, the controller refuses to sign', async (t) => {
  const signed = await checkpointOf(await streamMessages());
  // The first record naming a g<N> (the fleet's key set installs come before it).
  let index = -1;
  const nc = await fleet.natsConnection();
  try {
    const jsm = await nc.jetstreamManager();
    // The stream denies deletes and purges, and the server refuses to lift that: whoever holds
    // admin rights on NATS can still delete the whole stream and publish it again, one record changed.
    const info = await jsm.streams.info(AUDIT_STREAM);
    const lift = await jsm.streams.update(AUDIT_STREAM, { ...info.config, deny_delete: false }).then(() => 'lifted', (err: unknown) => String(err));
    t.match(lift, /can not cancel deny message deletes/, 'nats-server keeps deny_delete');
    const kept: { subject: string; data: Uint8Array }[] = [];
    for (let seq = 1; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq });
      kept.push({ subject: m.subject, data: m.data });
    }
    index = kept.findIndex((m) => /g(\d+)/.test(Buffer.from(m.data).toString()));
    t.ok(index >= 0 && index < signed.size, 'a signed record to edit');
    const victim = kept[index];
    if (victim === undefined) throw new Error('no record to edit');
    const original = Buffer.from(victim.data).toString();
    const changed = original.replace(/g(\d+)/, 'rewritten$1');
    t.not(changed, original, 'the record is changed');
    kept[index] = { subject: victim.subject, data: new TextEncoder().encode(changed) };
    await jsm.streams.delete(AUDIT_STREAM);
    await jsm.streams.add(info.config);
    for (const m of kept) await nc.jetstream().publish(m.subject, m.data);
  } finally {
    await nc.close();
  }

  const r = await exportAndVerify('tampered.json', ['--from', '0', '--to', String(signed.size)]);
  t.equal(r.code, 1, 'a record does not verify: exit 1');
  t.match(r.out, `record ${index} does not verify`);
  const json = await fleet.ctl(['audit', 'verify', r.bundlePath, '--key', keyPath, '--json']);
  t.match(json.out, `"index":${index}`);

  // The republished copy grew the tree: the controller tried to sign, and refused.
  await adminAction();
  const refused = await waitFor('the controller to refuse signing', async () => {
    const cp = await checkpointNow();
    return cp.errorCode === '' ? undefined : cp;
  }, 30_000);
  t.equal(refused.errorCode, 'AUDIT_LOG_REWRITTEN');
  t.match(refused.errorMessage, /deleted and created again/);
  t.equal(refused.size, signed.size, 'nothing was signed over the rewrite');
  const shown = await fleet.ctl(['audit', 'checkpoint']);
  t.equal(shown.code, 1, 'audit checkpoint exits 1');
  t.match(shown.err, /AUDIT_LOG_REWRITTEN/);

  // A restart rebuilds the tree from the rewritten stream: it does not extend the signed checkpoint.
  await fleet.stopController();
  await fleet.startController();
  const afterRestart = await checkpointNow();
  t.equal(afterRestart.errorCode, 'AUDIT_LOG_REWRITTEN');
  t.equal(afterRestart.size, signed.size);
});

