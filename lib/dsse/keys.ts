/**
 * The key types and signature schemes DSSE envelopes are verified with, and how one
 * signature is checked against one key. DSSE leaves Sign() to the parties (protocol.md);
 * Bulwark's choices, one per key type:
 *
 * | key            | signature                                   | hash    |
 * | -------------- | ------------------------------------------- | ------- |
 * | RSA (≥ 2048)   | RSASSA-PSS (MGF1, any salt length) or PKCS#1 v1.5 | SHA-256 |
 * | ECDSA P-256    | ASN.1 DER (as sigstore/in-toto write), or raw r‖s | SHA-256 |
 * | ECDSA P-384    | ASN.1 DER, or raw r‖s                       | SHA-384 |
 * | Ed25519        | RFC 8032 (PureEdDSA)                        | —       |
 *
 * RSA: a PEM public key does not say which padding its owner signs with, so a key trusted
 * without a scheme accepts either (both are EUF-CMA secure with SHA-256, and the HSM signer
 * makes both); a key trusted with `scheme` accepts only that one. PSS verification takes
 * any salt length (PSS_SALTLEN_AUTO): PKCS#11 tokens sign with the digest length,
 * python-cryptography with the maximum. ECDSA: DER is tried when the signature looks like
 * a DER SEQUENCE and r‖s when it is exactly twice the field size; both name the same (r, s),
 * so accepting both encodings accepts nothing more.
 */
import { constants, createPublicKey, KeyObject, verify } from 'node:crypto';
import { BulwarkError } from '../errors.js';

/** Signature schemes; RSA keys may be pinned to one, the others have exactly one. */
export const SIGNATURE_SCHEMES = ['rsa-pss-sha256', 'rsa-pkcs1v15-sha256', 'ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'ed25519'] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

/** Smallest RSA modulus trusted. */
export const MIN_RSA_BITS = 2048;

/** A trusted public key, with an optional keyid (a label in results only) and an optional pinned scheme. */
export interface TrustedKey {
  readonly key: KeyObject;
  readonly keyid?: string;
  readonly scheme?: SignatureScheme;
}

/** One key ready to verify with: its checker and the SPKI DER that makes keys distinct. */
export interface PreparedKey {
  /** Position in the list it was given in. */
  readonly index: number;
  readonly keyid: string;
  readonly spki: Uint8Array;
  readonly verify: (message: Uint8Array, sig: Uint8Array) => boolean;
}

const { RSA_PKCS1_PSS_PADDING, RSA_PKCS1_PADDING, RSA_PSS_SALTLEN_AUTO } = constants;

function keyInvalid(index: number, why: string): BulwarkError {
  return new BulwarkError('KEY_INVALID', `trusted key ${index}: ${why}`, { index });
}

/** crypto.verify without exceptions: a signature OpenSSL cannot even decode is simply not valid. */
function tryVerify(algorithm: string | null, message: Uint8Array, key: Parameters<typeof verify>[2], sig: Uint8Array): boolean {
  try {
    return verify(algorithm, message, key, sig);
  } catch {
    return false;
  }
}

function ecdsaChecker(key: KeyObject, hash: string, fieldBytes: number): PreparedKey['verify'] {
  const der = { key, dsaEncoding: 'der' as const };
  const raw = { key, dsaEncoding: 'ieee-p1363' as const };
  return (message, sig) => {
    // A DER ECDSA-Sig-Value is a SEQUENCE (0x30); raw r‖s is exactly two field elements.
    if (sig[0] === 0x30 && tryVerify(hash, message, der, sig)) return true;
    return sig.length === 2 * fieldBytes && tryVerify(hash, message, raw, sig);
  };
}

/** The checker for one key, refusing key types and sizes Bulwark does not trust. */
function checkerFor(key: KeyObject, scheme: SignatureScheme | undefined, index: number): PreparedKey['verify'] {
  const type = key.asymmetricKeyType;
  const pinned = (allowed: readonly SignatureScheme[]): void => {
    if (scheme !== undefined && !allowed.includes(scheme)) throw keyInvalid(index, `a ${type ?? 'symmetric'} key cannot verify ${scheme}`);
  };
  switch (type) {
    case 'rsa': {
      pinned(['rsa-pss-sha256', 'rsa-pkcs1v15-sha256']);
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw keyInvalid(index, `RSA key of ${bits} bits (at least ${MIN_RSA_BITS})`);
      const pss = { key, padding: RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALTLEN_AUTO };
      const pkcs1 = { key, padding: RSA_PKCS1_PADDING };
      if (scheme === 'rsa-pss-sha256') return (m, s) => tryVerify('sha256', m, pss, s);
      if (scheme === 'rsa-pkcs1v15-sha256') return (m, s) => tryVerify('sha256', m, pkcs1, s);
      return (m, s) => tryVerify('sha256', m, pss, s) || tryVerify('sha256', m, pkcs1, s);
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') {
        pinned(['ecdsa-p256-sha256']);
        return ecdsaChecker(key, 'sha256', 32);
      }
      if (curve === 'secp384r1') {
        pinned(['ecdsa-p384-sha384']);
        return ecdsaChecker(key, 'sha384', 48);
      }
      throw keyInvalid(index, `EC key on curve ${curve ?? 'unknown'} (P-256 and P-384 only)`);
    }
    case 'ed25519':
      pinned(['ed25519']);
      return (m, s) => s.length === 64 && tryVerify(null, m, key, s);
    default:
      throw keyInvalid(index, `${type ?? 'symmetric'} keys are not trusted for DSSE (RSA, ECDSA P-256/P-384, Ed25519)`);
  }
}

/**
 * Checks and prepares trusted keys: each must be RSA ≥ 2048, ECDSA P-256/P-384 or Ed25519
 * (a private key is reduced to its public half). Keys listed twice (the same SPKI) are one key.
 */
export function prepareTrustedKeys(keys: readonly (KeyObject | TrustedKey)[]): PreparedKey[] {
  const out: PreparedKey[] = [];
  const seen = new Set<string>();
  keys.forEach((entry, index) => {
    const trusted: TrustedKey = entry instanceof KeyObject ? { key: entry } : entry;
    let key = trusted.key;
    if (key.type === 'private') key = createPublicKey(key);
    if (key.type !== 'public') throw keyInvalid(index, 'a secret key is not a public key');
    const spkiBuf = key.export({ type: 'spki', format: 'der' });
    const spki = new Uint8Array(spkiBuf.buffer, spkiBuf.byteOffset, spkiBuf.byteLength);
    const check = checkerFor(key, trusted.scheme, index);
    const id = spkiBuf.toString('base64');
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ index, keyid: trusted.keyid ?? '', spki, verify: check });
  });
  return out;
}
