/**
 * Trusted key sets in JetStream KV `bulwark_keysets`: `current.<kind>` holds the envelope
 * of the set in force, `set.<kind>.<serial>` every set ever accepted (a stored policy is
 * re-verified under the set it was accepted with). The first set of a kind is installed by
 * an admin (create: refused when one exists); a rotation is decided by acceptKeySet
 * (threshold of the current set and of the new one, serial above) and written with the
 * revision it was decided against, so two concurrent rotations cannot both win. Every
 * install, rotation and refusal is audited.
 */
import { createHash } from 'node:crypto';
import { StorageType, type JetStreamClient, type KV } from 'nats';
import { BulwarkError, toBulwarkError } from '../../lib/index.js';
import { acceptKeySet, isKeySetKind, trustKeySet, KEYSET_KINDS, type KeySet, type KeySetKind } from '../../lib/signing/index.js';
import { STREAM_LIMITS, enforceStreamLimits, kvLimits, type AdminAudit } from '../state/index.js';

export const KEYSET_BUCKET = 'bulwark_keysets' as const;

/** A key set in force: the accepted set, its stored envelope and the KV revision of `current.<kind>`. */
export interface CurrentKeySet {
  readonly keyset: KeySet;
  readonly envelope: Uint8Array;
  readonly sha256: string;
  readonly revision: number;
}

/** Checks a kind name from a request: USAGE for one that has no key set. */
export function checkKeySetKind(kind: string): KeySetKind {
  if (!isKeySetKind(kind)) throw new BulwarkError('USAGE', `unknown key set kind ${JSON.stringify(kind.slice(0, 40))}; known: ${KEYSET_KINDS.join(', ')}`);
  return kind;
}

export class KeySetStore {
  private readonly kv: KV;
  private readonly audit: AdminAudit | null;
  /** Sets read back, by sha256 of their stored envelope (checked once per content). */
  private readonly cache = new Map<string, KeySet>();
  /** The history's serials per kind, listed for the current set of that sha256. */
  private readonly serialLists = new Map<KeySetKind, { readonly current: string; readonly serials: number[] }>();

  private constructor(kv: KV, audit: AdminAudit | null) {
    this.kv = kv;
    this.audit = audit;
  }

  static async open(js: JetStreamClient, audit: AdminAudit | null): Promise<KeySetStore> {
    try {
      const kv = await js.views.kv(KEYSET_BUCKET, { history: 10, storage: StorageType.File, ...kvLimits(KEYSET_BUCKET) });
      await enforceStreamLimits(await js.jetstreamManager(), `KV_${KEYSET_BUCKET}`, STREAM_LIMITS[KEYSET_BUCKET]);
      return new KeySetStore(kv, audit);
    } catch (err) {
      throw toBulwarkError(err, 'NATS_FAILED', 'cannot open the key set bucket');
    }
  }

  /** A stored envelope checked again (self-signed to its threshold); STORE_CORRUPT-like codes fail closed. */
  private trusted(kind: KeySetKind, bytes: Uint8Array): { keyset: KeySet; sha256: string } {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let keyset = this.cache.get(sha256);
    if (keyset === undefined) {
      keyset = trustKeySet(kind, bytes);
      if (this.cache.size > 64) this.cache.clear();
      this.cache.set(sha256, keyset);
    }
    return { keyset, sha256 };
  }

  /** The set in force for `kind`, or null when none was installed. */
  async current(kind: KeySetKind): Promise<CurrentKeySet | null> {
    const entry = await this.kv.get(`current.${kind}`);
    if (entry === null || entry.operation !== 'PUT') return null;
    const { keyset, sha256 } = this.trusted(kind, entry.value);
    return { keyset, envelope: entry.value, sha256, revision: entry.revision };
  }

  /** The set in force, or KEYSET_MISSING (what a signed push of that kind is refused with). */
  async require(kind: KeySetKind): Promise<CurrentKeySet> {
    const current = await this.current(kind);
    if (current === null) {
      throw new BulwarkError('KEYSET_MISSING', `no trusted ${kind} key set: documents of this kind are refused until an admin installs one (bulwarkctl keys init ${kind} ENVELOPE)`, { kind });
    }
    return current;
  }

  /** The set of `kind` with `serial` (the one a stored document was accepted under), or null. */
  async bySerial(kind: KeySetKind, serial: number): Promise<KeySet | null> {
    const entry = await this.kv.get(`set.${kind}.${serial}`);
    if (entry === null || entry.operation !== 'PUT') return null;
    const { keyset } = this.trusted(kind, entry.value);
    if (keyset.document.serial !== serial) throw new BulwarkError('STORE_CORRUPT', `${KEYSET_BUCKET}/set.${kind}.${serial} holds serial ${keyset.document.serial}`);
    return keyset;
  }

  /**
   * The envelopes of `kind` accepted after `serial`, oldest first (the rotations a holder of
   * set `serial` walks to reach the current one, lib/signing acceptKeySetChain), at most
   * `maxCount` of them and `maxBytes` together: the rest follows once the holder reports the
   * serial it reached. Empty when `serial` is current (or ahead: the holder refuses a rollback anyway).
   */
  async chainAfter(kind: KeySetKind, serial: number, maxCount: number, maxBytes: number): Promise<Uint8Array[]> {
    const current = await this.current(kind);
    if (current === null || current.keyset.document.serial <= serial) return [];
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (const s of await this.serials(kind, current.sha256)) {
      if (s <= serial) continue;
      if (out.length >= maxCount) break;
      const entry = await this.kv.get(`set.${kind}.${s}`);
      if (entry === null || entry.operation !== 'PUT') continue;
      if (bytes + entry.value.length > maxBytes) break;
      out.push(entry.value);
      bytes += entry.value.length;
    }
    return out;
  }

  /** The serials of `kind` in the history (`set.<kind>.<serial>`), ascending; listed again when the current set changed. */
  private async serials(kind: KeySetKind, currentSha256: string): Promise<number[]> {
    const cached = this.serialLists.get(kind);
    if (cached !== undefined && cached.current === currentSha256) return cached.serials;
    const serials: number[] = [];
    const prefix = `set.${kind}.`;
    for await (const key of await this.kv.keys(`${prefix}*`)) {
      const n = Number(key.slice(prefix.length));
      if (Number.isSafeInteger(n) && n > 0) serials.push(n);
    }
    serials.sort((a, b) => a - b);
    this.serialLists.set(kind, { current: currentSha256, serials });
    return serials;
  }

  /**
   * Installs (`init`: only when the kind has no set) or rotates (only when it has one) the
   * key set of `kind`; refusals are audited with their code, then thrown.
   */
  async put(kind: KeySetKind, envelope: Uint8Array, init: boolean, actor: string, now = Date.now()): Promise<CurrentKeySet> {
    const action = init ? 'keys.init' : 'keys.rotate';
    let current: CurrentKeySet | null = null;
    let accepted: KeySet;
    try {
      current = await this.current(kind);
      if (init && current !== null) {
        throw new BulwarkError('KEYSET_EXISTS', `a ${kind} key set (serial ${current.keyset.document.serial}) is installed: rotate it (bulwarkctl keys rotate) instead`, { kind });
      }
      if (!init && current === null) throw new BulwarkError('KEYSET_MISSING', `no ${kind} key set to rotate: install the first with bulwarkctl keys init`, { kind });
      const decided = acceptKeySet(kind, current?.keyset ?? null, envelope, now);
      if (decided instanceof BulwarkError) throw decided;
      accepted = decided;
    } catch (err) {
      const e = toBulwarkError(err, 'INTERNAL', 'the key set could not be decided');
      await this.audit?.record('keys.refused', kind, { kind, init, code: e.code, message: e.message.slice(0, 1000), by: actor }, now);
      throw e;
    }
    const serial = accepted.document.serial;
    const sha256 = createHash('sha256').update(envelope).digest('hex');
    // Audited before it takes effect: a change that cannot be recorded is not made.
    await this.audit?.record(action, kind, { kind, serial, threshold: accepted.document.threshold, keys: accepted.document.keys.map((k) => k.keyid).join(','), sha256, by: actor }, now);
    let revision: number;
    try {
      revision = current === null ? await this.kv.create(`current.${kind}`, envelope) : await this.kv.update(`current.${kind}`, envelope, current.revision);
    } catch (err) {
      // create/update carry the revision the decision was made against: another rotation won.
      if (err instanceof Error && /wrong last sequence|exists/i.test(err.message)) {
        throw new BulwarkError('KEYSET_ROLLBACK', `the ${kind} key set changed while this one was decided: read it again and retry`, { kind }, { cause: err });
      }
      throw toBulwarkError(err, 'NATS_FAILED', `cannot store the ${kind} key set`);
    }
    try {
      await this.kv.put(`set.${kind}.${serial}`, envelope);
    } catch (err) {
      // Documents accepted under this serial cannot be re-verified without it: they fail closed on read.
      throw toBulwarkError(err, 'NATS_FAILED', `stored the ${kind} key set but not its history entry set.${kind}.${serial}`);
    }
    return { keyset: accepted, envelope, sha256, revision };
  }
}
