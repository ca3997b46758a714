/**
 * RFC 6962 §2.1 (RFC 9162 §2.1.1) Merkle tree hashing over SHA-256, with the domain
 * separation prefixes that keep a leaf from ever hashing like an interior node.
 */
import { createHash } from 'node:crypto';
import { BulwarkError } from '../errors.js';

/** SHA-256 output size: every leaf, node and root hash is this long. */
export const MERKLE_HASH_SIZE = 32;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** MTH({}) = SHA-256() — the root of the empty tree. */
export function emptyRootHash(): Uint8Array {
  return new Uint8Array(createHash('sha256').digest());
}

/** MTH({d0}) = SHA-256(0x00 ‖ d0). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(LEAF_PREFIX).update(leaf).digest());
}

/** SHA-256(0x01 ‖ left ‖ right): an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest());
}

/** Throws MERKLE_PROOF_MALFORMED unless `hash` is a 32-byte array (hostile callers pass anything). */
export function checkHash(hash: unknown, what: string): Uint8Array {
  if (!(hash instanceof Uint8Array) || hash.length !== MERKLE_HASH_SIZE) {
    const length = hash instanceof Uint8Array ? hash.length : -1;
    throw new BulwarkError('MERKLE_PROOF_MALFORMED', `${what} is not a ${MERKLE_HASH_SIZE}-byte hash`, { what, length });
  }
  return hash;
}
