/**
 * The audit log's Merkle tree beside the JetStream audit stream, and its signed checkpoints.
 *
 * Leaves: leaf i of the tree is the i-th record of `BULWARK_AUDIT` counted from its first
 * message, hashed over the record's exact stored bytes (every subject of the stream: trust
 * transitions, admin actions, access refusals). Position stands for the stream sequence
 * (leaf i is sequence i + 1), so nothing about a record lives outside the stream itself.
 *
 * Rewrites are never skipped. JetStream cannot edit a message in place: an "edit" is a
 * delete and a new publish, a reorder is a purge and republish (the stream denies both,
 * and nats-server refuses to lift that, so an admin of NATS deletes the whole stream and
 * publishes it again), and records aged out by the stream's limits are deletes from the
 * head. Each leaves a gap in the sequences, moves the stream's first sequence or changes its
 * creation time; the log treats every one of them alike (AUDIT_LOG_REWRITTEN): it
 * logs an error, signs nothing from then on, and `GetAuditCheckpoint` says so. Records that
 * age out of the stream therefore stop the signing too: the stream's limits (400 days, 1 GiB
 * by default) must outlast the audit history kept, or the history be exported before.
 *
 * At start the tree is rebuilt by reading the stream from its first message (an ordered
 * consumer that then keeps following new records) and checked against the last signed
 * checkpoint (KV `bulwark_checkpoints`, shared by the replicas). A checkpoint is signed every
 * `intervalMs` or `records` appended records, only when the tree grew, only by the replica
 * holding the lease, and only after the tree was checked to extend the last signed one, so
 * no two inconsistent checkpoints are ever signed. Stored by revision-checked writes: one
 * key per size (created once: two replicas never store two checkpoints of one size) and
 * `latest`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type KV, type NatsConnection } from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import {
  MerkleTree,
  buildAuditBundle,
  formatCheckpointText,
  signNote,
  verifyCheckpoint,
  type AuditBundle,
  type Checkpoint,
  type NoteSigner,
  type NoteVerifier,
} from '../../lib/merkle/index.js';
import { defineDocument } from '../../lib/schema/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';
import { AUDIT_STREAM, STREAM_LIMITS, enforceStreamLimits, kvLimits, type KvLease } from '../state/index.js';
import { noteKeysOf, type CheckpointSigner } from './signer.js';

export const CHECKPOINTS_BUCKET = 'bulwark_checkpoints';
const LATEST_KEY = 'latest';
const sizeKey = (size: number): string => `size.${size}`;

/** Most records one export carries (the bundle travels in one gRPC message). */
export const AUDIT_EXPORT_MAX_RECORDS = 2000;

/** A signed checkpoint as stored in KV `bulwark_checkpoints`. */
export const StoredCheckpointSchema = Type.Object(
  {
    version: Type.Literal(1),
    /** The signed note (C2SP tlog-checkpoint text and its signature lines). */
    note: Type.String({ maxLength: 256 * 1024 }),
    size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    /** The replica that signed it. */
    signedBy: Type.String({ maxLength: 256 }),
    at: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type StoredCheckpoint = Static<typeof StoredCheckpointSchema>;

const STORED_CHECKPOINT = defineDocument(StoredCheckpointSchema, 'stored audit checkpoint', 'STORE_CORRUPT');

const enc = new TextEncoder();

export interface AuditLogOptions {
  readonly nc: NatsConnection;
  /** The checkpoint origin (`bulwark.<name>/audit`), also the signature's key name. */
  readonly origin: string;
  readonly signer: CheckpointSigner;
  /** Held by the replica that signs; the others only follow. */
  readonly lease: KvLease;
  readonly intervalMs: number;
  readonly records: number;
  /** The replica's name in stored checkpoints. */
  readonly holder: string;
  readonly log?: Logger;
}

/** What `GetAuditCheckpoint` answers: the latest signed checkpoint, and the problem that stops signing, if any. */
export interface AuditCheckpointState {
  readonly checkpoint: StoredCheckpoint | null;
  readonly publicKeyPem: string;
  readonly treeSize: number;
  readonly problem: BulwarkError | null;
}

const rewritten = (message: string, details: Record<string, number> = {}, cause?: unknown): BulwarkError =>
  new BulwarkError('AUDIT_LOG_REWRITTEN', message, details, cause === undefined ? undefined : { cause });

/** The tree of the audit stream, following it, and its checkpoints. Trusted: it hashes what it reads itself. */
export class AuditLog {
  private readonly opts: AuditLogOptions;
  private readonly log: Logger;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly kv: KV;
  private readonly noteSigner: NoteSigner;
  readonly verifier: NoteVerifier;
  private readonly tree = new MerkleTree();
  /** Stream sequence of the last record appended. */
  private lastSeq = 0;
  /** When the stream was created (a stream deleted and created again is a rewrite). */
  private streamCreated = '';
  private problemError: BulwarkError | null = null;
  /** The latest signed checkpoint this replica knows to be consistent with its tree. */
  private signed: Checkpoint | null = null;
  private lastSignedAt = Date.now();
  private signing = false;
  private closed = false;
  private messages: ConsumerMessages | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly sizeWaiters: { size: number; resolve: () => void }[] = [];

  private constructor(opts: AuditLogOptions, js: JetStreamClient, jsm: JetStreamManager, kv: KV) {
    this.opts = opts;
    this.log = opts.log ?? silentLogger();
    this.js = js;
    this.jsm = jsm;
    this.kv = kv;
    const keys = noteKeysOf(opts.origin, opts.signer);
    this.noteSigner = keys.noteSigner;
    this.verifier = keys.verifier;
  }

  /**
   * Opens the checkpoint bucket, rebuilds the tree from the whole stream, checks it against
   * the last signed checkpoint, then follows new records and signs on schedule.
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    let log: AuditLog;
    try {
      const js = opts.nc.jetstream();
      const jsm = await opts.nc.jetstreamManager();
      const kv = await js.views.kv(CHECKPOINTS_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits(CHECKPOINTS_BUCKET) });
      await enforceStreamLimits(jsm, `KV_${CHECKPOINTS_BUCKET}`, STREAM_LIMITS[CHECKPOINTS_BUCKET]);
      log = new AuditLog(opts, js, jsm, kv);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the audit checkpoint bucket');
    }
    await log.follow();
    await log.checkAgainstLatest();
    log.timer = setInterval(() => void log.tick(), Math.max(100, Math.min(opts.intervalMs, 1000)));
    return log;
  }

  /** Records in the tree. */
  get size(): number {
    return this.tree.size;
  }

  /** What stops signing (null: nothing). */
  get problem(): BulwarkError | null {
    return this.problemError;
  }

  /** Resolves once the tree holds at least `size` records. */
  whenSize(size: number): Promise<void> {
    if (this.tree.size >= size) return Promise.resolve();
    return new Promise((resolve) => this.sizeWaiters.push({ size, resolve }));
  }

  /** Reads the stream from its first message; resolves once the records present at start are in the tree. */
  private async follow(): Promise<void> {
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    try {
      const info = await this.jsm.streams.info(AUDIT_STREAM);
      this.streamCreated = info.created;
      const target = info.state.last_seq;
      if (info.state.messages === 0) caughtUp();
      const consumer = await this.js.consumers.get(AUDIT_STREAM, { opt_start_seq: 1 });
      const messages = await consumer.consume();
      this.messages = messages;
      void (async () => {
        try {
          for await (const m of messages) {
            this.append(m.seq, m.data);
            if (m.seq >= target || m.info.pending === 0) caughtUp();
          }
        } catch (err) {
          if (!this.closed) this.flag(toBulwarkError(err, 'NATS_FAILED', 'the audit stream can no longer be followed'));
        }
        if (!this.closed) this.flag(new BulwarkError('NATS_FAILED', 'the audit stream is no longer followed'));
        caughtUp();
      })();
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot read the audit stream');
    }
    await ready;
  }

  private append(seq: number, data: Uint8Array): void {
    if (seq !== this.lastSeq + 1) {
      const first = this.lastSeq + 1;
      this.flag(rewritten(`audit stream sequence ${first}${seq - 1 > first ? `..${seq - 1}` : ''} is gone (deleted, purged or aged out): audit record ${this.tree.size} is not the one logged there`, { index: this.tree.size, sequence: first }));
    }
    this.lastSeq = seq;
    try {
      this.tree.appendLeaf(data);
    } catch (err) {
      this.flag(toBulwarkError(err, 'INTERNAL', 'cannot append to the audit tree'));
      return;
    }
    for (let i = this.sizeWaiters.length - 1; i >= 0; i--) {
      const w = this.sizeWaiters[i];
      if (w !== undefined && this.tree.size >= w.size) {
        this.sizeWaiters.splice(i, 1);
        w.resolve();
      }
    }
    if (this.tree.size - (this.signed?.size ?? 0) >= this.opts.records) void this.tick();
  }

  /** Records the first problem (later ones are logged only): from now on nothing is signed. */
  private flag(error: BulwarkError): void {
    this.log.error({ code: error.code, error: error.message, treeSize: this.tree.size }, 'audit log: refusing to sign checkpoints');
    // A rewrite is what an operator must hear of, even after a lost connection was recorded first.
    if (this.problemError === null || (error.code === 'AUDIT_LOG_REWRITTEN' && this.problemError.code !== 'AUDIT_LOG_REWRITTEN')) this.problemError = error;
  }

  /** The latest stored checkpoint with its KV revision, or null. */
  private async readLatest(): Promise<{ stored: StoredCheckpoint; revision: number } | null> {
    const entry = await this.kv.get(LATEST_KEY);
    if (entry === null || entry.operation !== 'PUT') return null;
    return { stored: STORED_CHECKPOINT.parseJson(entry.value, `${CHECKPOINTS_BUCKET}/${LATEST_KEY}`), revision: entry.revision };
  }

  /** Verifies a stored checkpoint with this log's key and origin, and checks the tree extends it. */
  private checkStored(stored: StoredCheckpoint): Checkpoint {
    const { checkpoint } = verifyCheckpoint(stored.note, [this.verifier], this.opts.origin);
    if (checkpoint.size !== stored.size) throw new BulwarkError('STORE_CORRUPT', `stored checkpoint says size ${stored.size} but signs ${checkpoint.size}`);
    return checkpoint;
  }

  /** At start: the rebuilt tree must extend the last signed checkpoint. */
  private async checkAgainstLatest(): Promise<void> {
    let latest: { stored: StoredCheckpoint } | null;
    try {
      latest = await this.readLatest();
    } catch (err) {
      this.flag(toBulwarkError(err, 'NATS_FAILED', 'cannot read the last audit checkpoint'));
      return;
    }
    if (latest === null) {
      this.log.info({ treeSize: this.tree.size, origin: this.opts.origin }, 'audit log rebuilt; no checkpoint signed yet');
      return;
    }
    try {
      const checkpoint = this.checkStored(latest.stored);
      this.tree.checkExtends(checkpoint);
      this.signed = checkpoint;
      this.log.info({ treeSize: this.tree.size, checkpointSize: checkpoint.size, origin: this.opts.origin }, 'audit log rebuilt; consistent with its last signed checkpoint');
    } catch (err) {
      const e = toBulwarkError(err, 'INTERNAL', 'the last audit checkpoint cannot be checked');
      this.flag(e.code === 'MERKLE_PROOF_INVALID' ? rewritten(`the audit stream was rewritten: ${e.message}`, { checkpointSize: latest.stored.size }, e) : e);
    }
  }

  /** Signs when due: the tree grew, and `records` records were appended or `intervalMs` passed. */
  private async tick(): Promise<void> {
    if (this.signing || this.closed) return;
    const grown = this.tree.size - (this.signed?.size ?? 0);
    const due = grown > 0 && (grown >= this.opts.records || Date.now() - this.lastSignedAt >= this.opts.intervalMs);
    this.signing = true;
    try {
      // Every tick, due or not: a rewrite is found (and said) without waiting for the log to grow.
      if (this.problemError === null) await this.checkStream();
      if (!due) return;
      if (!(await this.opts.lease.tryAcquire())) return;
      await this.signCheckpoint();
    } catch (err) {
      if (!this.closed && !(err instanceof BulwarkError && err === this.problemError)) this.log.warn(errorFields(err), 'audit checkpoint not signed');
    } finally {
      if (due) this.lastSignedAt = Date.now();
      this.signing = false;
    }
  }

  /** The stream must still hold every record from sequence 1 on, without gaps, in the stream this log read. */
  private async checkStream(): Promise<void> {
    const info = await this.jsm.streams.info(AUDIT_STREAM);
    const { first_seq: first, num_deleted: deleted = 0 } = info.state;
    if (info.created !== this.streamCreated) this.flag(rewritten('the audit stream was deleted and created again'));
    else if (first > 1) this.flag(rewritten(`audit stream records 0..${first - 2} are gone (purged, deleted or aged out)`, { index: 0, firstSequence: first }));
    else if (deleted > 0) this.flag(rewritten(`${deleted} audit record(s) were deleted from the audit stream`, { deleted }));
  }

  /**
   * Signs a checkpoint of the whole tree now (the caller holds the lease), after checking
   * the stream and that the tree extends the latest stored checkpoint; returns it, or null
   * when the latest is already this size. AUDIT_LOG_REWRITTEN when the log was rewritten.
   */
  async signCheckpoint(): Promise<StoredCheckpoint | null> {
    if (this.problemError !== null) throw this.problemError;
    await this.checkStream();
    if (this.problemError !== null) throw this.problemError;
    const latest = await this.readLatest();
    if (latest !== null) {
      try {
        const checkpoint = this.checkStored(latest.stored);
        if (checkpoint.size > this.tree.size) return null; // another replica is ahead: catch up first
        this.tree.checkExtends(checkpoint);
        this.signed = checkpoint;
      } catch (err) {
        const e = toBulwarkError(err, 'INTERNAL', 'the last audit checkpoint cannot be checked');
        this.flag(e.code === 'MERKLE_PROOF_INVALID' ? rewritten(`the audit tree does not extend the last signed checkpoint: ${e.message}`, {}, e) : e);
        throw this.problemError ?? e;
      }
    }
    const size = this.tree.size;
    if (size <= (latest?.stored.size ?? 0) && latest !== null) return null;
    const text = formatCheckpointText({ origin: this.opts.origin, size, rootHash: this.tree.rootHash(size), extensions: [] });
    const note = await signNote(text, [this.noteSigner]);
    // A signer that signs with another key than it claims (a wrong HSM object) is caught here.
    const { checkpoint } = verifyCheckpoint(note, [this.verifier], this.opts.origin);
    const stored: StoredCheckpoint = { version: 1, note, size, signedBy: this.opts.holder, at: new Date().toISOString() };
    const bytes = enc.encode(JSON.stringify(stored));
    try {
      await this.kv.create(sizeKey(size), bytes);
    } catch (err) {
      // Another replica stored this size first: adopt it when it is the same tree.
      const other = await this.kv.get(sizeKey(size));
      if (other === null || other.operation !== 'PUT') throw toBulwarkError(err, 'NATS_FAILED', `cannot store the audit checkpoint of size ${size}`);
      const theirs = this.checkStored(STORED_CHECKPOINT.parseJson(other.value, `${CHECKPOINTS_BUCKET}/${sizeKey(size)}`));
      this.tree.checkExtends(theirs);
      return null;
    }
    try {
      if (latest === null) await this.kv.create(LATEST_KEY, bytes);
      else await this.kv.update(LATEST_KEY, bytes, latest.revision);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'another replica moved the latest audit checkpoint meanwhile');
    }
    this.signed = checkpoint;
    this.log.info({ size, origin: this.opts.origin }, 'signed an audit checkpoint');
    return stored;
  }

  /** The latest signed checkpoint, the public key, and what stops signing. */
  async state(): Promise<AuditCheckpointState> {
    let checkpoint: StoredCheckpoint | null;
    try {
      checkpoint = (await this.readLatest())?.stored ?? null;
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot read the latest audit checkpoint');
    }
    const publicKeyPem = this.opts.signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    return { checkpoint, publicKeyPem, treeSize: this.tree.size, problem: this.problemError };
  }

  /**
   * A bundle of records [from, to) (to: the latest checkpoint's size) with inclusion proofs
   * in the latest signed checkpoint, and the consistency proof from the stored checkpoint of
   * size `previousSize` when given. Records are read from the stream as it is now, by
   * position: an edited or missing record is exported as found (a position the stream no
   * longer holds as an empty record), so verifying the bundle names it.
   */
  async exportBundle(from: number, to: number | undefined, previousSize: number | undefined): Promise<AuditBundle> {
    const latest = await this.readLatest();
    if (latest === null) throw new BulwarkError('AUDIT_CHECKPOINT_MISSING', 'no audit checkpoint has been signed yet');
    const checkpoint = this.checkStored(latest.stored);
    const end = to ?? checkpoint.size;
    if (!Number.isSafeInteger(from) || from < 0 || end <= from || end > checkpoint.size) {
      throw new BulwarkError('USAGE', `the records to export must lie within the latest checkpoint (0..${checkpoint.size - 1}): asked ${from}..${end - 1}`, { size: checkpoint.size });
    }
    if (end - from > AUDIT_EXPORT_MAX_RECORDS) throw new BulwarkError('USAGE', `at most ${AUDIT_EXPORT_MAX_RECORDS} records per export`, { asked: end - from });
    if (checkpoint.size > this.tree.size) throw new BulwarkError('AUDIT_CHECKPOINT_MISSING', 'this replica has not read every record of the latest checkpoint yet');
    let previous: { text: string; size: number } | undefined;
    if (previousSize !== undefined) {
      if (previousSize > checkpoint.size) throw new BulwarkError('USAGE', `the earlier checkpoint size ${previousSize} is past the latest (${checkpoint.size})`);
      const entry = await this.kv.get(sizeKey(previousSize));
      if (entry === null || entry.operation !== 'PUT') throw new BulwarkError('AUDIT_CHECKPOINT_MISSING', `no audit checkpoint of size ${previousSize} was signed`, { size: previousSize });
      const stored = STORED_CHECKPOINT.parseJson(entry.value, `${CHECKPOINTS_BUCKET}/${sizeKey(previousSize)}`);
      previous = { text: stored.note, size: stored.size };
    }
    const records = await this.readRecords(from, end);
    return buildAuditBundle(this.tree, { firstIndex: from, records, checkpoint: { text: latest.stored.note, size: checkpoint.size }, ...(previous === undefined ? {} : { previous }) });
  }

  /** The records at positions [from, end) of the stream as it is now (an empty record where it holds none). */
  private async readRecords(from: number, end: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    try {
      const info = await this.jsm.streams.info(AUDIT_STREAM);
      if (info.state.messages === 0) return Array.from({ length: end - from }, () => new Uint8Array(0));
      // A stream without gaps holds position i at sequence i + 1: start there; else count from the first.
      const clean = info.state.first_seq === 1 && (info.state.num_deleted ?? 0) === 0;
      let position = clean ? from : 0;
      const consumer = await this.js.consumers.get(AUDIT_STREAM, { opt_start_seq: clean ? from + 1 : 1 });
      while (position < end) {
        const batch = await consumer.fetch({ max_messages: Math.min(256, end - position), expires: 5000 });
        let got = 0;
        let pending = 1;
        for await (const m of batch) {
          got++;
          pending = m.info.pending;
          if (position >= from && position < end) out.push(m.data);
          position++;
          if (position >= end) break;
        }
        if (got === 0 || pending === 0) break;
      }
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot read the audit stream');
    }
    while (out.length < end - from) out.push(new Uint8Array(0));
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.messages?.stop();
    await this.opts.lease.release();
    await this.opts.signer.close?.();
  }
}
