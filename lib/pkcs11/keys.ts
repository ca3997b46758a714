/**
 * Key and signature encodings between PKCS #11 and node:crypto, pure:
 * - ECDSA signatures: CKM_ECDSA returns r ‖ s, each as wide as the curve order (PKCS #11
 *   v2.40 Current Mechanisms, 2.3.1); sigstore, in-toto and node:crypto's default write
 *   the X9.62 ECDSA-Sig-Value, SEQUENCE { r INTEGER, s INTEGER } (RFC 3279, 2.2.3).
 * - EC public keys: CKA_EC_PARAMS is the DER of the curve's OBJECT IDENTIFIER (namedCurve),
 *   CKA_EC_POINT a DER OCTET STRING around the uncompressed point 04 ‖ X ‖ Y (SEC 1, 2.3.3).
 * - RSA public keys: CKA_MODULUS and CKA_PUBLIC_EXPONENT, big-endian magnitudes.
 * Public keys are returned as JWKs, which node:crypto's createPublicKey takes.
 */
import { BulwarkError } from '../errors.js';
import { DER_TAG, DerReader, DerWriter, decodeOid } from '../pki/index.js';

/** The curves Bulwark signs with: OID, JWK name, field size in bytes, the hash paired with it. */
export const PKCS11_EC_CURVES = {
  'P-256': { oid: '1.2.840.10045.3.1.7', size: 32, hash: 'sha256' },
  'P-384': { oid: '1.3.132.0.34', size: 48, hash: 'sha384' },
} as const;
export type Pkcs11EcCurve = keyof typeof PKCS11_EC_CURVES;

/** A public key as node:crypto's createPublicKey({ format: 'jwk' }) takes it. */
export type PublicJwk =
  | { readonly kty: 'RSA'; readonly n: string; readonly e: string }
  | { readonly kty: 'EC'; readonly crv: Pkcs11EcCurve; readonly x: string; readonly y: string };

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** The curve a CKA_EC_PARAMS value names; KEY_INVALID for another curve or explicit parameters. */
export function curveOfEcParams(ecParams: Uint8Array): Pkcs11EcCurve {
  const r = new DerReader(ecParams, 'KEY_INVALID');
  const oid = decodeOid(r.expect(DER_TAG.OID, 'EC parameters'), 'KEY_INVALID');
  r.end('EC parameters');
  for (const [name, curve] of Object.entries(PKCS11_EC_CURVES)) {
    if (curve.oid === oid && (name === 'P-256' || name === 'P-384')) return name;
  }
  throw new BulwarkError('KEY_INVALID', `EC curve ${oid} is not P-256 or P-384`, { oid });
}

/** CKA_EC_PARAMS for a curve: the DER of its OBJECT IDENTIFIER. */
export function ecParamsOf(curve: Pkcs11EcCurve): Uint8Array {
  return new DerWriter().oid(PKCS11_EC_CURVES[curve].oid).finish();
}

/** The JWK of an EC public key from CKA_EC_PARAMS and CKA_EC_POINT. Throws KEY_INVALID. */
export function ecPublicJwk(ecParams: Uint8Array, ecPoint: Uint8Array): PublicJwk {
  const crv = curveOfEcParams(ecParams);
  const size = PKCS11_EC_CURVES[crv].size;
  // PKCS #11 v2.40 asks for the DER OCTET STRING; a few modules return the bare point.
  let point = ecPoint;
  if (ecPoint.length !== 1 + 2 * size) {
    const r = new DerReader(ecPoint, 'KEY_INVALID');
    point = r.expect(DER_TAG.OCTET_STRING, 'EC point');
    r.end('EC point');
  }
  if (point.length !== 1 + 2 * size || point[0] !== 0x04) throw new BulwarkError('KEY_INVALID', `EC point is not an uncompressed ${crv} point`, { length: point.length });
  return { kty: 'EC', crv, x: b64url(point.subarray(1, 1 + size)), y: b64url(point.subarray(1 + size)) };
}

/** The JWK of an RSA public key from CKA_MODULUS and CKA_PUBLIC_EXPONENT. */
export function rsaPublicJwk(modulus: Uint8Array, exponent: Uint8Array): PublicJwk {
  const strip = (b: Uint8Array): Uint8Array => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i);
  };
  if (modulus.length === 0 || exponent.length === 0) throw new BulwarkError('KEY_INVALID', 'RSA key without modulus or exponent');
  return { kty: 'RSA', n: b64url(strip(modulus)), e: b64url(strip(exponent)) };
}

/** An ECDSA signature r ‖ s (each `size` bytes) as DER ECDSA-Sig-Value. Throws KEY_INVALID on a wrong length. */
export function ecdsaRawToDer(raw: Uint8Array, size: number): Uint8Array {
  if (raw.length !== 2 * size) throw new BulwarkError('KEY_INVALID', `ECDSA signature of ${raw.length} bytes where r ‖ s is ${2 * size}`, { length: raw.length });
  return new DerWriter()
    .sequence((w) => w.unsignedInteger(raw.subarray(0, size)).unsignedInteger(raw.subarray(size)))
    .finish();
}

/** A DER ECDSA-Sig-Value as r ‖ s of `size` bytes each. Throws KEY_INVALID for anything else. */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array {
  const outer = new DerReader(der, 'KEY_INVALID');
  const seq = outer.nested(DER_TAG.SEQUENCE, 'ECDSA-Sig-Value');
  outer.end('ECDSA-Sig-Value');
  const out = new Uint8Array(2 * size);
  for (const [i, what] of [[0, 'r'], [1, 's']] as const) {
    let v = seq.expect(DER_TAG.INTEGER, what);
    const negative = v.length === 0 || ((v[0] ?? 0) & 0x80) !== 0;
    // A positive INTEGER whose high bit is set carries one leading 0x00 (X.690, 8.3.2).
    if (v.length > 1 && v[0] === 0 && ((v[1] ?? 0) & 0x80) !== 0) v = v.subarray(1);
    if (negative || v.length > size) throw new BulwarkError('KEY_INVALID', `ECDSA ${what} is not a positive integer of at most ${size} bytes`);
    out.set(v, i * size + size - v.length);
  }
  seq.end('ECDSA-Sig-Value');
  return out;
}
