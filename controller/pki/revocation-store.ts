/**
 * The revocation list in JetStream KV (`bulwark_revocations`, one key per serial), kept in
 * memory by every replica from a watch of the bucket: a revocation written by one replica
 * reaches every other as fast as NATS delivers it, and the gRPC interceptor reads the
 * in-memory list on every call. A grow-only set: entries are only added.
 */
import { Type } from '@sinclair/typebox';
import { StorageType, type JetStreamManager, type KV, type NatsConnection } from 'nats';
import { toBulwarkError } from '../../lib/index.js';
import { emptyRevocationList, normalizeSerial, revokeCertificate, type RevocationList, type RevokedCertificate } from '../../lib/pki/index.js';
import { defineDocument } from '../../lib/schema/index.js';
import { errorFields, silentLogger, type Logger } from '../../daemon/index.js';
import { bucketKeys, kvLimits } from '../state/index.js';

/** The KV bucket of revoked serials. */
export const REVOCATIONS_BUCKET = 'bulwark_revocations';
/** The KV bucket of people's certificates issued through the API (serial → name), for revoke NAME. */
export const ISSUED_BUCKET = 'bulwark_credentials';

const IssuedCredentialSchema = Type.Object(
  {
    version: Type.Literal(1),
    serial: Type.String({ pattern: '^[0-9a-f]{1,42}$' }),
    name: Type.String({ maxLength: 64 }),
    role: Type.String({ maxLength: 16 }),
    notAfter: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
const ISSUED_CREDENTIAL = defineDocument(IssuedCredentialSchema, 'issued credential record', 'STORE_CORRUPT');

const StoredRevocationSchema = Type.Object(
  {
    version: Type.Literal(1),
    serial: Type.String({ pattern: '^[0-9a-f]{1,42}$' }),
    revokedAt: Type.Integer({ minimum: 0 }),
    notAfter: Type.Integer({ minimum: 0 }),
    subject: Type.String({ maxLength: 200 }),
  },
  { additionalProperties: false },
);
const STORED_REVOCATION = defineDocument(StoredRevocationSchema, 'stored revocation', 'STORE_CORRUPT');

/** Every replica's view of the revocation list. Trust: as trusted as the KV bucket. */
export class RevocationStore {
  private list: RevocationList = emptyRevocationList();
  private stopWatch: (() => void) | null = null;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly kv: KV,
    private readonly issued: KV,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
  ) {}

  /** Opens the bucket and returns once the stored list has been read; the watch goes on until close(). */
  static async open(nc: NatsConnection, opts: { readonly log?: Logger } = {}): Promise<RevocationStore> {
    let kv: KV;
    let issued: KV;
    let jsm: JetStreamManager;
    try {
      jsm = await nc.jetstreamManager({ checkAPI: false });
      kv = await nc.jetstream().views.kv(REVOCATIONS_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits('bulwark_revocations') });
      issued = await nc.jetstream().views.kv(ISSUED_BUCKET, { history: 1, storage: StorageType.File, ...kvLimits('bulwark_credentials') });
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', `cannot open the KV buckets ${REVOCATIONS_BUCKET} and ${ISSUED_BUCKET}`);
    }
    const store = new RevocationStore(kv, issued, jsm, opts.log ?? silentLogger());
    await store.startWatch();
    return store;
  }

  private async startWatch(): Promise<void> {
    let initialized: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      initialized = resolve;
    });
    const iter = await this.kv.watch({ initializedFn: () => initialized() });
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        if (e.operation !== 'PUT') continue;
        try {
          const r = STORED_REVOCATION.parseJson(e.value, `${REVOCATIONS_BUCKET}/${e.key}`);
          this.list = revokeCertificate(this.list, { serial: r.serial, revokedAt: r.revokedAt, notAfter: r.notAfter, subject: r.subject });
          for (const l of this.listeners) l();
        } catch (err) {
          // A record this version cannot read revokes nothing it could name; it is reported.
          this.log.error({ key: e.key, ...errorFields(err) }, 'cannot read a stored revocation');
        }
      }
    })();
    await ready;
  }

  /** The list as this replica knows it now. */
  current(): RevocationList {
    return this.list;
  }

  /** Runs `fn` after every revocation this replica learns of (tests wait on it). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Stores a revocation (idempotent: revoking a serial again keeps the first). */
  async revoke(entry: RevokedCertificate): Promise<void> {
    const serial = normalizeSerial(entry.serial);
    const existing = await this.kv.get(serial).catch(() => null);
    if (existing !== null && existing.operation === 'PUT' && existing.value.length > 0) return;
    try {
      await this.kv.put(serial, new TextEncoder().encode(JSON.stringify({ version: 1, serial, revokedAt: entry.revokedAt, notAfter: entry.notAfter, subject: entry.subject.slice(0, 200) })));
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot store the revocation');
    }
  }

  /** Records a person's certificate issued through the API, so it can be revoked by name. */
  async recordIssued(entry: { readonly serial: string; readonly name: string; readonly role: string; readonly notAfter: number }): Promise<void> {
    const serial = normalizeSerial(entry.serial);
    try {
      await this.issued.put(serial, new TextEncoder().encode(JSON.stringify({ version: 1, serial, name: entry.name, role: entry.role, notAfter: entry.notAfter })));
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot record the issued credential');
    }
  }

  /** The unexpired certificates recorded for `name`. */
  async issuedTo(name: string, now: number): Promise<{ serial: string; notAfter: number }[]> {
    const out: { serial: string; notAfter: number }[] = [];
    try {
      for (const key of await bucketKeys(this.jsm, ISSUED_BUCKET)) {
        const e = await this.issued.get(key);
        if (e === null || e.operation !== 'PUT') continue;
        try {
          const r = ISSUED_CREDENTIAL.parseJson(e.value, `${ISSUED_BUCKET}/${key}`);
          if (r.name === name && r.notAfter >= now) out.push({ serial: r.serial, notAfter: r.notAfter });
        } catch (err) {
          this.log.error({ key, ...errorFields(err) }, 'cannot read an issued credential record');
        }
      }
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot list issued credentials');
    }
    return out;
  }

  /** The notAfter recorded for a serial (null when it was not issued through the API). */
  async issuedNotAfter(serial: string): Promise<number | null> {
    const e = await this.issued.get(normalizeSerial(serial)).catch(() => null);
    if (e === null || e.operation !== 'PUT') return null;
    try {
      return ISSUED_CREDENTIAL.parseJson(e.value).notAfter;
    } catch {
      return null;
    }
  }

  close(): void {
    this.stopWatch?.();
    this.stopWatch = null;
    this.listeners.clear();
  }
}
