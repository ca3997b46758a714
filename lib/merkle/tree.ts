/**
 * An append-only RFC 6962 Merkle tree kept whole in memory (the audit log's tree).
 *
 * Every complete subtree hash is stored: level 0 holds the leaf hashes, level k the hash
 * of each complete run of 2^k leaves (`levels[k][i]` = MTH(D[i·2^k : (i+1)·2^k])), each
 * level one flat growable byte array (32 bytes per hash, no object per hash), so a
 * million leaves take about 64 MiB. An append hashes the leaf and then one node per
 * subtree it completes: O(1) amortised, O(log n) at worst. The root, inclusion proofs
 * and consistency proofs for any earlier size are assembled from stored complete
 * subtrees (incomplete right-edge subtrees are folded on demand, O(log n) hashes each).
 */
import { BulwarkError } from '../errors.js';
import { MERKLE_HASH_SIZE, checkHash, emptyRootHash, leafHash, nodeHash } from './hash.js';

/**
 * Largest tree the in-memory tree accepts (2^26 leaves): its leaf level is then a 2 GiB
 * buffer, and the next doubling would pass what one typed array may hold.
 */
export const MERKLE_TREE_MAX_SIZE = 2 ** 26;

/** One level of stored hashes, 32 bytes each, in a buffer that doubles when full. */
class HashLevel {
  private buf: Uint8Array = new Uint8Array(MERKLE_HASH_SIZE * 16);
  count = 0;

  push(hash: Uint8Array): void {
    const at = this.count * MERKLE_HASH_SIZE;
    if (at + MERKLE_HASH_SIZE > this.buf.length) {
      let grown: Uint8Array;
      try {
        grown = new Uint8Array(this.buf.length * 2);
      } catch (err) {
        throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', `no memory for ${this.buf.length * 2} bytes of tree hashes`, { bytes: this.buf.length * 2 }, { cause: err });
      }
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf.set(hash, at);
    this.count += 1;
  }

  /** A zero-copy view: hashes once written never change, so views stay valid after growth. */
  at(i: number): Uint8Array {
    return this.buf.subarray(i * MERKLE_HASH_SIZE, (i + 1) * MERKLE_HASH_SIZE);
  }
}

/** Largest power of two strictly smaller than n (n ≥ 2): the RFC 6962 split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A Merkle tree under construction by the log itself (trusted: it hashed every leaf). */
export class MerkleTree {
  private readonly levels: HashLevel[] = [new HashLevel()];

  /** Rebuilds a tree from stored leaf hashes (as re-read from the audit stream after a restart). */
  static fromLeafHashes(hashes: Iterable<Uint8Array>): MerkleTree {
    const tree = new MerkleTree();
    for (const h of hashes) tree.appendLeafHash(h);
    return tree;
  }

  /** Number of leaves. */
  get size(): number {
    return this.leaves.count;
  }

  private get leaves(): HashLevel {
    const l = this.levels[0];
    if (l === undefined) throw new BulwarkError('INTERNAL', 'merkle tree has no leaf level');
    return l;
  }

  /** Appends a record: hashes it as a leaf (0x00 prefix) and returns its index. */
  appendLeaf(data: Uint8Array): number {
    return this.appendLeafHash(leafHash(data));
  }

  /** Appends an already computed leaf hash; returns its index. */
  appendLeafHash(hash: Uint8Array): number {
    checkHash(hash, 'leaf hash');
    const index = this.size;
    if (index >= MERKLE_TREE_MAX_SIZE) {
      throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', `merkle tree is full at ${MERKLE_TREE_MAX_SIZE} leaves`, { size: index });
    }
    this.leaves.push(hash);
    // Each level whose count turns even has completed a pair: hash it one level up.
    let level = 0;
    let current = this.levels[0];
    while (current !== undefined && current.count % 2 === 0) {
      const n = current.count;
      const parent = nodeHash(current.at(n - 2), current.at(n - 1));
      level += 1;
      let up = this.levels[level];
      if (up === undefined) {
        up = new HashLevel();
        this.levels.push(up);
      }
      up.push(parent);
      current = up;
    }
    return index;
  }

  /**
   * Throws MERKLE_PROOF_INVALID unless this tree extends the tree `earlier` names (a
   * checkpoint the log signed before): its size is not past ours and our root at that size
   * is its root. The log calls this before signing a new checkpoint, so it never signs two
   * inconsistent ones (C2SP tlog-checkpoint §Signatures), also after a rebuild.
   */
  checkExtends(earlier: { readonly size: number; readonly rootHash: Uint8Array }): void {
    if (!Number.isSafeInteger(earlier.size) || earlier.size < 0 || earlier.size > this.size) {
      throw new BulwarkError('MERKLE_PROOF_INVALID', `the earlier tree of size ${earlier.size} is larger than this tree (${this.size})`, {
        first: earlier.size,
        second: this.size,
      });
    }
    const ours = this.rootHash(earlier.size);
    if (earlier.rootHash.length !== MERKLE_HASH_SIZE || !ours.every((b, i) => b === earlier.rootHash[i])) {
      throw new BulwarkError('MERKLE_PROOF_INVALID', `this tree's root at size ${earlier.size} is not the earlier root: the log was rewritten`, {
        first: earlier.size,
        second: this.size,
      });
    }
  }

  /** The stored leaf hash at `index` (a copy). */
  leafHashAt(index: number): Uint8Array {
    this.checkIndex(index, this.size, 'leaf index');
    return this.leaves.at(index).slice();
  }

  /** MTH(D[0:n]) — the root at tree size n (default: the current size). */
  rootHash(n: number = this.size): Uint8Array {
    this.checkSize(n, 'tree size');
    if (n === 0) return emptyRootHash();
    return this.rangeHash(0, n).slice();
  }

  /**
   * PATH(m, D[n]) of RFC 6962 §2.1.1 (RFC 9162 §2.1.3.1): the audit path for leaf `index`
   * in the tree of size n, leaf's sibling first.
   */
  inclusionProof(index: number, n: number = this.size): Uint8Array[] {
    this.checkSize(n, 'tree size');
    this.checkIndex(index, n, 'leaf index');
    const path: Uint8Array[] = [];
    let start = 0;
    let size = n;
    let m = index;
    while (size > 1) {
      const k = splitPoint(size);
      if (m < k) {
        path.push(this.rangeHash(start + k, start + size));
        size = k;
      } else {
        path.push(this.rangeHash(start, start + k));
        start += k;
        m -= k;
        size -= k;
      }
    }
    return path.reverse().map((h) => h.slice());
  }

  /**
   * PROOF(m, D[n]) of RFC 6962 §2.1.2 (RFC 9162 §2.1.4.1): the consistency proof from
   * size m to size n. Empty when m = n; refused for m = 0 (the spec defines none: every tree extends the empty one).
   */
  consistencyProof(m: number, n: number = this.size): Uint8Array[] {
    this.checkSize(n, 'tree size');
    this.checkSize(m, 'first tree size');
    if (m > n) {
      throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', `consistency proof from ${m} to the smaller size ${n}`, { first: m, second: n });
    }
    if (m === n) return [];
    if (m === 0) {
      throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', 'no consistency proof exists from the empty tree (RFC 9162 §2.1.4.1: 0 < m < n)', { second: n });
    }
    // SUBPROOF(m, D[start:start+size], whole), unrolled: each step appends one hash after the
    // sub-proof it recurses into, so the collected hashes come out in reverse.
    const after: Uint8Array[] = [];
    let start = 0;
    let size = n;
    let first = m;
    let whole = true;
    while (first !== size) {
      const k = splitPoint(size);
      if (first <= k) {
        after.push(this.rangeHash(start + k, start + size));
        size = k;
      } else {
        after.push(this.rangeHash(start, start + k));
        start += k;
        first -= k;
        size -= k;
        whole = false;
      }
    }
    const proof = whole ? [] : [this.rangeHash(start, start + size)];
    return [...proof, ...after.reverse()].map((h) => h.slice());
  }

  /**
   * MTH(D[a:b]) for a range that is a node of the RFC 6962 tree (a aligned to the power of
   * two at or above b − a): the complete stored subtrees left to right, folded from the right.
   */
  private rangeHash(a: number, b: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let pos = a;
    while (pos < b) {
      let level = 0;
      while (2 ** (level + 1) <= b - pos && pos % 2 ** (level + 1) === 0) level += 1;
      const stored = this.levels[level];
      if (stored === undefined) throw new BulwarkError('INTERNAL', `merkle tree level ${level} missing`, { level });
      parts.push(stored.at(pos / 2 ** level));
      pos += 2 ** level;
    }
    let acc = parts[parts.length - 1];
    if (acc === undefined) throw new BulwarkError('INTERNAL', 'empty merkle range', { a, b });
    for (let i = parts.length - 2; i >= 0; i--) {
      const left = parts[i];
      if (left !== undefined) acc = nodeHash(left, acc);
    }
    return acc;
  }

  private checkSize(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.size) {
      throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', `${what} ${n} is not between 0 and the tree size ${this.size}`, { size: this.size, asked: n });
    }
  }

  private checkIndex(index: number, n: number, what: string): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= n) {
      throw new BulwarkError('MERKLE_TREE_SIZE_INVALID', `${what} ${index} is not below the tree size ${n}`, { size: n, index });
    }
  }
}
