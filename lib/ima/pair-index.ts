/**
 * The (path, digest) pairs a runtime policy allows, packed for lookups at list speed: an
 * open-addressing table whose slots hold each pair's digest inline, keyed by the digest's
 * first bytes (a digest is uniformly distributed: its own best hash), and the path bytes in
 * one contiguous array. A lookup that hits reads one slot (lengths and digest on the same
 * cache line for SHA-256) and the path: no string hashing, no pointer chasing through
 * per-path objects. Internal to lib/ima.
 */
import { dataViewOf, DecodedImaEntry } from './fields.js';
import type { ImaEntry } from './types.js';

/** Bytes per slot: 16 of header (pair number + 1, digest length, path offset, path length), 112 of digest. */
const SLOT_BYTES = 128;
const HEADER_BYTES = 16;
const DIGEST_MAX = SLOT_BYTES - HEADER_BYTES;

export class AllowedPairIndex {
  /** The slots, SLOT_BYTES each: u32 used (pair + 1, 0 = empty), u32 digest length, u32 path offset, u32 path length, digest. */
  private readonly slots: DataView;
  private readonly paths: DataView;
  private readonly mask: number;

  constructor(pairs: readonly (readonly [path: string, digest: Uint8Array])[]) {
    const n = pairs.length;
    let pathBytes = 0;
    for (let i = 0; i < n; i++) {
      const pair = pairs[i];
      if (pair !== undefined) pathBytes += Buffer.byteLength(pair[0], 'utf8');
    }
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.mask = size - 1;
    const slotBytes = new Uint8Array(size * SLOT_BYTES);
    const slots = dataViewOf(slotBytes);
    this.slots = slots;
    const paths = Buffer.alloc(pathBytes);
    this.paths = dataViewOf(paths);
    let pAt = 0;
    // The same path string is listed once per digest: encode it once.
    let lastPath: string | undefined;
    let lastAt = 0;
    let lastLen = 0;
    for (let i = 0; i < n; i++) {
      const pair = pairs[i];
      if (pair === undefined) continue;
      const [p, d] = pair;
      // Policy digests are validated to the sizes of known algorithms (at most 64 bytes).
      if (d.length < 4 || d.length > DIGEST_MAX) continue;
      if (p !== lastPath) {
        lastPath = p;
        lastAt = pAt;
        lastLen = paths.write(p, pAt, 'utf8');
        pAt += lastLen;
      }
      let slot = keyOf(dataViewOf(d), 0) & this.mask;
      while (slots.getUint32(slot * SLOT_BYTES, true) !== 0) slot = (slot + 1) & this.mask;
      const at = slot * SLOT_BYTES;
      slots.setUint32(at, i + 1, true);
      slots.setUint32(at + 4, d.length, true);
      slots.setUint32(at + 8, lastAt, true);
      slots.setUint32(at + 12, lastLen, true);
      slotBytes.set(d, at + HEADER_BYTES);
    }
  }

  /** Whether the pair (digest at dv[dAt, +dLen), name at pv[pAt, +pLen)) is listed. */
  private lookup(dv: DataView, dAt: number, dLen: number, pv: DataView, pAt: number, pLen: number): boolean {
    // Every digest algorithm makes at least 16 bytes; a shorter one is listed nowhere (and has no key).
    if (dLen < 4 || dLen > DIGEST_MAX) return false;
    const slots = this.slots;
    let slot = keyOf(dv, dAt) & this.mask;
    for (;;) {
      const at = slot * SLOT_BYTES;
      if (slots.getUint32(at, true) === 0) return false;
      if (
        slots.getUint32(at + 4, true) === dLen &&
        slots.getUint32(at + 12, true) === pLen &&
        sameRange(slots, at + HEADER_BYTES, dv, dAt, dLen) &&
        sameRange(this.paths, slots.getUint32(at + 8, true), pv, pAt, pLen)
      ) {
        return true;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Whether the entry's (event name, digest) is a listed pair, compared byte for byte. */
  has(e: ImaEntry): boolean {
    if (e instanceof DecodedImaEntry) {
      const dAt = e.digestAt;
      const pAt = e.pathAt;
      return this.lookup(e.srcView, dAt, e.digestEnd - dAt, e.srcView, pAt, e.pathEnd - pAt);
    }
    const d = e.digest;
    const p = e.pathBytes;
    return this.lookup(dataViewOf(d), 0, d.length, dataViewOf(p), 0, p.length);
  }
}

/** a[aAt, +len) === b[bAt, +len), four bytes at a time. */
function sameRange(a: DataView, aAt: number, b: DataView, bAt: number, len: number): boolean {
  let j = 0;
  for (; j + 4 <= len; j += 4) if (a.getUint32(aAt + j, true) !== b.getUint32(bAt + j, true)) return false;
  for (; j < len; j++) if (a.getUint8(aAt + j) !== b.getUint8(bAt + j)) return false;
  return true;
}

/** The digest's first four bytes as a non-negative integer (only the low bits pick a slot). */
function keyOf(v: DataView, at: number): number {
  return (v.getUint32(at, true) & 0x7fffffff) >>> 0;
}
