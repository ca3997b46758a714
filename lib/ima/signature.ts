/**
 * IMA file signatures as the sig field of ima-sig / ima-modsig entries carries them: the
 * security.ima extended attribute, a signature_v2_hdr (Linux security/integrity/integrity.h):
 *
 *   offset  size  field
 *   0       1     type        EVM_IMA_XATTR_DIGSIG (3) or EVM_XATTR_PORTABLE_DIGSIG (5)
 *   1       1     version     2 (DIGSIG_VERSION_2)
 *   2       1     hash_algo   HASH_ALGO_* (include/uapi/linux/hash_info.h)
 *   3       4     keyid       big-endian: the last 4 bytes of the signing key's X.509 subject
 *                             key identifier, by default SHA-1 of the public key bits
 *   7       2     sig_size    big-endian
 *   9       n     signature   sig_size bytes
 *
 * digsig_asymmetric.c asymmetric_verify checks the signature over the file digest itself
 * (already hashed: RSA PKCS#1 v1.5 with a DigestInfo, as evmctl ima_sign makes it). Node
 * cannot verify an ECDSA signature over a precomputed digest, so only RSA keys are supported
 * here; an entry whose key is not RSA fails closed.
 */
import { createHash, publicDecrypt, constants, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ByteReader, ByteWriter } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { IMA_HASH_ALGOS } from './types.js';

/** The xattr types a signature may have (integrity.h enum evm_ima_xattr_type). */
export const EVM_IMA_XATTR_TYPE = {
  IMA_XATTR_DIGEST: 0x01,
  EVM_XATTR_HMAC: 0x02,
  EVM_IMA_XATTR_DIGSIG: 0x03,
  IMA_XATTR_DIGEST_NG: 0x04,
  EVM_XATTR_PORTABLE_DIGSIG: 0x05,
  IMA_VERITY_DIGSIG: 0x06,
} as const;

export const DIGSIG_VERSION_2 = 2;

/** A decoded signature_v2_hdr with its signature. Untrusted until verified. */
export interface ImaSignatureV2 {
  readonly type: number;
  readonly hashAlgo: number;
  /** Kernel name of the hash algorithm ("sha256"), or undefined for an id the kernel does not name. */
  readonly hashName: string | undefined;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** Decodes a signature_v2_hdr (layout above). Throws IMA_LOG_MALFORMED for anything else. */
export function decodeImaSignature(bytes: Uint8Array): ImaSignatureV2 {
  const r = new ByteReader(bytes, 'IMA_LOG_MALFORMED');
  const type = r.u8('type');
  const version = r.u8('version');
  if (type !== EVM_IMA_XATTR_TYPE.EVM_IMA_XATTR_DIGSIG && type !== EVM_IMA_XATTR_TYPE.EVM_XATTR_PORTABLE_DIGSIG) {
    throw new BulwarkError('IMA_LOG_MALFORMED', `IMA signature type ${type} is not a digital signature`, { type });
  }
  if (version !== DIGSIG_VERSION_2) throw new BulwarkError('IMA_LOG_MALFORMED', `IMA signature version ${version} is not 2`, { version });
  const hashAlgo = r.u8('hash_algo');
  const keyId = r.u32be('keyid');
  const size = r.u16be('sig_size');
  const signature = r.bytesN(size, 'signature');
  r.expectEnd('IMA signature');
  return { type, hashAlgo, hashName: IMA_HASH_ALGOS[hashAlgo]?.name, keyId, signature };
}

/**
 * Encodes a signature_v2_hdr with its signature (layout above), type EVM_IMA_XATTR_DIGSIG:
 * the bytes of a security.ima xattr as `evmctl ima_sign` writes them. `signature` is over the
 * file digest made with `hashAlgo` (RSA PKCS#1 v1.5 over the DigestInfo, or ECDSA DER).
 * Throws IMA_LOG_MALFORMED for an unknown algorithm, a keyid out of range or a signature
 * longer than sig_size can say.
 */
export function encodeImaSignature(hashAlgo: number, keyId: number, signature: Uint8Array): Uint8Array {
  if (IMA_HASH_ALGOS[hashAlgo] === undefined) throw new BulwarkError('IMA_LOG_MALFORMED', `hash_algo ${hashAlgo} is not a kernel hash algorithm`, { hashAlgo });
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff) throw new BulwarkError('IMA_LOG_MALFORMED', 'keyid is not a u32');
  if (signature.length === 0 || signature.length > 0xffff) throw new BulwarkError('IMA_LOG_MALFORMED', `a signature of ${signature.length} bytes does not fit sig_size`, { size: signature.length });
  return new ByteWriter(9 + signature.length)
    .u8(EVM_IMA_XATTR_TYPE.EVM_IMA_XATTR_DIGSIG) // type
    .u8(DIGSIG_VERSION_2) // version
    .u8(hashAlgo) // hash_algo
    .u32be(keyId) // keyid
    .u16be(signature.length) // sig_size
    .bytes(signature)
    .finish();
}

/** DigestInfo prefixes of PKCS#1 v1.5 signatures (RFC 8017, 9.2 note 1), by hash name. */
const DIGEST_INFO_PREFIX: ReadonlyMap<string, Buffer> = new Map([
  ['md5', Buffer.from('3020300c06082a864886f70d020505000410', 'hex')],
  ['sha1', Buffer.from('3021300906052b0e03021a05000414', 'hex')],
  ['sha224', Buffer.from('302d300d06096086480165030402040500041c', 'hex')],
  ['sha256', Buffer.from('3031300d060960864801650304020105000420', 'hex')],
  ['sha384', Buffer.from('3041300d060960864801650304020205000430', 'hex')],
  ['sha512', Buffer.from('3051300d060960864801650304020305000440', 'hex')],
]);

/**
 * The IMA key id of a public key (ima-evm-utils calc_keyid_v2, Keylime _get_keyidv2): the
 * last 4 bytes, big-endian, of SHA-1 over the subjectPublicKey bits — the PKCS#1
 * RSAPublicKey for RSA, the uncompressed point for EC. A certificate's own subject key
 * identifier takes precedence when one is given (the kernel looks keys up by it).
 */
export function computeImaKeyId(key: KeyObject): number {
  if (key.type !== 'public') throw new BulwarkError('KEY_INVALID', 'an IMA verification key must be a public key');
  let bits: Buffer;
  if (key.asymmetricKeyType === 'rsa') bits = key.export({ format: 'der', type: 'pkcs1' });
  else if (key.asymmetricKeyType === 'ec') {
    const jwk = key.export({ format: 'jwk' });
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new BulwarkError('KEY_INVALID', 'EC key without coordinates');
    bits = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  } else throw new BulwarkError('KEY_INVALID', `unsupported IMA key type ${key.asymmetricKeyType ?? 'unknown'}`);
  return createHash('sha1').update(bits).digest().readUInt32BE(16);
}

export type ImaSignatureCheck =
  | { readonly ok: true; readonly keyId: number }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown-key' | 'algorithm-mismatch' | 'unsupported-key' | 'bad-signature'; readonly keyId?: number };

/**
 * Verifies an entry's sig field against its file digest with the key the signature names.
 * The signature's hash algorithm must be the digest's (IMA hashes the file with the
 * signature's algorithm). Pure; returns why it failed rather than throwing.
 * Trust: `keys` are the runtime policy's; the other inputs are the entry's.
 */
export function verifyImaSignature(sigField: Uint8Array, digestAlgorithm: string, fileDigest: Uint8Array, keys: ReadonlyMap<number, KeyObject>): ImaSignatureCheck {
  let sig: ImaSignatureV2;
  try {
    sig = decodeImaSignature(sigField);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const key = keys.get(sig.keyId);
  if (key === undefined) return { ok: false, reason: 'unknown-key', keyId: sig.keyId };
  if (sig.hashName !== digestAlgorithm) return { ok: false, reason: 'algorithm-mismatch', keyId: sig.keyId };
  const prefix = DIGEST_INFO_PREFIX.get(digestAlgorithm);
  if (prefix === undefined || key.asymmetricKeyType !== 'rsa') return { ok: false, reason: 'unsupported-key', keyId: sig.keyId };
  let recovered: Buffer;
  try {
    // RSASSA-PKCS1-v1_5 verification over a precomputed digest: recover the encoded DigestInfo
    // (OpenSSL checks the block type 1 padding) and compare it whole.
    recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sig.signature);
  } catch {
    return { ok: false, reason: 'bad-signature', keyId: sig.keyId };
  }
  const expected = Buffer.concat([prefix, fileDigest]);
  const ok = recovered.length === expected.length && timingSafeEqual(recovered, expected);
  return ok ? { ok: true, keyId: sig.keyId } : { ok: false, reason: 'bad-signature', keyId: sig.keyId };
}
