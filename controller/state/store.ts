/**
 * Durable controller state on NATS JetStream: node records (KV `bulwark_nodes`, updated
 * with revision checks so replicas never overwrite each other), single-use nonces (KV
 * `bulwark_nonces`), pending enrollments (KV `bulwark_enroll`) and the audit log (stream
 * `BULWARK_AUDIT`, one subject per node).
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  DiscardPolicy,
  KvWatchInclude,
  nanos,
  StorageType,
  type JetStreamClient,
  type KV,
  type KvEntry,
  type NatsConnection,
} from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import { corruptNodeRecord, corruptPath, decodeNodeRecord, encodeNodeRecord, type NodeRecord } from '../../lib/attestation/index.js';
import { defineDocument } from '../../lib/schema/index.js';
import { SUBJECTS, wire, type TrustEventMsg } from '../../proto/index.js';
import { errorFields, silentLogger, sleep, type Logger } from '../../daemon/index.js';
import { Backoff, type BackoffPolicy } from '../../lib/index.js';
import { bucketKeys } from './kv-keys.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits } from './limits.js';

export const BUCKETS = { nodes: 'bulwark_nodes', nonces: 'bulwark_nonces', enroll: 'bulwark_enroll', leases: 'bulwark_leases' } as const;
export const AUDIT_STREAM = 'BULWARK_AUDIT';

const enc = new TextEncoder();

/**
 * A node as read from KV. When the stored value does not decode, `corrupt` holds the
 * STORE_CORRUPT error and `record` is a stand-in (untrusted, STATE_CORRUPT, no keys) that
 * is shown and listed but never written back.
 */
export interface StoredNode {
  readonly record: NodeRecord;
  readonly revision: number;
  readonly corrupt: BulwarkError | null;
}

/** A nonce as issued: to whom, when, and whether it has been used. Written without `version` before it existed. */
export const NonceEntrySchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    nodeId: Type.String({ maxLength: 128 }),
    issuedAt: Type.Integer({ minimum: 0 }),
    usedAt: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  },
  { additionalProperties: false },
);

export type NonceEntry = Static<typeof NonceEntrySchema>;

const NONCE_ENTRY = defineDocument(NonceEntrySchema, 'stored nonce', 'STORE_CORRUPT');

export type NonceCheck = { ok: true } | { ok: false; code: 'NONCE_UNKNOWN' | 'NONCE_EXPIRED' | 'NONCE_REPLAYED'; message: string };

/** Waits between read-modify-write attempts that lost a race to another replica. */
const CONFLICT_BACKOFF: BackoffPolicy = { baseMs: 5, capMs: 200 };

export interface StoreOptions {
  /** Where records and audit entries that cannot be read are reported (they are skipped). */
  readonly log?: Logger;
  /** Times every KV operation (controller metrics); none: not timed. */
  readonly metrics?: { timedKv(kv: KV, bucket: string): KV };
}

function isConflict(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /wrong last sequence|key exists|10071|10164/i.test(msg);
}

/** The decode error of a stored value as a STORE_CORRUPT BulwarkError (the schema layer throws only those). */
function corruption(err: unknown, what: string): BulwarkError {
  return err instanceof BulwarkError ? err : new BulwarkError('STORE_CORRUPT', `${what} does not decode`, {}, { cause: err });
}

export class ControllerStore {
  readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly nodes: KV;
  private readonly nonces: KV;
  readonly enroll: KV;
  readonly leases: KV;
  private readonly log: Logger;

  /** Corrupt node records already reported (node@revision), so a listing every tick logs each once. */
  private readonly reported = new Set<string>();

  private constructor(nc: NatsConnection, js: JetStreamClient, nodes: KV, nonces: KV, enroll: KV, leases: KV, log: Logger) {
    this.log = log;
    this.nc = nc;
    this.js = js;
    this.nodes = nodes;
    this.nonces = nonces;
    this.enroll = enroll;
    this.leases = leases;
  }

  /** Opens (creating when missing) the buckets and the audit stream. */
  static async open(nc: NatsConnection, opts: StoreOptions = {}): Promise<ControllerStore> {
    try {
      const js = nc.jetstream();
      const jsm = await nc.jetstreamManager();
      const nodes = await js.views.kv(BUCKETS.nodes, { history: 5, storage: StorageType.File, ...kvLimits(BUCKETS.nodes) });
      // Bucket-wide max age only cleans up: expiry itself is checked against issuedAt,
      // because nats-server 2.9 ignores per-key TTLs.
      const nonces = await js.views.kv(BUCKETS.nonces, { history: 1, storage: StorageType.File, ...kvLimits(BUCKETS.nonces) });
      const enroll = await js.views.kv(BUCKETS.enroll, { history: 1, storage: StorageType.File, ...kvLimits(BUCKETS.enroll) });
      const leases = await js.views.kv(BUCKETS.leases, { history: 1, storage: StorageType.File, ...kvLimits(BUCKETS.leases) });
      for (const bucket of Object.values(BUCKETS)) await enforceStreamLimits(jsm, `KV_${bucket}`, STREAM_LIMITS[bucket]);
      // The audit log is append-only: the server itself refuses deletes and purges.
      const audit = STREAM_LIMITS[AUDIT_STREAM];
      try {
        await jsm.streams.info(AUDIT_STREAM);
      } catch {
        await jsm.streams.add({
          name: AUDIT_STREAM,
          subjects: [SUBJECTS.auditAll],
          storage: StorageType.File,
          max_bytes: audit.maxBytes,
          max_age: nanos(audit.maxAgeMs),
          discard: DiscardPolicy.Old,
          deny_delete: true,
          deny_purge: true,
        });
      }
      await enforceStreamLimits(jsm, AUDIT_STREAM, audit, { deny_delete: true, deny_purge: true });
      const timed = (kv: KV, bucket: string): KV => opts.metrics?.timedKv(kv, bucket) ?? kv;
      return new ControllerStore(
        nc,
        js,
        timed(nodes, BUCKETS.nodes),
        timed(nonces, BUCKETS.nonces),
        timed(enroll, BUCKETS.enroll),
        timed(leases, BUCKETS.leases),
        opts.log ?? silentLogger(),
      );
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the JetStream buckets');
    }
  }

  /** Decodes a node entry; a corrupt one becomes the STATE_CORRUPT stand-in, reported once per revision. */
  private decodeNode(entry: KvEntry): StoredNode {
    try {
      return { record: decodeNodeRecord(entry.value, entry.key), revision: entry.revision, corrupt: null };
    } catch (err) {
      const error = corruption(err, `stored node record ${entry.key}`);
      const seen = `${entry.key}@${entry.revision}`;
      if (!this.reported.has(seen)) {
        if (this.reported.size > 10_000) this.reported.clear();
        this.reported.add(seen);
        this.log.warn({
          node: entry.key,
          path: corruptPath(error),
          revision: entry.revision,
          error: error.message,
        }, 'stored node record is corrupt: the node is untrusted (STATE_CORRUPT) until an operator approves it');
      }
      return { record: corruptNodeRecord(entry.key, error, entry.created.toISOString()), revision: entry.revision, corrupt: error };
    }
  }

  /** A node as stored; a record that does not decode comes back as its stand-in with `corrupt` set. */
  async getNode(nodeId: string): Promise<StoredNode | null> {
    const entry = await this.nodes.get(nodeId);
    // Deletes and purges are operations of their own: an empty PUT is a value, and a corrupt one.
    if (entry === null || entry.operation !== 'PUT') return null;
    return this.decodeNode(entry);
  }

  /**
   * Every node, by id. A record that does not decode fails only its own node: it is listed
   * as its untrusted STATE_CORRUPT stand-in, and the rest are listed as usual.
   */
  async listNodes(): Promise<NodeRecord[]> {
    const out: NodeRecord[] = [];
    const ids = await bucketKeys(await this.js.jetstreamManager(false), BUCKETS.nodes);
    for (const id of ids) {
      const n = await this.getNode(id);
      if (n !== null) out.push(n.record);
    }
    return out;
  }

  /** Writes a record only if nobody changed it since `revision` (0: only if absent). */
  async putNode(record: NodeRecord, revision: number): Promise<number> {
    try {
      const data = enc.encode(encodeNodeRecord(record));
      return revision === 0 ? await this.nodes.create(record.nodeId, data) : await this.nodes.update(record.nodeId, data, revision);
    } catch (err) {
      if (isConflict(err)) throw new BulwarkError('STORE_CONFLICT', `node ${record.nodeId} was changed concurrently`, { revision }, { cause: err });
      throw toBulwarkError(err, 'NATS_FAILED', `cannot store node ${record.nodeId}`);
    }
  }

  /**
   * Read-modify-write with revision checks, retried on conflict after a jittered wait (so
   * replicas that collided do not collide again). `change` returns the new record, or null
   * to leave the node as it is.
   */
  async updateNode(nodeId: string, change: (current: NodeRecord | null) => NodeRecord | null): Promise<NodeRecord | null> {
    const backoff = new Backoff(CONFLICT_BACKOFF);
    for (let attempt = 0; attempt < 10; attempt++) {
      if (attempt > 0) await sleep(backoff.next().delayMs);
      const current = await this.getNode(nodeId);
      // A corrupt record is never overwritten by a round or an enrollment: only an operator's approval removes it.
      if (current !== null && current.corrupt !== null) throw current.corrupt;
      const next = change(current?.record ?? null);
      if (next === null) return current?.record ?? null;
      try {
        await this.putNode(next, current?.revision ?? 0);
        return next;
      } catch (err) {
        if (err instanceof BulwarkError && err.code === 'STORE_CONFLICT') continue;
        throw err;
      }
    }
    throw new BulwarkError('STORE_CONFLICT', `node ${nodeId} kept changing concurrently`);
  }

  /**
   * Removes a corrupt node record (an operator's approval), only if it is still the
   * revision that was shown as corrupt; the host then enrolls as a new node.
   */
  async removeCorruptNode(nodeId: string, revision: number): Promise<void> {
    try {
      await this.nodes.delete(nodeId, { previousSeq: revision });
    } catch (err) {
      if (isConflict(err)) throw new BulwarkError('STORE_CONFLICT', `node ${nodeId} was changed concurrently`, { revision }, { cause: err });
      throw toBulwarkError(err, 'NATS_FAILED', `cannot remove node ${nodeId}`);
    }
  }

  /**
   * Calls `onChange` with every node record written from now on (any replica), until the
   * returned function is called. A record that does not decode is passed as its untrusted
   * STATE_CORRUPT stand-in, so the Nomad gate closes for it like for any untrusted node.
   */
  watchNodes(onChange: (record: NodeRecord) => void): () => void {
    let stopped = false;
    let stopIterator: (() => void) | null = null;
    void this.nodes.watch({ include: KvWatchInclude.UpdatesOnly }).then(async (iter) => {
      stopIterator = () => iter.stop();
      if (stopped) iter.stop();
      for await (const e of iter) {
        if (stopped) break;
        if (e.operation !== 'PUT') continue;
        onChange(this.decodeNode(e).record);
      }
    }, (err: unknown) => this.log.warn(errorFields(err), 'cannot watch node records: trust changes are not followed'));
    return () => {
      stopped = true;
      stopIterator?.();
    };
  }

  /**
   * Follows every node's NATS public key: first the current value of every record
   * (`onCaughtUp` after it), then every change by any replica. A removed record and one
   * without a key give null (no NATS access); one that does not decode gives undefined
   * (unknown: the key seen before stays, so the node keeps reaching the controller and is
   * answered STATE_CORRUPT until an operator's approval removes the record).
   */
  watchNodeKeys(onChange: (nodeId: string, publicKey: string | null | undefined) => void, onCaughtUp: () => void): () => void {
    let stopped = false;
    let stopIterator: (() => void) | null = null;
    let initialized = false;
    const caughtUp = (): void => {
      if (initialized) return;
      initialized = true;
      onCaughtUp();
    };
    void this.nodes.watch({ initializedFn: caughtUp }).then(async (iter) => {
      stopIterator = () => iter.stop();
      if (stopped) iter.stop();
      for await (const e of iter) {
        if (stopped) break;
        if (e.operation !== 'PUT') {
          onChange(e.key, null);
          continue;
        }
        const stored = this.decodeNode(e);
        onChange(e.key, stored.corrupt === null ? (stored.record.natsPublicKey ?? null) : undefined);
      }
    }, (err: unknown) => {
      this.log.error(errorFields(err), 'cannot watch node records: NATS node identities are not followed');
      caughtUp();
    });
    return () => {
      stopped = true;
      stopIterator?.();
    };
  }

  async deleteNode(nodeId: string): Promise<void> {
    await this.nodes.delete(nodeId);
  }

  /** Removes a nonce that was evicted or can no longer be used (the outstanding-nonce cap). */
  async deleteNonce(nonceHex: string): Promise<void> {
    await this.nonces.purge(nonceHex);
  }

  /** Nonce entries in the bucket (tests and metrics: the flood bound). */
  async nonceCount(): Promise<number> {
    return (await this.nonces.status()).values;
  }

  async issueNonce(nonceHex: string, nodeId: string, now: number): Promise<void> {
    await this.nonces.create(nonceHex, enc.encode(JSON.stringify({ version: 1, nodeId, issuedAt: now, usedAt: null } satisfies NonceEntry)));
  }

  /**
   * Consumes a nonce: it must exist, belong to `nodeId`, be younger than `ttlMs` and
   * unused. Marking it used is a revision-checked write, so two replicas racing on the same
   * evidence cannot both accept it.
   */
  async consumeNonce(nonceHex: string, nodeId: string, now: number, ttlMs: number): Promise<NonceCheck> {
    const entry = await this.nonces.get(nonceHex);
    if (entry === null || entry.operation !== 'PUT') return { ok: false, code: 'NONCE_UNKNOWN', message: 'the nonce was never issued by a controller' };
    let value: NonceEntry;
    try {
      value = NONCE_ENTRY.parseJson(entry.value, `${BUCKETS.nonces}/${nonceHex}`);
    } catch (err) {
      // A nonce whose record does not decode cannot be proven issued and unused: refused, and said so.
      const error = corruption(err, 'stored nonce');
      this.log.warn({ node: nodeId, path: corruptPath(error), error: error.message }, 'stored nonce is corrupt: the evidence using it is refused');
      return { ok: false, code: 'NONCE_UNKNOWN', message: `the nonce's stored record does not decode: ${error.message}` };
    }
    if (value.nodeId !== nodeId) return { ok: false, code: 'NONCE_UNKNOWN', message: 'the nonce was issued to another node' };
    if (value.usedAt !== null) return { ok: false, code: 'NONCE_REPLAYED', message: 'the nonce was already used' };
    try {
      await this.nonces.update(nonceHex, enc.encode(JSON.stringify({ ...value, version: 1, usedAt: now } satisfies NonceEntry)), entry.revision);
    } catch (err) {
      if (isConflict(err)) return { ok: false, code: 'NONCE_REPLAYED', message: 'the nonce was used concurrently' };
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot mark the nonce used');
    }
    if (now - value.issuedAt > ttlMs) {
      return { ok: false, code: 'NONCE_EXPIRED', message: `the nonce is ${now - value.issuedAt} ms old, older than ${ttlMs} ms` };
    }
    return { ok: true };
  }

  /** Appends a trust event to the audit stream and returns its sequence. */
  async appendAudit(event: TrustEventMsg): Promise<number> {
    const ack = await this.js.publish(SUBJECTS.audit(event.nodeId), wire.trustEvent.encode(event));
    return ack.seq;
  }

  /** The last `limit` audit events of a node, oldest first. */
  async history(nodeId: string, limit: number): Promise<TrustEventMsg[]> {
    const out: TrustEventMsg[] = [];
    const consumer = await this.js.consumers.get(AUDIT_STREAM, {
      // A single string: nats-server 2.9 knows filter_subject only, not filter_subjects.
      filterSubjects: SUBJECTS.audit(nodeId),
    });
    let remaining = (await consumer.info()).num_pending;
    while (remaining > 0) {
      // Asking for exactly what is pending returns as soon as it has arrived.
      const batch = await consumer.fetch({ max_messages: Math.min(remaining, 256), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        remaining = m.info.pending;
        try {
          out.push({ ...wire.trustEvent.decode(m.data), sequence: m.seq });
        } catch (err) {
          // An audit entry this version cannot decode is skipped, never fatal.
          this.log.warn({ node: nodeId, sequence: m.seq, ...errorFields(err) }, 'dropped an audit entry from the history: it does not decode');
        }
        if (out.length > limit) out.shift();
      }
      if (got === 0) break;
    }
    return out;
  }
}
