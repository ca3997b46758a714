/**
 * Proof verifiers of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency), the
 * iterative forms, for proofs from anyone (untrusted input). Sizes are JavaScript safe
 * integers and all index arithmetic is plain division (no 32-bit bitwise operators), so
 * a size up to 2^53 − 1 verifies exactly.
 *
 * A proof of the wrong length for its sizes, a hash that is not 32 bytes, an index at or
 * past the size, or sizes out of order are malformed input (MERKLE_PROOF_MALFORMED, thrown);
 * a well-formed proof that does not lead to the given root returns false.
 */
import { BulwarkError } from '../errors.js';
import { bytesEqual } from '../bytes.js';
import { checkHash, nodeHash } from './hash.js';

/** Longest proof of a tree of at most 2^53 − 1 leaves (one hash per level, plus the seed). */
export const MERKLE_MAX_PROOF_HASHES = 64;

const odd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

function checkSize(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `${what} is not a non-negative safe integer`, { what });
  }
  return n;
}

function checkProof(proof: unknown): Uint8Array[] {
  if (!Array.isArray(proof)) throw new BulwarkError('MERKLE_PROOF_MALFORMED', 'proof is not a list of hashes', {});
  if (proof.length > MERKLE_MAX_PROOF_HASHES) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `proof has ${proof.length} hashes, more than ${MERKLE_MAX_PROOF_HASHES}`, { length: proof.length });
  }
  return proof.map((h: unknown, i) => checkHash(h, `proof hash ${i}`));
}

/**
 * Number of path hashes the RFC 9162 loop consumes from (fn, sn) until sn reaches 0: the
 * only proof length that can verify.
 */
function pathLength(fn0: number, sn0: number): number {
  let fn = fn0;
  let sn = sn0;
  let steps = 0;
  while (sn > 0) {
    if (odd(fn) || fn === sn) {
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    }
    fn = half(fn);
    sn = half(sn);
    steps += 1;
  }
  return steps;
}

/** Expected length of an inclusion proof for leaf `index` in a tree of `size` leaves (index < size). */
export function inclusionProofLength(index: number, size: number): number {
  return pathLength(index, size - 1);
}

/** Expected length of a consistency proof from size1 to size2 (0 < size1 < size2). */
export function consistencyProofLength(size1: number, size2: number): number {
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  return pathLength(fn, sn) + (isPowerOfTwo(size1) ? 0 : 1);
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && !odd(x)) x = half(x);
  return x === 1;
}

/**
 * RFC 9162 §2.1.3.2: true when `proof` is the audit path binding `leafHash` at `index` to
 * `root` of the tree of `size` leaves; false when the hashes do not lead there.
 */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const leaf = checkHash(leafHash, 'leaf hash');
  const expectedRoot = checkHash(root, 'root hash');
  const leafIndex = checkSize(index, 'leaf index');
  const treeSize = checkSize(size, 'tree size');
  const path = checkProof(proof);
  if (leafIndex >= treeSize) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `leaf index ${leafIndex} is not below the tree size ${treeSize}`, { index: leafIndex, size: treeSize });
  }
  const want = inclusionProofLength(leafIndex, treeSize);
  if (path.length !== want) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `inclusion proof has ${path.length} hashes, ${want} expected for leaf ${leafIndex} of ${treeSize}`, {
      length: path.length,
      expected: want,
    });
  }
  // Steps 2–5 of §2.1.3.2.
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && bytesEqual(r, expectedRoot);
}

/**
 * RFC 9162 §2.1.4.2: true when `proof` shows the tree of `size2` leaves with `root2`
 * extends the tree of `size1` leaves with `root1`. Equal sizes need an empty proof and
 * equal roots. A proof from size 0 is refused as malformed: RFC 9162 §2.1.4.1 defines
 * proofs only for 0 < m < n (as transparency-dev/merkle does); callers treat the empty
 * tree as extended by any tree without asking for a proof.
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  const first = checkSize(size1, 'first tree size');
  const second = checkSize(size2, 'second tree size');
  const firstHash = checkHash(root1, 'first root hash');
  const secondHash = checkHash(root2, 'second root hash');
  const path = checkProof(proof);
  if (first > second) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `first tree size ${first} is larger than the second ${second}`, { first, second });
  }
  if (first === second) {
    if (path.length !== 0) {
      throw new BulwarkError('MERKLE_PROOF_MALFORMED', 'consistency proof between equal sizes must be empty', { first, length: path.length });
    }
    return bytesEqual(firstHash, secondHash);
  }
  if (first === 0) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', 'no consistency proof exists from the empty tree (RFC 9162 defines them for 0 < m < n)', { second });
  }
  const want = consistencyProofLength(first, second);
  if (path.length !== want) {
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `consistency proof has ${path.length} hashes, ${want} expected from ${first} to ${second}`, {
      length: path.length,
      expected: want,
    });
  }
  // Step 2: a first tree that is a complete subtree is its own seed.
  const seeded = isPowerOfTwo(first) ? [firstHash, ...path] : path;
  // Steps 3–4.
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Steps 5–7.
  const [seed, ...rest] = seeded;
  if (seed === undefined) return false;
  let fr = seed;
  let sr = seed;
  for (const c of rest) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && bytesEqual(fr, firstHash) && bytesEqual(sr, secondHash);
}
