/**
 * The format of the controller's stored state, checked at every start before anything is
 * written, and migrated forward when it is older.
 *
 * A marker, KV `bulwark_meta` key `format` ({"dataFormat": N, ...}), names the data format
 * of the whole store. Formats:
 *   1. up to 0.1.0, no marker: node records, leases and IMA replay state (and nonces,
 *      pending enrollments and policies) may lack `version`; readers take that as version 1.
 *   2. the marker; every node record, lease and IMA replay state carries `version`.
 *
 * At start (`prepareDataFormat`): a marker newer than DATA_FORMAT, or any record whose
 * `version` is above what this code reads for its bucket (RECORD_VERSIONS), refuses the
 * start with STORE_VERSION_NEWER naming the bucket, key and versions, and nothing is
 * written (a downgrade never rewrites what it cannot read). Otherwise records without
 * `version` in the migrated buckets are checked with their bucket's decoder and rewritten
 * with `version: 1` (revision-checked: a replica that rewrote one first wins), then the
 * marker is set. Left as they are, and read as version 1: nonces and pending enrollments
 * (they expire within the hour) and policy envelopes (their sha256 is in the admin audit
 * log; rewriting them would make the stored bytes differ from the audited ones).
 * Records that do not decode are left for the readers, which report them (STORE_CORRUPT).
 */
import { Type } from '@sinclair/typebox';
import { StorageType, type JetStreamClient, type JetStreamManager, type KV, type NatsConnection } from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import { decodeNodeRecord } from '../../lib/attestation/index.js';
import { defineDocument, parseJsonText } from '../../lib/schema/index.js';
import { silentLogger, type Logger } from '../../daemon/index.js';
import { BUCKETS, bucketKeys, decodeLease } from '../state/index.js';
import { BASELINE_BUCKET, IMA_BUCKET, decodeStoredIma } from '../appraisers/index.js';
import { KEYSET_BUCKET, POLICY_BUCKET } from '../policies/index.js';
import { EK_BINDING_BUCKET } from '../registrar/index.js';
import { CHECKPOINTS_BUCKET } from '../audit/index.js';
import { ISSUED_BUCKET, REVOCATIONS_BUCKET } from '../pki/index.js';

/** The KV bucket of the marker, and its key. */
export const META_BUCKET = 'bulwark_meta';
export const FORMAT_KEY = 'format';

/** The data format this code writes (see the module comment). */
export const DATA_FORMAT = 2;

/** The format of a store that has buckets but no marker: what 0.1.0 and before wrote. */
const UNMARKED_FORMAT = 1;

/** The highest `version` this code reads, per bucket of JSON records (bulwark_eventlogs holds raw event logs). */
export const RECORD_VERSIONS: Readonly<Record<string, number>> = {
  [BUCKETS.nodes]: 1,
  [BUCKETS.nonces]: 1,
  [BUCKETS.enroll]: 1,
  [BUCKETS.leases]: 1,
  [POLICY_BUCKET]: 1,
  [IMA_BUCKET]: 1,
  [BASELINE_BUCKET]: 1,
  [EK_BINDING_BUCKET]: 1,
  [REVOCATIONS_BUCKET]: 1,
  [ISSUED_BUCKET]: 1,
  [CHECKPOINTS_BUCKET]: 1,
  [KEYSET_BUCKET]: 1,
};

/** Buckets whose records without `version` are rewritten as version 1, with the decoder that must accept them first. */
const MIGRATED: Readonly<Record<string, (bytes: Uint8Array, key: string) => unknown>> = {
  [BUCKETS.nodes]: (bytes, key) => decodeNodeRecord(bytes, key),
  [BUCKETS.leases]: (bytes, key) => decodeLease(bytes, key),
  [IMA_BUCKET]: (bytes, key) => decodeStoredIma(bytes, key),
};

/**
 * The marker: `dataFormat` is the one field every version reads (so a downgrade can refuse);
 * the rest says who set it, for the operator.
 */
const FormatMarkerSchema = Type.Object({
  dataFormat: Type.Integer({ minimum: 1 }),
  writtenBy: Type.Optional(Type.String({ maxLength: 256 })),
  updatedAt: Type.Optional(Type.String({ maxLength: 64 })),
});
const FORMAT_MARKER = defineDocument(FormatMarkerSchema, 'data format marker', 'STORE_CORRUPT');

/** Any stored JSON record, for its `version` alone. */
const VERSIONED = defineDocument(Type.Object({ version: Type.Optional(Type.Unknown()) }), 'stored record', 'STORE_CORRUPT');

const enc = new TextEncoder();

/** What a start found and did. */
export interface DataFormatReport {
  /** The format found: null for an empty store (a first start). */
  readonly from: number | null;
  readonly to: number;
  /** Records rewritten with `version`, per bucket. */
  readonly migrated: Readonly<Record<string, number>>;
}

export interface PrepareOptions {
  readonly log?: Logger;
  /** Who sets the marker ("bulwark-controller 0.2.0"). */
  readonly writtenBy: string;
  readonly now?: () => Date;
}

function newer(bucket: string, key: string, version: number, supported: number, what: string): BulwarkError {
  return new BulwarkError(
    'STORE_VERSION_NEWER',
    `${bucket}/${key} holds ${what} ${version}, newer than this controller reads (${supported}): it was written by a newer Bulwark; run that version (this one refuses to start and changes nothing)`,
    { bucket, key, version, supported },
  );
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists|10071|10164/i.test(err instanceof Error ? err.message : String(err));
}

/** A bucket that exists, bound without creating it; null when it does not. */
async function existingBucket(js: JetStreamClient, jsm: JetStreamManager, bucket: string): Promise<KV | null> {
  try {
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (/stream not found|10059/i.test(err instanceof Error ? err.message : String(err))) return null;
    throw toBulwarkError(err, 'NATS_FAILED', `cannot look up the KV bucket ${bucket}`);
  }
  return js.views.kv(bucket, { bindOnly: true });
}

/** The `version` of a stored value: a number, "none" (a JSON object without one) or null (not a JSON object with an integer one: left to its reader). */
function versionOf(bytes: Uint8Array, source: string): number | 'none' | null {
  let doc;
  try {
    doc = VERSIONED.parseJson(bytes, source);
  } catch {
    return null;
  }
  if (doc.version === undefined) return 'none';
  return typeof doc.version === 'number' && Number.isSafeInteger(doc.version) ? doc.version : null;
}

/** The marker's format, or null when there is none; a marker that is not one is STORE_CORRUPT (never overwritten). */
async function readMarker(meta: KV | null): Promise<{ format: number; revision: number } | null> {
  const entry = meta === null ? null : await meta.get(FORMAT_KEY);
  if (entry === null || entry.operation !== 'PUT') return null;
  return { format: FORMAT_MARKER.parseJson(entry.value, `${META_BUCKET}/${FORMAT_KEY}`).dataFormat, revision: entry.revision };
}

/**
 * Checks the stored state's format and migrates it forward to DATA_FORMAT (see the module
 * comment). Throws STORE_VERSION_NEWER, having written nothing, when the marker or a record
 * is newer than this code reads.
 */
export async function prepareDataFormat(nc: NatsConnection, opts: PrepareOptions): Promise<DataFormatReport> {
  const log = opts.log ?? silentLogger();
  const js = nc.jetstream();
  let jsm: JetStreamManager;
  try {
    jsm = await nc.jetstreamManager();
  } catch (err) {
    throw toBulwarkError(err, 'NATS_FAILED', 'cannot reach JetStream');
  }
  let meta = await existingBucket(js, jsm, META_BUCKET);
  const marker = await readMarker(meta);
  if (marker !== null && marker.format > DATA_FORMAT) throw newer(META_BUCKET, FORMAT_KEY, marker.format, DATA_FORMAT, 'data format');

  // Read everything before writing anything: one record too new and nothing is changed.
  const rewrites: Array<{ kv: KV; bucket: string; key: string; revision: number; bytes: Uint8Array }> = [];
  let anyBucket = false;
  for (const [bucket, supported] of Object.entries(RECORD_VERSIONS)) {
    const kv = await existingBucket(js, jsm, bucket);
    if (kv === null) continue;
    anyBucket = true;
    const decode = MIGRATED[bucket];
    for (const key of await bucketKeys(jsm, bucket)) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const version = versionOf(entry.value, `${bucket}/${key}`);
      if (typeof version === 'number' && version > supported) throw newer(bucket, key, version, supported, 'record version');
      if (version !== 'none' || decode === undefined) continue;
      try {
        decode(entry.value, key);
      } catch {
        // Corrupt as it is: its reader reports it; a migration does not bless it with a version.
        continue;
      }
      const doc = parseJsonText(entry.value, 'stored record', 'STORE_CORRUPT');
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) continue;
      rewrites.push({ kv, bucket, key, revision: entry.revision, bytes: enc.encode(JSON.stringify({ version: 1, ...doc })) });
    }
  }
  const from = marker?.format ?? (anyBucket ? UNMARKED_FORMAT : null);

  const migrated: Record<string, number> = {};
  for (const r of rewrites) {
    try {
      await r.kv.update(r.key, r.bytes, r.revision);
      migrated[r.bucket] = (migrated[r.bucket] ?? 0) + 1;
    } catch (err) {
      // Changed since it was read: whoever changed it wrote the current format.
      if (isConflict(err)) continue;
      throw toBulwarkError(err, 'NATS_FAILED', `cannot migrate ${r.bucket}/${r.key}`);
    }
  }

  if (marker?.format !== DATA_FORMAT) {
    const value = enc.encode(JSON.stringify({ dataFormat: DATA_FORMAT, writtenBy: opts.writtenBy, updatedAt: (opts.now?.() ?? new Date()).toISOString() }));
    try {
      meta ??= await js.views.kv(META_BUCKET, { history: 10, storage: StorageType.File, max_bytes: 1024 * 1024 });
      if (marker === null) await meta.create(FORMAT_KEY, value);
      else await meta.update(FORMAT_KEY, value, marker.revision);
    } catch (err) {
      if (!isConflict(err)) throw toBulwarkError(err, 'NATS_FAILED', `cannot write ${META_BUCKET}/${FORMAT_KEY}`);
      // Another replica set it first: it must be one this code reads.
      const theirs = await readMarker(meta);
      if (theirs !== null && theirs.format > DATA_FORMAT) throw newer(META_BUCKET, FORMAT_KEY, theirs.format, DATA_FORMAT, 'data format');
    }
  }
  if (from !== DATA_FORMAT || rewrites.length > 0) log.info({ from, to: DATA_FORMAT, migrated }, from === null ? 'new store: data format set' : 'stored state migrated to the current data format');
  return { from, to: DATA_FORMAT, migrated };
}
