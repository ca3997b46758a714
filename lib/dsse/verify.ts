/**
 * DSSE verification (protocol.md "Multi-signature Verification"): a (t, n)-envelope is
 * valid when its signatures verify under at least t distinct trusted keys.
 *
 * - The payloadType is compared with the one the caller expects first: an envelope of
 *   another type is PAYLOAD_TYPE_MISMATCH whatever its signatures.
 * - Each signature is tried against every trusted key not yet counted. The keyid is a hint
 *   the spec forbids using for security decisions; Bulwark does not use it at all (not even
 *   to skip keys), so changing or removing keyids changes nothing.
 * - A key counts once however many signatures it made; keys are distinct by their SPKI.
 * - No key verified: SIGNATURE_INVALID; some but fewer than t: SIGNATURE_THRESHOLD_NOT_MET
 *   (details.verified, details.threshold).
 * - On success the payload returned is the very byte array the signatures were checked
 *   over (protocol.md: never re-parse the envelope after verification).
 */
import { BulwarkError } from '../errors.js';
import { parseEnvelope, type DsseEnvelope } from './envelope.js';
import { prepareTrustedKeys, type PreparedKey, type TrustedKey } from './keys.js';
import { paeTransient } from './pae.js';
import type { KeyObject } from 'node:crypto';

declare const verifiedBrand: unique symbol;

/** A trusted key that verified a signature of the envelope. */
export interface VerifiedKey {
  /** Position of the key in the trusted key list. */
  readonly index: number;
  /** The trusted key's keyid as the caller gave it ('' when none): never the envelope's. */
  readonly keyid: string;
}

/** An envelope whose payload is signed by a threshold of trusted keys: only verifyEnvelope() makes one. */
export interface VerifiedEnvelope {
  readonly [verifiedBrand]: true;
  readonly payloadType: string;
  /** The payload bytes the signatures cover. */
  readonly payload: Uint8Array;
  /** Distinct trusted keys that verified, in trusted-key order. */
  readonly keys: readonly VerifiedKey[];
}

/** Trusted keys checked once (prepareTrustedKeys), to verify many envelopes without redoing it. */
export interface TrustedKeySet {
  readonly prepared: readonly PreparedKey[];
}

/** Prepares trusted keys once for many verifications (the same checks verifyEnvelope makes). */
export function trustedKeySet(keys: readonly (KeyObject | TrustedKey)[]): TrustedKeySet {
  return { prepared: prepareTrustedKeys(keys) };
}

export interface VerifyEnvelopeOptions {
  /** The keys whose signatures count: KeyObjects, {key, keyid?, scheme?}, or a prepared set. */
  readonly trustedKeys: readonly (KeyObject | TrustedKey)[] | TrustedKeySet;
  /** How many distinct trusted keys must verify (default 1). */
  readonly threshold?: number;
  /** The payloadType the caller will interpret the payload as. */
  readonly payloadType: string;
}

/**
 * Verifies a DSSE envelope (JSON text, bytes, or already parsed) against trusted keys and
 * a threshold; returns the signed payload, or throws ENVELOPE_MALFORMED,
 * PAYLOAD_TYPE_MISMATCH, SIGNATURE_INVALID or SIGNATURE_THRESHOLD_NOT_MET.
 */
export function verifyEnvelope(envelope: DsseEnvelope | string | Uint8Array, options: VerifyEnvelopeOptions): VerifiedEnvelope {
  const keys = 'prepared' in options.trustedKeys ? options.trustedKeys.prepared : prepareTrustedKeys(options.trustedKeys);
  const threshold = options.threshold ?? 1;
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new BulwarkError('USAGE', `threshold must be a positive integer, not ${threshold}`);
  if (threshold > keys.length) {
    throw new BulwarkError('USAGE', `threshold ${threshold} can never be met by ${keys.length} distinct trusted key(s)`, { threshold, keys: keys.length });
  }
  const env = typeof envelope === 'string' || envelope instanceof Uint8Array ? parseEnvelope(envelope) : envelope;
  if (env.payloadType !== options.payloadType) {
    throw new BulwarkError('PAYLOAD_TYPE_MISMATCH', `envelope payloadType ${JSON.stringify(cut(env.payloadType))} is not ${JSON.stringify(options.payloadType)}`, {
      payloadType: cut(env.payloadType),
      expected: options.payloadType,
    });
  }
  // Used by the synchronous checks below only, then dropped: a reused buffer (paeTransient).
  const message = paeTransient(env.payloadType, env.payload);
  const verified = new Array<boolean>(keys.length).fill(false);
  let count = 0;
  for (const signature of env.signatures) {
    if (count === keys.length) break;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      if (key === undefined || verified[k] === true) continue;
      if (key.verify(message, signature.sig)) {
        verified[k] = true;
        count++;
        // One signature is one key's: a second key verifying the same bytes would be a collision.
        break;
      }
    }
  }
  const details = { verified: count, threshold, signatures: env.signatures.length, keys: keys.length };
  if (count === 0) throw new BulwarkError('SIGNATURE_INVALID', `no signature of the envelope verifies with any of ${keys.length} trusted key(s)`, details);
  if (count < threshold) {
    throw new BulwarkError('SIGNATURE_THRESHOLD_NOT_MET', `${count} distinct trusted key(s) verified the envelope, ${threshold} needed`, details);
  }
  const out: VerifiedKey[] = [];
  keys.forEach((k, i) => {
    if (verified[i] === true) out.push({ index: k.index, keyid: k.keyid });
  });
  return brand({ payloadType: env.payloadType, payload: env.payload, keys: out });
}

/** The one place a VerifiedEnvelope is made. */
function brand(value: Omit<VerifiedEnvelope, typeof verifiedBrand>): VerifiedEnvelope {
  return value as VerifiedEnvelope;
}

/** A payloadType from an envelope, cut for messages and details. */
function cut(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 200)}…`;
}
