/**
 * DSSE signing (protocol.md "To sign"): each signer signs PAE(UTF8(payloadType), payload).
 * A signer is anything with `sign(message)`, so the PKCS#11 (HSM) signer plugs in beside
 * the node:crypto one made here from a private key.
 */
import { constants, createPrivateKey, KeyObject, sign } from 'node:crypto';
import { BulwarkError, toBulwarkError } from '../errors.js';
import { MAX_ENVELOPE_SIGNATURES, type DsseEnvelope } from './envelope.js';
import type { SignatureScheme } from './keys.js';
import { pae } from './pae.js';

/** Something that signs PAE bytes with one key: the signature as the verifier expects it (ECDSA in DER). */
export interface DsseSigner {
  /** Written into the envelope as a hint; never used by a verifier to decide. */
  readonly keyid?: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export interface KeySignerOptions {
  readonly keyid?: string;
  /** RSA only: PSS (default, salt length = digest length, as PKCS#11 tokens sign) or PKCS#1 v1.5. */
  readonly scheme?: SignatureScheme;
}

/**
 * A node:crypto signer for a private key (KeyObject or PEM text): RSA-PSS or PKCS#1 v1.5
 * with SHA-256, ECDSA P-256/SHA-256 or P-384/SHA-384 in DER, or Ed25519.
 */
export function keySigner(privateKey: KeyObject | string, options: KeySignerOptions = {}): DsseSigner {
  let key: KeyObject;
  try {
    key = privateKey instanceof KeyObject ? privateKey : createPrivateKey(privateKey);
  } catch (err) {
    throw new BulwarkError('KEY_INVALID', 'not a PEM private key', {}, { cause: err });
  }
  if (key.type !== 'private') throw new BulwarkError('KEY_INVALID', `a signer needs a private key, not a ${key.type} one`);
  const scheme = options.scheme;
  let run: (message: Uint8Array) => Uint8Array;
  const type = key.asymmetricKeyType;
  if (type === 'rsa' && (scheme === undefined || scheme === 'rsa-pss-sha256')) {
    run = (m) => sign('sha256', m, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  } else if (type === 'rsa' && scheme === 'rsa-pkcs1v15-sha256') {
    run = (m) => sign('sha256', m, { key, padding: constants.RSA_PKCS1_PADDING });
  } else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' && (scheme ?? 'ecdsa-p256-sha256') === 'ecdsa-p256-sha256') {
    run = (m) => sign('sha256', m, { key, dsaEncoding: 'der' });
  } else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1' && (scheme ?? 'ecdsa-p384-sha384') === 'ecdsa-p384-sha384') {
    run = (m) => sign('sha384', m, { key, dsaEncoding: 'der' });
  } else if (type === 'ed25519' && (scheme ?? 'ed25519') === 'ed25519') {
    run = (m) => sign(null, m, key);
  } else {
    throw new BulwarkError('KEY_INVALID', `cannot sign ${scheme ?? 'DSSE'} with a ${type ?? 'symmetric'} key (RSA, ECDSA P-256/P-384, Ed25519)`);
  }
  return {
    ...(options.keyid === undefined ? {} : { keyid: options.keyid }),
    sign: async (message) => {
      const sig = run(message);
      return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
    },
  };
}

/** Signs `payload` as `payloadType` with every signer, in order; the envelope to encode with encodeEnvelope(). */
export async function signEnvelope(payloadType: string, payload: Uint8Array, signers: readonly DsseSigner[]): Promise<DsseEnvelope> {
  if (signers.length === 0 || signers.length > MAX_ENVELOPE_SIGNATURES) {
    throw new BulwarkError('USAGE', `an envelope is signed by 1 to ${MAX_ENVELOPE_SIGNATURES} signers, not ${signers.length}`);
  }
  const message = pae(payloadType, payload);
  const signatures = [];
  for (const [i, signer] of signers.entries()) {
    let sig: Uint8Array;
    try {
      sig = await signer.sign(message);
    } catch (err) {
      throw toBulwarkError(err, 'SIGNING_FAILED', `signer ${i}${signer.keyid === undefined ? '' : ` (${signer.keyid})`} failed`);
    }
    signatures.push({ keyid: signer.keyid ?? '', sig });
  }
  return { payloadType, payload, signatures };
}
