/**
 * IMA file signatures as the sig field of ima-sig / ima-modsig entries carries them: the
 * security.ima extended attribute, a signature_v2_hdr (Linux security/integrity/integrity.h):
 *
 *   offset  size  field
 *   0       1     type        EVM_IMA_XATTR_DIGSIG (3), EVM_XATTR_PORTABLE_DIGSIG (5) or
 *                             IMA_VERITY_DIGSIG (6)
 *   1       1     version     2 (DIGSIG_VERSION_2); 3 (DIGSIG_VERSION_3) for IMA_VERITY_DIGSIG
 *   2       1     hash_algo   HASH_ALGO_* (include/uapi/linux/hash_info.h)
 *   3       4     keyid       big-endian: the last 4 bytes of the signing key's X.509 subject
 *                             key identifier, by default SHA-1 of the public key bits
 *   7       2     sig_size    big-endian
 *   9       n     signature   sig_size bytes
 *
 * digsig_asymmetric.c asymmetric_verify checks the signature over the file digest itself
 * (already hashed): RSA PKCS#1 v1.5 with a DigestInfo, or ECDSA (P-256, P-384) as an ASN.1
 * DER Ecdsa-Sig-Value (crypto/ecdsasignature.asn1), as evmctl ima_sign makes them. An
 * IMA_VERITY_DIGSIG signature (sigv3, ima_appraise.c calc_file_id_hash) is instead over the
 * hash, with the entry's algorithm, of struct ima_file_id {hash_type = 6, hash_algorithm,
 * hash[digest size]}: the signed bytes say the digest is an fs-verity one.
 */
import { createHash, getHashes, publicDecrypt, constants, timingSafeEqual, type KeyObject } from 'node:crypto';
// node:crypto verifies ECDSA only over a message it hashes itself; IMA signs a digest that is
// already made (the file's), so the one ECDSA step uses @noble/curves (audited, no
// dependencies), whose verify takes the digest as is (prehash: false).
import { p256, p384 } from '@noble/curves/nist.js';
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
/** The signature version of IMA_VERITY_DIGSIG (integrity.h DIGSIG_VERSION_3): over struct ima_file_id. */
export const DIGSIG_VERSION_3 = 3;

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
  if (type !== EVM_IMA_XATTR_TYPE.EVM_IMA_XATTR_DIGSIG && type !== EVM_IMA_XATTR_TYPE.EVM_XATTR_PORTABLE_DIGSIG && type !== EVM_IMA_XATTR_TYPE.IMA_VERITY_DIGSIG) {
    throw new BulwarkError('IMA_LOG_MALFORMED', `IMA signature type ${type} is not a digital signature`, { type });
  }
  // ima_appraise.c xattr_verify: an fs-verity signature must be version 3; the others are version 2.
  const want = type === EVM_IMA_XATTR_TYPE.IMA_VERITY_DIGSIG ? DIGSIG_VERSION_3 : DIGSIG_VERSION_2;
  if (version !== want) throw new BulwarkError('IMA_LOG_MALFORMED', `IMA signature type ${type} of version ${version}, not ${want}`, { type, version });
  const hashAlgo = r.u8('hash_algo');
  const keyId = r.u32be('keyid');
  const size = r.u16be('sig_size');
  const signature = r.bytesN(size, 'signature');
  r.expectEnd('IMA signature');
  return { type, hashAlgo, hashName: IMA_HASH_ALGOS[hashAlgo]?.name, keyId, signature };
}

/**
 * Encodes a signature_v2_hdr with its signature (layout above), type EVM_IMA_XATTR_DIGSIG
 * (version 2) unless `type` says IMA_VERITY_DIGSIG (version 3): the bytes of a security.ima
 * xattr as `evmctl ima_sign` writes them. `signature` is over the
 * file digest made with `hashAlgo` (RSA PKCS#1 v1.5 over the DigestInfo, or ECDSA DER).
 * Throws IMA_LOG_MALFORMED for an unknown algorithm, a keyid out of range or a signature
 * longer than sig_size can say.
 */
export function encodeImaSignature(hashAlgo: number, keyId: number, signature: Uint8Array, type: 3 | 6 = EVM_IMA_XATTR_TYPE.EVM_IMA_XATTR_DIGSIG): Uint8Array {
  if (IMA_HASH_ALGOS[hashAlgo] === undefined) throw new BulwarkError('IMA_LOG_MALFORMED', `hash_algo ${hashAlgo} is not a kernel hash algorithm`, { hashAlgo });
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff) throw new BulwarkError('IMA_LOG_MALFORMED', 'keyid is not a u32');
  if (signature.length === 0 || signature.length > 0xffff) throw new BulwarkError('IMA_LOG_MALFORMED', `a signature of ${signature.length} bytes does not fit sig_size`, { size: signature.length });
  return new ByteWriter(9 + signature.length)
    .u8(type) // type
    .u8(type === EVM_IMA_XATTR_TYPE.IMA_VERITY_DIGSIG ? DIGSIG_VERSION_3 : DIGSIG_VERSION_2) // version
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
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown-key' | 'algorithm-mismatch' | 'type-mismatch' | 'unsupported-type' | 'unsupported-key' | 'bad-signature'; readonly keyId?: number };

/** What an ECDSA verification needs of a key: its curve and its uncompressed point (SEC1), worked out once per key. */
interface EcVerifyKey {
  readonly curve: typeof p256 | typeof p384;
  readonly point: Uint8Array;
}

const EC_KEYS = new WeakMap<KeyObject, EcVerifyKey | null>();

/** The curve and point of a P-256 or P-384 public key; null for any other key. */
function ecVerifyKey(key: KeyObject): EcVerifyKey | null {
  const cached = EC_KEYS.get(key);
  if (cached !== undefined) return cached;
  let found: EcVerifyKey | null = null;
  if (key.type === 'public' && key.asymmetricKeyType === 'ec') {
    const jwk = key.export({ format: 'jwk' });
    const curve = jwk.crv === 'P-256' ? p256 : jwk.crv === 'P-384' ? p384 : undefined;
    if (curve !== undefined && typeof jwk.x === 'string' && typeof jwk.y === 'string') {
      found = { curve, point: new Uint8Array(Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')])) };
    }
  }
  EC_KEYS.set(key, found);
  return found;
}

/**
 * ECDSA over a precomputed digest (the kernel's crypto/ecdsa.c: the digest is taken as the
 * integer, truncated to the order's size), the signature an ASN.1 DER Ecdsa-Sig-Value with
 * nothing after it. High-S values are accepted: OpenSSL (evmctl) and HSMs make them and the
 * kernel takes them.
 */
export function verifyEcdsaDigest(key: KeyObject, digest: Uint8Array, derSignature: Uint8Array): boolean | 'unsupported-key' {
  const ec = ecVerifyKey(key);
  if (ec === null) return 'unsupported-key';
  try {
    return ec.curve.verify(derSignature, digest, ec.point, { prehash: false, lowS: false, format: 'der' });
  } catch {
    return false;
  }
}

/** RSASSA-PKCS1-v1_5 over a precomputed digest: recover the encoded DigestInfo (OpenSSL checks the block type 1 padding) and compare it whole. */
export function verifyRsaPkcs1Digest(key: KeyObject, hashName: string, digest: Uint8Array, signature: Uint8Array): boolean | 'unsupported-key' {
  const prefix = DIGEST_INFO_PREFIX.get(hashName);
  if (prefix === undefined || key.asymmetricKeyType !== 'rsa') return 'unsupported-key';
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  const expected = Buffer.concat([prefix, digest]);
  return recovered.length === expected.length && timingSafeEqual(recovered, expected);
}

const NODE_HASHES: ReadonlySet<string> = new Set(getHashes());

/**
 * The digest an IMA_VERITY_DIGSIG signature is over (ima_appraise.c calc_file_id_hash): the
 * hash, with the entry's algorithm, of struct ima_file_id {u8 hash_type = IMA_VERITY_DIGSIG,
 * u8 hash_algorithm, u8 hash[digest size]} (packed, the unused tail of hash[] left out).
 * undefined when node:crypto lacks the algorithm.
 */
export function imaFileIdDigest(hashAlgo: number, hashName: string, fsverityDigest: Uint8Array): Uint8Array | undefined {
  if (!NODE_HASHES.has(hashName)) return undefined;
  const fileId = Buffer.concat([Buffer.from([EVM_IMA_XATTR_TYPE.IMA_VERITY_DIGSIG, hashAlgo]), fsverityDigest]);
  return new Uint8Array(createHash(hashName).update(fileId).digest());
}

/**
 * Verifies an entry's sig field against its file digest with the key the signature names.
 * The signature's hash algorithm must be the digest's (IMA hashes the file with the
 * signature's algorithm). `digestType` is the d-ngv2 digest type when the template has one
 * (null for d-ng): an fs-verity signature (IMA_VERITY_DIGSIG) only for a 'verity' digest and
 * a file signature only for an 'ima' one, as ima_appraise.c requires; with d-ng the
 * signature's own type says which digest it is (sigv3 signs that type). RSA is checked with
 * node:crypto, ECDSA P-256/P-384 with @noble/curves. Pure; returns why it failed rather than
 * throwing. Trust: `keys` are the runtime policy's; the other inputs are the entry's.
 */
export function verifyImaSignature(
  sigField: Uint8Array,
  digestAlgorithm: string,
  fileDigest: Uint8Array,
  keys: ReadonlyMap<number, KeyObject>,
  digestType: 'ima' | 'verity' | null = null,
): ImaSignatureCheck {
  let sig: ImaSignatureV2;
  try {
    sig = decodeImaSignature(sigField);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const key = keys.get(sig.keyId);
  if (key === undefined) return { ok: false, reason: 'unknown-key', keyId: sig.keyId };
  if (sig.hashName !== digestAlgorithm) return { ok: false, reason: 'algorithm-mismatch', keyId: sig.keyId };
  const verity = sig.type === EVM_IMA_XATTR_TYPE.IMA_VERITY_DIGSIG;
  if (digestType !== null && verity !== (digestType === 'verity')) return { ok: false, reason: 'type-mismatch', keyId: sig.keyId };
  if (sig.type === EVM_IMA_XATTR_TYPE.EVM_XATTR_PORTABLE_DIGSIG) {
    // An EVM portable signature is over the EVM HMAC input (xattrs, inode metadata), which the list does not carry.
    return { ok: false, reason: 'unsupported-type', keyId: sig.keyId };
  }
  const signed = verity ? imaFileIdDigest(sig.hashAlgo, digestAlgorithm, fileDigest) : fileDigest;
  if (signed === undefined) return { ok: false, reason: 'unsupported-key', keyId: sig.keyId };
  const ok = key.asymmetricKeyType === 'ec' ? verifyEcdsaDigest(key, signed, sig.signature) : verifyRsaPkcs1Digest(key, digestAlgorithm, signed, sig.signature);
  if (ok === 'unsupported-key') return { ok: false, reason: 'unsupported-key', keyId: sig.keyId };
  return ok ? { ok: true, keyId: sig.keyId } : { ok: false, reason: 'bad-signature', keyId: sig.keyId };
}
