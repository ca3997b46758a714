/**
 * A lease in JetStream KV: at most one replica at a time holds it (revision-checked
 * writes), renews it while alive, and another takes it over once it has expired. Used for
 * work that must not run twice (scheduling challenges, sweeping stale nodes, Nomad).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { KV } from 'nats';
import { BulwarkError } from '../../lib/index.js';
import { corruptPath } from '../../lib/attestation/index.js';
import { defineDocument } from '../../lib/schema/index.js';
import { silentLogger, type Logger } from '../../daemon/index.js';

const enc = new TextEncoder();

/** A lease as stored (KV `bulwark_leases`); written without `version` before it existed. */
export const LeaseRecordSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    holder: Type.String({ maxLength: 256 }),
    expiresAt: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export type LeaseRecord = Static<typeof LeaseRecordSchema>;

const LEASE_RECORD = defineDocument(LeaseRecordSchema, 'stored lease', 'STORE_CORRUPT');

/** Decodes a stored lease: STORE_CORRUPT naming the JSON path when it does not. */
export function decodeLease(bytes: Uint8Array, name: string): LeaseRecord {
  return LEASE_RECORD.parseJson(bytes, `bulwark_leases/${name}`);
}

export class KvLease {
  private readonly kv: KV;
  private readonly name: string;
  private readonly holder: string;
  private readonly ttlMs: number;
  private readonly log: Logger;
  /** Until when this replica holds the lease by its last successful tryAcquire (ms); 0: not held. */
  private heldUntil = 0;

  constructor(kv: KV, name: string, holder: string, ttlMs: number, log: Logger = silentLogger()) {
    this.log = log;
    this.kv = kv;
    this.name = name;
    this.holder = holder;
    this.ttlMs = ttlMs;
  }

  /** The lease's name (its KV key). */
  get leaseName(): string {
    return this.name;
  }

  /** Whether this replica holds the lease now, by its last tryAcquire (metrics, status). */
  held(now = Date.now()): boolean {
    return this.heldUntil > now;
  }

  /** The lease as stored now: its holder and expiry; null when nobody holds it or it does not decode. */
  async current(): Promise<LeaseRecord | null> {
    const entry = await this.kv.get(this.name);
    if (entry === null || entry.operation !== 'PUT') return null;
    return this.read(entry.value);
  }

  /** Takes or renews the lease; true when this replica holds it until now + ttl. */
  async tryAcquire(now = Date.now()): Promise<boolean> {
    const held = await this.acquire(now);
    this.heldUntil = held ? now + this.ttlMs : 0;
    return held;
  }

  private async acquire(now: number): Promise<boolean> {
    const value = enc.encode(JSON.stringify({ version: 1, holder: this.holder, expiresAt: now + this.ttlMs } satisfies LeaseRecord));
    try {
      const entry = await this.kv.get(this.name);
      if (entry === null || entry.operation !== 'PUT') {
        if (entry === null) await this.kv.create(this.name, value);
        else await this.kv.update(this.name, value, entry.revision);
        return true;
      }
      const current = this.read(entry.value);
      // A lease that does not decode names no holder to wait for: it is taken over (revision-checked, so by one replica).
      if (current !== null && current.holder !== this.holder && current.expiresAt > now) return false;
      await this.kv.update(this.name, value, entry.revision);
      return true;
    } catch {
      // Lost a race with another replica, or NATS is unavailable: not the holder now.
      return false;
    }
  }

  /** The stored lease, or null (with a warn line) when it does not decode. */
  private read(bytes: Uint8Array): LeaseRecord | null {
    try {
      return decodeLease(bytes, this.name);
    } catch (err) {
      const error = err instanceof BulwarkError ? err : new BulwarkError('STORE_CORRUPT', 'stored lease does not decode', {}, { cause: err });
      this.log.warn({ lease: this.name, path: corruptPath(error), error: error.message }, 'stored lease is corrupt: it is taken over');
      return null;
    }
  }

  /** Gives the lease up so another replica can take it at once. */
  async release(): Promise<void> {
    this.heldUntil = 0;
    try {
      const entry = await this.kv.get(this.name);
      if (entry === null || entry.operation !== 'PUT') return;
      const current = this.read(entry.value);
      if (current?.holder === this.holder) await this.kv.delete(this.name, { previousSeq: entry.revision });
    } catch {
      // Expiry hands it over anyway.
    }
  }
}
