/**
 * The (path, digest) pairs a runtime policy allows, packed for lookups at list speed:
 * digests and path bytes in two contiguous arrays and an open-addressing table keyed by the
 * digest's first bytes (a digest is uniformly distributed: its own best hash). A lookup is
 * a few array reads and two byte comparisons, no string hashing and no pointer chasing
 * through per-path objects. Internal to lib/ima.
 */
import { DecodedImaEntry } from './fields.js';
import type { ImaEntry } from './types.js';

export class AllowedPairIndex {
  private readonly digests: Uint8Array;
  private readonly paths: Uint8Array;
  /** Per pair, side by side (one cache line per lookup): digest offset, digest length, path offset, path length. */
  private readonly meta: Int32Array;
  /** Slot → pair index + 1; 0 is empty. Linear probing. */
  private readonly table: Int32Array;
  private readonly mask: number;

  constructor(pairs: readonly (readonly [path: string, digest: Uint8Array])[]) {
    const n = pairs.length;
    let digestBytes = 0;
    let pathBytes = 0;
    for (let i = 0; i < n; i++) {
      const pair = pairs[i];
      if (pair === undefined) continue;
      digestBytes += pair[1].length;
      pathBytes += Buffer.byteLength(pair[0], 'utf8');
    }
    this.digests = new Uint8Array(digestBytes);
    const paths = Buffer.alloc(pathBytes);
    this.paths = paths;
    const meta = new Int32Array(4 * n);
    this.meta = meta;
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    let dAt = 0;
    let pAt = 0;
    // The same path string is listed once per digest: encode it once.
    let lastPath: string | undefined;
    let lastAt = 0;
    let lastLen = 0;
    for (let i = 0; i < n; i++) {
      const pair = pairs[i];
      if (pair === undefined) continue;
      const [p, d] = pair;
      this.digests.set(d, dAt);
      meta[4 * i] = dAt;
      meta[4 * i + 1] = d.length;
      dAt += d.length;
      if (p !== lastPath) {
        lastPath = p;
        lastAt = pAt;
        lastLen = paths.write(p, pAt, 'utf8');
        pAt += lastLen;
      }
      meta[4 * i + 2] = lastAt;
      meta[4 * i + 3] = lastLen;
      let slot = keyOf(d, 0) & this.mask;
      while ((this.table[slot] ?? 0) !== 0) slot = (slot + 1) & this.mask;
      this.table[slot] = i + 1;
    }
  }

  /** Whether the pair (src[pathAt, +pathLen), src2[digestAt, +digestLen)) is listed. */
  private lookup(ds: Uint8Array, dAt: number, dLen: number, ps: Uint8Array, pAt: number, pLen: number): boolean {
    let slot = keyOf(ds, dAt) & this.mask;
    for (;;) {
      const k = this.table[slot] ?? 0;
      if (k === 0) return false;
      const m = 4 * (k - 1);
      const meta = this.meta;
      if (meta[m + 1] === dLen && meta[m + 3] === pLen) {
        const da = meta[m] ?? 0;
        let same = true;
        for (let j = 0; j < dLen; j++) {
          if (this.digests[da + j] !== ds[dAt + j]) {
            same = false;
            break;
          }
        }
        if (same) {
          const pa = meta[m + 2] ?? 0;
          for (let j = 0; j < pLen; j++) {
            if (this.paths[pa + j] !== ps[pAt + j]) {
              same = false;
              break;
            }
          }
          if (same) return true;
        }
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Whether the entry's (event name, digest) is a listed pair, compared byte for byte. */
  has(e: ImaEntry): boolean {
    if (e instanceof DecodedImaEntry) return this.lookup(e.src, e.digestAt, e.digestEnd - e.digestAt, e.src, e.pathAt, e.pathEnd - e.pathAt);
    const d = e.digest;
    const p = e.pathBytes;
    return this.lookup(d, 0, d.length, p, 0, p.length);
  }
}

/** The digest's first four bytes as a non-negative integer (only the low bits pick a slot). */
function keyOf(d: Uint8Array, at: number): number {
  return ((d[at] ?? 0) | ((d[at + 1] ?? 0) << 8) | ((d[at + 2] ?? 0) << 16) | (((d[at + 3] ?? 0) & 0x7f) << 24)) >>> 0;
}
