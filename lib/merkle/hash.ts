/**
 * RFC 6962 §2.1 (RFC 9162 §2.1.1) Merkle tree hashing over SHA-256, with the domain
 * separation prefixes that keep a leaf from ever hashing like an interior node.
 */
import * as nodeCrypto from 'node:crypto';
import { BulwarkError } from '../errors.js';

/** SHA-256 output size: every leaf, node and root hash is this long. */
export const MERKLE_HASH_SIZE = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/**
 * SHA-256 in one call: `crypto.hash` (Node ≥ 20.12) skips the Hash object and is about
 * twice as fast on 65-byte node inputs; older Node 20 releases fall back to createHash.
 */
const sha256: (data: Uint8Array) => Uint8Array =
  typeof nodeCrypto.hash === 'function'
    ? (data) => new Uint8Array(nodeCrypto.hash('sha256', data, 'buffer'))
    : (data) => new Uint8Array(nodeCrypto.createHash('sha256').update(data).digest());

/** MTH({}) = SHA-256() — the root of the empty tree. */
export function emptyRootHash(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** MTH({d0}) = SHA-256(0x00 ‖ d0). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + leaf.length);
  buf[0] = LEAF_PREFIX;
  buf.set(leaf, 1);
  return sha256(buf);
}

/** SHA-256(0x01 ‖ left ‖ right): an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = NODE_PREFIX;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return sha256(buf);
}

/** Throws MERKLE_PROOF_MALFORMED unless `hash` is a 32-byte array (hostile callers pass anything). */
export function checkHash(hash: unknown, what: string): Uint8Array {
  if (!(hash instanceof Uint8Array) || hash.length !== MERKLE_HASH_SIZE) {
    const length = hash instanceof Uint8Array ? hash.length : -1;
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `${what} is not a ${MERKLE_HASH_SIZE}-byte hash`, { what, length });
  }
  return hash;
}
