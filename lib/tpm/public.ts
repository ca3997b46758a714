/**
 * TPMT_PUBLIC: decoding (TCG TPM 2.0 Library Part 2, 12.2.4), the object Name (Part 1,
 * 16), conversion to a node:crypto key, and the attribute checks an attestation key
 * must pass before Bulwark enrolls it.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ByteReader, concatBytes } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { finding, type Finding } from '../verdict.js';
import { HASH_ALGS, TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT, type EccPublic, type RsaPublic, type SchemeWithHash, type SymDefObject, type TpmtPublic } from './types.js';

/** TPM_ALG_ID values (Part 2, 6.3) that only this decoder needs, to know a union's layout. */
const TPM_ALG_UNION = {
  MGF1: 0x0007,
  SM4: 0x0013,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF2: 0x0021,
  CAMELLIA: 0x0026,
} as const;

/**
 * Largest TPMT_PUBLIC accepted. With MAX_RSA_KEY_BYTES = 512 (RSA-4096) and a SHA-512
 * authPolicy a real one is about 620 bytes; TPM2B_PUBLIC can never exceed a u16.
 */
const MAX_TPMT_PUBLIC_BYTES = 1024;
/** TPM2B_DIGEST authPolicy: at most the largest digest (TPMU_HA, SHA-512). */
const MAX_AUTH_POLICY_BYTES = 64;
/** TPM2B_PUBLIC_KEY_RSA: MAX_RSA_KEY_BYTES for RSA-4096 (Part 2, 11.2.4.5). */
const MAX_RSA_MODULUS_BYTES = 512;
/** TPM2B_ECC_PARAMETER: MAX_ECC_KEY_BYTES of the largest curve a TPM defines (BN P638 is 80). */
const MAX_ECC_COORDINATE_BYTES = 128;

/** The NIST curves Bulwark can turn into keys: TPM_ECC_CURVE → JWK crv and coordinate size. */
const ECC_CURVES: ReadonlyMap<number, { readonly jwk: string; readonly size: number }> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { jwk: 'P-256', size: 32 }],
  [TPM_ECC_CURVE.NIST_P384, { jwk: 'P-384', size: 48 }],
  [TPM_ECC_CURVE.NIST_P521, { jwk: 'P-521', size: 66 }],
]);

/** Hash algorithms strong enough for an AK's nameAlg and signing scheme. */
const AK_STRONG_HASHES: ReadonlySet<number> = new Set([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);

/** Smallest RSA modulus an AK may have. */
const AK_MIN_RSA_BITS = 2048;

function malformed(r: ByteReader, message: string): BulwarkError {
  return new BulwarkError('TPM_PUBLIC_MALFORMED', `${message} at offset ${r.offset}`, { offset: r.offset });
}

function unsupported(at: number, message: string, value: number): BulwarkError {
  return new BulwarkError('TPM_PUBLIC_UNSUPPORTED', message, { offset: at, value });
}

/** TPMT_SYM_DEF_OBJECT (Part 2, 11.1.7): algorithm, then keyBits and mode unless TPM_ALG_NULL. */
function decodeSymDefObject(r: ByteReader): SymDefObject | null {
  const at = r.offset;
  const algorithm = r.u16be('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return null;
  // TPMI_ALG_SYM_OBJECT allows only block ciphers; each has TPMI_*_KEY_BITS and TPMI_ALG_SYM_MODE.
  if (algorithm !== TPM_ALG.AES && algorithm !== TPM_ALG_UNION.SM4 && algorithm !== TPM_ALG_UNION.CAMELLIA) {
    throw unsupported(at, `symmetric algorithm 0x${algorithm.toString(16)} is not a TPMI_ALG_SYM_OBJECT Bulwark knows`, algorithm);
  }
  const keyBits = r.u16be('symmetric.keyBits');
  const mode = r.u16be('symmetric.mode');
  return { algorithm, keyBits, mode };
}

/**
 * TPMT_RSA_SCHEME (Part 2, 11.2.4.2): a scheme selector, then TPMU_ASYM_SCHEME. RSAES
 * carries an empty TPMS_EMPTY (decoded with hashAlg TPM_ALG_NULL); the others a hash.
 */
function decodeRsaScheme(r: ByteReader): SchemeWithHash | null {
  const at = r.offset;
  const scheme = r.u16be('scheme.scheme');
  switch (scheme) {
    case TPM_ALG.NULL:
      return null;
    case TPM_ALG.RSAES:
      return { scheme, hashAlg: TPM_ALG.NULL };
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS:
    case TPM_ALG.OAEP:
      return { scheme, hashAlg: r.u16be('scheme.hashAlg') };
    default:
      throw unsupported(at, `RSA scheme 0x${scheme.toString(16)} is not a TPMI_ALG_RSA_SCHEME`, scheme);
  }
}

/**
 * TPMT_ECC_SCHEME (Part 2, 11.2.5.6): a scheme selector, then TPMU_ASYM_SCHEME. ECDAA's
 * TPMS_SCHEME_ECDAA adds a u16 count after the hash (kept only in `encoded`).
 */
function decodeEccScheme(r: ByteReader): SchemeWithHash | null {
  const at = r.offset;
  const scheme = r.u16be('scheme.scheme');
  switch (scheme) {
    case TPM_ALG.NULL:
      return null;
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECDH:
    case TPM_ALG_UNION.SM2:
    case TPM_ALG_UNION.ECSCHNORR:
    case TPM_ALG_UNION.ECMQV:
      return { scheme, hashAlg: r.u16be('scheme.hashAlg') };
    case TPM_ALG_UNION.ECDAA: {
      const hashAlg = r.u16be('scheme.hashAlg');
      r.u16be('scheme.count');
      return { scheme, hashAlg };
    }
    default:
      throw unsupported(at, `ECC scheme 0x${scheme.toString(16)} is not a TPMI_ALG_ECC_SCHEME`, scheme);
  }
}

/** TPMT_KDF_SCHEME (Part 2, 11.2.3.3): a scheme selector, then TPMS_SCHEME_HASH unless NULL. */
function decodeKdfScheme(r: ByteReader): SchemeWithHash | null {
  const at = r.offset;
  const scheme = r.u16be('kdf.scheme');
  switch (scheme) {
    case TPM_ALG.NULL:
      return null;
    case TPM_ALG_UNION.MGF1:
    case TPM_ALG.KDF1_SP800_56A:
    case TPM_ALG_UNION.KDF2:
    case TPM_ALG.KDF1_SP800_108:
      return { scheme, hashAlg: r.u16be('kdf.hashAlg') };
    default:
      throw unsupported(at, `KDF scheme 0x${scheme.toString(16)} is not a TPMI_ALG_KDF`, scheme);
  }
}

/**
 * Decodes the exact bytes of a TPMT_PUBLIC (Part 2, 12.2.4) for an RSA or ECC key, with
 * no TPM2B size prefix and no trailing bytes. Untrusted input: the result is decoded,
 * not judged (see `checkAkAttributes`). Throws BulwarkError (TPM_PUBLIC_MALFORMED,
 * TPM_PUBLIC_UNSUPPORTED, BYTES_LENGTH_EXCEEDS_CAP, BYTES_TRAILING).
 */
export function decodeTpmtPublic(bytes: Uint8Array): TpmtPublic {
  if (bytes.length > MAX_TPMT_PUBLIC_BYTES) {
    throw new BulwarkError('BYTES_LENGTH_EXCEEDS_CAP', `TPMT_PUBLIC of ${bytes.length} bytes is larger than the cap of ${MAX_TPMT_PUBLIC_BYTES}`, {
      size: bytes.length,
      cap: MAX_TPMT_PUBLIC_BYTES,
    });
  }
  // Own copy: every field below is a view of it, so a caller reusing its buffer cannot
  // change a decoded key (or its Name) afterwards.
  const own = bytes.slice();
  const r = new ByteReader(own, 'TPM_PUBLIC_MALFORMED');
  const typeAt = r.offset;
  const type = r.u16be('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) {
    throw unsupported(typeAt, `TPMT_PUBLIC type 0x${type.toString(16)} is not RSA or ECC`, type);
  }
  const nameAlg = r.u16be('nameAlg');
  const objectAttributes = r.u32be('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', MAX_AUTH_POLICY_BYTES);
  // The TPM refuses (Part 3, TPM2_Create, TPM_RC_SIZE) an authPolicy that is neither
  // empty nor a digest of nameAlg's size.
  const nameHash = HASH_ALGS.get(nameAlg);
  if (nameHash !== undefined && authPolicy.length !== 0 && authPolicy.length !== nameHash.size) {
    throw malformed(r, `authPolicy of ${authPolicy.length} bytes does not match nameAlg ${nameHash.name}`);
  }
  const symmetric = decodeSymDefObject(r);

  if (type === TPM_ALG.RSA) {
    // TPMS_RSA_PARMS (Part 2, 12.2.3.5): symmetric, scheme, keyBits, exponent.
    const scheme = decodeRsaScheme(r);
    const keyBits = r.u16be('keyBits');
    const rawExponent = r.u32be('exponent');
    // TPM2B_PUBLIC_KEY_RSA (Part 2, 11.2.4.5): the modulus, exactly keyBits long.
    const modulus = r.tpm2b('unique.rsa', MAX_RSA_MODULUS_BYTES);
    if (keyBits === 0 || keyBits % 8 !== 0 || modulus.length * 8 !== keyBits) {
      throw malformed(r, `RSA modulus of ${modulus.length} bytes does not match keyBits ${keyBits}`);
    }
    r.expectEnd('TPMT_PUBLIC');
    const pub: RsaPublic = {
      type: 'rsa',
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      keyBits,
      // Part 2, 12.2.3.5: an exponent of zero means the default, 2^16 + 1.
      exponent: rawExponent === 0 ? 65537 : rawExponent,
      modulus,
      encoded: own,
    };
    return pub;
  }

  // TPMS_ECC_PARMS (Part 2, 12.2.3.6): symmetric, scheme, curveID, kdf.
  const scheme = decodeEccScheme(r);
  const curveAt = r.offset;
  const curveId = r.u16be('curveID');
  const kdf = decodeKdfScheme(r);
  // TPMS_ECC_POINT (Part 2, 11.2.5.2): two TPM2B_ECC_PARAMETER coordinates.
  const curve = ECC_CURVES.get(curveId);
  const cap = curve?.size ?? MAX_ECC_COORDINATE_BYTES;
  const x = r.tpm2b('unique.ecc.x', cap);
  const y = r.tpm2b('unique.ecc.y', cap);
  if (x.length === 0 || y.length === 0) {
    throw new BulwarkError('TPM_PUBLIC_MALFORMED', `ECC point at offset ${curveAt} has an empty coordinate`, { offset: curveAt });
  }
  r.expectEnd('TPMT_PUBLIC');
  const pub: EccPublic = { type: 'ecc', nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveId, kdf, x, y, encoded: own };
  return pub;
}

/**
 * Decodes a TPM2B_PUBLIC (Part 2, 12.2.5): a big-endian u16 size then exactly that many
 * bytes of TPMT_PUBLIC, as `tpm2_readpublic -o` and `tpm2_createak -u` write it.
 * Untrusted input; throws BulwarkError like `decodeTpmtPublic`.
 */
export function decodeTpm2bPublic(bytes: Uint8Array): TpmtPublic {
  const r = new ByteReader(bytes, 'TPM_PUBLIC_MALFORMED');
  const inner = r.tpm2b('TPM2B_PUBLIC', MAX_TPMT_PUBLIC_BYTES);
  r.expectEnd('TPM2B_PUBLIC');
  return decodeTpmtPublic(inner);
}

/**
 * The Name of an object (Part 1, 16): nameAlg as a big-endian u16, then the nameAlg
 * digest of the marshaled TPMT_PUBLIC. Pure computation over decoded (untrusted) data:
 * a Name identifies a key, it does not vouch for it. Throws TPM_ALG_UNSUPPORTED for a
 * nameAlg without a known hash (including TPM_ALG_NULL).
 */
export function computeName(pub: TpmtPublic): Uint8Array {
  const hash = HASH_ALGS.get(pub.nameAlg);
  if (hash === undefined) {
    throw new BulwarkError('TPM_ALG_UNSUPPORTED', `nameAlg 0x${pub.nameAlg.toString(16)} has no hash Bulwark supports`, { nameAlg: pub.nameAlg });
  }
  const digest = createHash(hash.name).update(pub.encoded).digest();
  return concatBytes(Uint8Array.of(pub.nameAlg >> 8, pub.nameAlg & 0xff), new Uint8Array(digest));
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Big-endian bytes of a positive integer, without leading zeros (JWK "e"). */
function minimalBigEndian(value: number): Uint8Array {
  const out: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Uint8Array.from(out);
}

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length === size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

function keyInvalid(message: string, cause?: unknown): BulwarkError {
  return new BulwarkError('KEY_INVALID', message, {}, cause === undefined ? undefined : { cause });
}

/**
 * The public key of a decoded TPMT_PUBLIC as a node:crypto KeyObject (RSA, or ECC on
 * NIST P-256/P-384/P-521). Says nothing about whether the key is trusted; a point off
 * the curve, an even modulus or exponent, or an unknown curve throws KEY_INVALID.
 */
export function tpmtPublicToKeyObject(pub: TpmtPublic): KeyObject {
  let jwk: JsonWebKey;
  if (pub.type === 'rsa') {
    const first = pub.modulus[0] ?? 0;
    const last = pub.modulus[pub.modulus.length - 1] ?? 0;
    // An RSA modulus of keyBits bits has its top bit set and, as a product of odd primes, is odd.
    if ((first & 0x80) === 0 || (last & 1) === 0) throw keyInvalid(`RSA modulus is not a ${pub.keyBits}-bit odd number`);
    if (pub.exponent < 3 || pub.exponent % 2 === 0) throw keyInvalid(`RSA exponent ${pub.exponent} is not an odd number of at least 3`);
    jwk = { kty: 'RSA', n: base64url(pub.modulus), e: base64url(minimalBigEndian(pub.exponent)) };
  } else {
    const curve = ECC_CURVES.get(pub.curveId);
    if (curve === undefined) throw keyInvalid(`ECC curve 0x${pub.curveId.toString(16)} is not P-256, P-384 or P-521`);
    if (pub.x.length > curve.size || pub.y.length > curve.size) throw keyInvalid(`ECC coordinates are longer than ${curve.size} bytes`);
    jwk = { kty: 'EC', crv: curve.jwk, x: base64url(leftPad(pub.x, curve.size)), y: base64url(leftPad(pub.y, curve.size)) };
  }
  try {
    // node:crypto (OpenSSL) refuses an EC point that is not on the curve.
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw keyInvalid(`the ${pub.type.toUpperCase()} public key is not a valid key`, err);
  }
}

function algName(alg: number): string {
  return HASH_ALGS.get(alg)?.name ?? `0x${alg.toString(16)}`;
}

/**
 * Judges a decoded AK public area against what an attestation key must be (TPMA_OBJECT,
 * Part 2, 8.3): a restricted signing key that never decrypts, made in
 * and bound to its TPM (fixedTPM, fixedParent, sensitiveDataOrigin), with a nameAlg and
 * signing hash of SHA-256 or stronger, RSASSA/RSAPSS (RSA ≥ 2048 bits) or ECDSA on a
 * NIST curve, and no symmetric algorithm. Returns one AK_ATTRIBUTES_INVALID finding per
 * violation; an empty list means the attributes are acceptable (the key is still untrusted
 * until a credential is activated).
 */
export function checkAkAttributes(pub: TpmtPublic): Finding[] {
  const findings: Finding[] = [];
  const attrs = pub.objectAttributes;
  const required: ReadonlyArray<readonly [keyof typeof TPMA_OBJECT, boolean]> = [
    ['restricted', true],
    ['sign', true],
    ['decrypt', false],
    ['fixedTPM', true],
    ['fixedParent', true],
    ['sensitiveDataOrigin', true],
  ];
  for (const [name, wanted] of required) {
    const set = (attrs & TPMA_OBJECT[name]) !== 0;
    if (set !== wanted) {
      findings.push(
        finding('AK_ATTRIBUTES_INVALID', `AK attribute ${name} is ${set ? 'set' : 'clear'}; an AK must have it ${wanted ? 'set' : 'clear'}`, {
          attribute: name,
          objectAttributes: attrs,
        }),
      );
    }
  }
  if (!AK_STRONG_HASHES.has(pub.nameAlg)) {
    findings.push(finding('AK_ATTRIBUTES_INVALID', `AK nameAlg ${algName(pub.nameAlg)} is weaker than sha256 or unknown`, { attribute: 'nameAlg', nameAlg: pub.nameAlg }));
  }
  // Part 2, 12.2.3.5/12.2.3.6: symmetric is TPM_ALG_NULL unless the key is a restricted decryption key.
  if (pub.symmetric !== null) {
    findings.push(finding('AK_ATTRIBUTES_INVALID', 'AK has a symmetric algorithm; a signing key must have TPM_ALG_NULL', { attribute: 'symmetric', algorithm: pub.symmetric.algorithm }));
  }
  const scheme = pub.scheme;
  const allowedSchemes: readonly number[] = pub.type === 'rsa' ? [TPM_ALG.RSASSA, TPM_ALG.RSAPSS] : [TPM_ALG.ECDSA];
  if (scheme === null || !allowedSchemes.includes(scheme.scheme)) {
    findings.push(
      finding('AK_ATTRIBUTES_INVALID', `AK signing scheme ${scheme === null ? 'TPM_ALG_NULL' : `0x${scheme.scheme.toString(16)}`} is not ${pub.type === 'rsa' ? 'RSASSA or RSAPSS' : 'ECDSA'}`, {
        attribute: 'scheme',
        scheme: scheme?.scheme ?? TPM_ALG.NULL,
      }),
    );
  } else if (!AK_STRONG_HASHES.has(scheme.hashAlg)) {
    findings.push(finding('AK_ATTRIBUTES_INVALID', `AK signing hash ${algName(scheme.hashAlg)} is weaker than sha256 or unknown`, { attribute: 'scheme.hashAlg', hashAlg: scheme.hashAlg }));
  }
  if (pub.type === 'rsa') {
    if (pub.keyBits < AK_MIN_RSA_BITS) {
      findings.push(finding('AK_ATTRIBUTES_INVALID', `AK RSA key of ${pub.keyBits} bits is shorter than ${AK_MIN_RSA_BITS}`, { attribute: 'keyBits', keyBits: pub.keyBits }));
    }
  } else if (!ECC_CURVES.has(pub.curveId)) {
    findings.push(finding('AK_ATTRIBUTES_INVALID', `AK curve 0x${pub.curveId.toString(16)} is not P-256, P-384 or P-521`, { attribute: 'curveId', curveId: pub.curveId }));
  }
  return findings;
}
