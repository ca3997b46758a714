/**
 * fs-verity file digests computed the way the kernel and fsverity-utils do
 * (Documentation/filesystems/fsverity.rst, "File digest computation"; include/uapi/linux/fsverity.h),
 * for IMA d-ngv2 "verity:" entries in tests. Test code only; SHA-256, 4096-byte blocks, no salt.
 *
 * Merkle tree: the data in 4096-byte blocks (the last zero-padded), each hashed; the hashes
 * packed into 4096-byte blocks (zero-padded) and hashed again, level by level, until one
 * block is left; the root hash is the hash of that block. An empty file's root hash is all
 * zero; a file of one block has no hash levels (the root hash is its block's hash).
 *
 * struct fsverity_descriptor (256 bytes): version u8 = 1, hash_algorithm u8 (1 = SHA-256),
 * log_blocksize u8 (12), salt_size u8 (0), sig_size __le32 (0 when digesting), data_size __le64,
 * root_hash[64] (zero-padded), salt[32], reserved[144]. The file digest is its SHA-256.
 */
import { createHash } from 'node:crypto';
import { ByteWriter } from '../../lib/bytes.js';

const BLOCK = 4096;
const FS_VERITY_HASH_ALG_SHA256 = 1;

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Hashes of `data` cut into zero-padded blocks. */
function blockHashes(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += BLOCK) {
    const block = Buffer.alloc(BLOCK);
    data.copy(block, 0, at, Math.min(at + BLOCK, data.length));
    out.push(sha256(block));
  }
  return out;
}

/** The Merkle tree root hash of `data` (SHA-256, 4096-byte blocks, no salt). */
export function fsverityRootHash(data: Buffer): Buffer {
  if (data.length === 0) return Buffer.alloc(32);
  let level = blockHashes(data);
  while (level.length > 1) level = blockHashes(Buffer.concat(level));
  return level[0] ?? Buffer.alloc(32);
}

/** The fs-verity file digest of `data`: SHA-256 of its fsverity_descriptor. */
export function fsverityDigest(data: Buffer): Buffer {
  const rootHash = Buffer.alloc(64);
  fsverityRootHash(data).copy(rootHash);
  const descriptor = new ByteWriter(256)
    .u8(1) // version
    .u8(FS_VERITY_HASH_ALG_SHA256) // hash_algorithm
    .u8(12) // log_blocksize: 4096
    .u8(0) // salt_size
    .u32le(0) // sig_size: zero when digesting
    .u64le(BigInt(data.length)) // data_size
    .bytes(rootHash) // root_hash[64]
    .bytes(Buffer.alloc(32)) // salt[32]
    .bytes(Buffer.alloc(144)) // reserved[144]
    .finish();
  return sha256(descriptor);
}
