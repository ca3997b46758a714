/**
 * A lease in JetStream KV: at most one replica at a time holds it (revision-checked
 * writes), renews it while alive, and another takes it over once it has expired. Used for
 * work that must not run twice (scheduling challenges, sweeping stale nodes, Nomad).
 */
import type { KV } from 'nats';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface LeaseValue {
  readonly holder: string;
  readonly expiresAt: number;
}

function decodeLease(bytes: Uint8Array): LeaseValue | null {
  try {
    const v: unknown = JSON.parse(dec.decode(bytes));
    if (typeof v !== 'object' || v === null) return null;
    const holder: unknown = Reflect.get(v, 'holder');
    const expiresAt: unknown = Reflect.get(v, 'expiresAt');
    return typeof holder === 'string' && typeof expiresAt === 'number' ? { holder, expiresAt } : null;
  } catch {
    return null;
  }
}

export class KvLease {
  private readonly kv: KV;
  private readonly name: string;
  private readonly holder: string;
  private readonly ttlMs: number;

  constructor(kv: KV, name: string, holder: string, ttlMs: number) {
    this.kv = kv;
    this.name = name;
    this.holder = holder;
    this.ttlMs = ttlMs;
  }

  /** Takes or renews the lease; true when this replica holds it until now + ttl. */
  async tryAcquire(now = Date.now()): Promise<boolean> {
    const value = enc.encode(JSON.stringify({ holder: this.holder, expiresAt: now + this.ttlMs } satisfies LeaseValue));
    try {
      const entry = await this.kv.get(this.name);
      if (entry === null || entry.operation !== 'PUT') {
        if (entry === null) await this.kv.create(this.name, value);
        else await this.kv.update(this.name, value, entry.revision);
        return true;
      }
      const current = decodeLease(entry.value);
      if (current !== null && current.holder !== this.holder && current.expiresAt > now) return false;
      await this.kv.update(this.name, value, entry.revision);
      return true;
    } catch {
      // Lost a race with another replica, or NATS is unavailable: not the holder now.
      return false;
    }
  }

  /** Gives the lease up so another replica can take it at once. */
  async release(): Promise<void> {
    try {
      const entry = await this.kv.get(this.name);
      if (entry === null || entry.operation !== 'PUT') return;
      const current = decodeLease(entry.value);
      if (current?.holder === this.holder) await this.kv.delete(this.name, { previousSeq: entry.revision });
    } catch {
      // Expiry hands it over anyway.
    }
  }
}
