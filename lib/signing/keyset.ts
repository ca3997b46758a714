/**
 * Trusted key sets, one per kind of signed document (measured-boot, runtime, baseline,
 * app), rotated as TUF rotates its root (TUF specification §5.3 "Update the root role"):
 * a new set is trusted only when a threshold of the CURRENT set and a threshold of the NEW
 * set itself have signed it, and its serial is above the current one, so an attacker with
 * fewer keys than either threshold cannot rotate, and an old set (whose keys may since have
 * leaked) cannot be replayed. The first set of a kind has no predecessor: an admin installs
 * it (bootstrap), and it must still be signed by a threshold of its own keys.
 *
 * A key set travels as a DSSE envelope of payloadType application/vnd.bulwark.keyset+json.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { BulwarkError, isBulwarkError } from '../errors.js';
import { defineDocument, literalUnion } from '../schema/index.js';
import { PAYLOAD_TYPES, SIGNATURE_SCHEMES, parseEnvelope, trustedKeySet, verifyEnvelope, type DsseEnvelope, type TrustedKeySet, type VerifiedEnvelope } from '../dsse/index.js';

/** The kinds of signed documents, each with its own key set. */
export const KEYSET_KINDS = ['measured-boot', 'runtime', 'baseline', 'app'] as const;
export type KeySetKind = (typeof KEYSET_KINDS)[number];

/** The most keys one set holds. */
export const MAX_KEYSET_KEYS = 32;

/** The payloadType documents of each kind are signed as. */
export const PAYLOAD_TYPE_OF_KIND: Readonly<Record<KeySetKind, string>> = {
  'measured-boot': PAYLOAD_TYPES.policy,
  runtime: PAYLOAD_TYPES.policy,
  baseline: PAYLOAD_TYPES.baseline,
  app: PAYLOAD_TYPES.app,
};

export function isKeySetKind(kind: string): kind is KeySetKind {
  return KEYSET_KINDS.some((k) => k === kind);
}

/** A key set document: the payload of a keyset envelope. */
export const KeySetDocumentSchema = Type.Object(
  {
    version: Type.Literal(1),
    kind: literalUnion(KEYSET_KINDS),
    /** Increases with every rotation; a set at or below the current serial is refused. */
    serial: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    /** How many distinct keys of this set must sign a document (and the next key set). */
    threshold: Type.Integer({ minimum: 1, maximum: MAX_KEYSET_KEYS }),
    keys: Type.Array(
      Type.Object(
        {
          keyid: Type.String({ minLength: 1, maxLength: 256 }),
          publicKeyPem: Type.String({ minLength: 1, maxLength: 16384 }),
          scheme: Type.Optional(literalUnion(SIGNATURE_SCHEMES)),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_KEYSET_KEYS },
    ),
    /** RFC 3339 time after which the set verifies nothing (a rotation signed by it is still accepted, as TUF does). */
    expires: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export type KeySetDocument = Static<typeof KeySetDocumentSchema>;

const KEYSET_DOCUMENT = defineDocument(KeySetDocumentSchema, 'key set', 'KEYSET_INVALID');

declare const keySetBrand: unique symbol;

/** A key set accepted by acceptKeySet() (self-signed to its threshold, and by its predecessor): only acceptKeySet, trustKeySet and pinnedKeySet make one. */
export interface KeySet {
  readonly [keySetBrand]: true;
  readonly document: KeySetDocument;
  /** The keys, prepared once for many verifications. */
  readonly trusted: TrustedKeySet;
  /** Milliseconds since the epoch, or null for a set that does not expire. */
  readonly expiresAt: number | null;
}

/** Parses and checks a key set document (its keys usable, its threshold reachable by distinct keys): KEYSET_INVALID. Trust: none. */
export function parseKeySetDocument(bytes: Uint8Array | string, source?: string): { document: KeySetDocument; trusted: TrustedKeySet; expiresAt: number | null } {
  const document = KEYSET_DOCUMENT.parseJson(bytes, source);
  const keyids = new Set<string>();
  const keys: { key: KeyObject; keyid: string; scheme?: (typeof SIGNATURE_SCHEMES)[number] }[] = [];
  for (const [i, k] of document.keys.entries()) {
    if (keyids.has(k.keyid)) throw new BulwarkError('KEYSET_INVALID', `key set: keyid ${JSON.stringify(k.keyid)} is listed twice`, { path: `/keys/${i}/keyid` });
    keyids.add(k.keyid);
    let key: KeyObject;
    try {
      key = createPublicKey(k.publicKeyPem);
    } catch (err) {
      throw new BulwarkError('KEYSET_INVALID', `key set: key ${k.keyid} is not a PEM public key`, { path: `/keys/${i}/publicKeyPem` }, { cause: err });
    }
    if (key.type !== 'public') throw new BulwarkError('KEYSET_INVALID', `key set: key ${k.keyid} is not a public key`, { path: `/keys/${i}/publicKeyPem` });
    keys.push({ key, keyid: k.keyid, ...(k.scheme === undefined ? {} : { scheme: k.scheme }) });
  }
  let trusted: TrustedKeySet;
  try {
    trusted = trustedKeySet(keys);
  } catch (err) {
    throw new BulwarkError('KEYSET_INVALID', `key set: ${err instanceof Error ? err.message : 'a key cannot be used'}`, {}, { cause: err });
  }
  // Keys listed twice (the same SPKI under two keyids) count once: the threshold is over distinct keys.
  if (document.threshold > trusted.prepared.length) {
    throw new BulwarkError('KEYSET_INVALID', `key set: threshold ${document.threshold} is above its ${trusted.prepared.length} distinct key(s)`, { path: '/threshold' });
  }
  let expiresAt: number | null = null;
  if (document.expires !== undefined) {
    expiresAt = Date.parse(document.expires);
    if (!Number.isFinite(expiresAt)) throw new BulwarkError('KEYSET_INVALID', 'key set: expires is not an RFC 3339 time', { path: '/expires' });
  }
  return { document, trusted, expiresAt };
}

function brand(value: Omit<KeySet, typeof keySetBrand>): KeySet {
  return value as KeySet;
}

/** The payload of a keyset envelope, before any signature is checked (to learn the keys it must be self-signed by). */
function unverifiedPayload(env: DsseEnvelope): Uint8Array {
  if (env.payloadType !== PAYLOAD_TYPES.keyset) {
    throw new BulwarkError('PAYLOAD_TYPE_MISMATCH', `envelope payloadType ${JSON.stringify(env.payloadType.slice(0, 200))} is not ${JSON.stringify(PAYLOAD_TYPES.keyset)}`, {
      payloadType: env.payloadType.slice(0, 200),
      expected: PAYLOAD_TYPES.keyset,
    });
  }
  return env.payload;
}

/**
 * Decides a key set envelope for `kind` against the current set of that kind (null: none
 * yet, the bootstrap). Returns the new set, or the refusal as a value:
 * ENVELOPE_MALFORMED, PAYLOAD_TYPE_MISMATCH, SIGNATURE_INVALID / SIGNATURE_THRESHOLD_NOT_MET
 * (of the current set: details.signedBy "current"; of the new one: "new"), KEYSET_INVALID,
 * KEYSET_ROLLBACK (serial not above the current one), KEYSET_EXPIRED (a new set already expired).
 * Order: the current set's signatures are checked before the unverified payload is trusted
 * for anything but its own keys. Pure.
 */
export function acceptKeySet(kind: KeySetKind, current: KeySet | null, envelope: DsseEnvelope | Uint8Array | string, now: number): KeySet | BulwarkError {
  return decideKeySet(kind, current, envelope, now, true);
}

function decideKeySet(kind: KeySetKind, current: KeySet | null, envelope: DsseEnvelope | Uint8Array | string, now: number, checkExpiry: boolean): KeySet | BulwarkError {
  try {
    const env = typeof envelope === 'string' || envelope instanceof Uint8Array ? parseEnvelope(envelope) : envelope;
    if (current !== null) {
      if (current.document.kind !== kind) throw new BulwarkError('USAGE', `the current key set is of kind ${current.document.kind}, not ${kind}`);
      signedBy('current', env, current.trusted, current.document.threshold);
    }
    const parsed = parseKeySetDocument(unverifiedPayload(env), `${kind} key set`);
    if (parsed.document.kind !== kind) throw new BulwarkError('KEYSET_INVALID', `the key set is of kind ${parsed.document.kind}, not ${kind}`, { path: '/kind' });
    if (current !== null && parsed.document.serial <= current.document.serial) {
      throw new BulwarkError('KEYSET_ROLLBACK', `key set serial ${parsed.document.serial} is not above the current serial ${current.document.serial}`, {
        serial: parsed.document.serial,
        current: current.document.serial,
      });
    }
    signedBy('new', env, parsed.trusted, parsed.document.threshold);
    if (checkExpiry && parsed.expiresAt !== null && parsed.expiresAt <= now) throw new BulwarkError('KEYSET_EXPIRED', `the key set expired at ${parsed.document.expires ?? ''}`);
    return brand(parsed);
  } catch (err) {
    if (isBulwarkError(err)) return err;
    return new BulwarkError('KEYSET_INVALID', 'the key set cannot be read', {}, { cause: err });
  }
}

function signedBy(which: 'current' | 'new', env: DsseEnvelope, keys: TrustedKeySet, threshold: number): VerifiedEnvelope {
  try {
    return verifyEnvelope(env, { trustedKeys: keys, threshold, payloadType: PAYLOAD_TYPES.keyset });
  } catch (err) {
    if (isBulwarkError(err) && (err.code === 'SIGNATURE_INVALID' || err.code === 'SIGNATURE_THRESHOLD_NOT_MET')) {
      throw new BulwarkError(err.code, `${which === 'current' ? 'the current' : 'the new'} key set: ${err.message}`, { ...err.details, signedBy: which }, { cause: err });
    }
    throw err;
  }
}

/** What acceptKeySetChain() made of a chain of rotations: the set reached, how many steps were taken, and the refusal that stopped it. */
export interface KeySetChainResult {
  /** The last set accepted (`current` when none was). */
  readonly keyset: KeySet;
  /** How many envelopes of the chain were accepted, from its start. */
  readonly accepted: number;
  /** Why the envelope after the accepted ones was refused (null: the whole chain was accepted). */
  readonly refused: BulwarkError | null;
}

/**
 * Walks a chain of rotations from `current` (TUF specification §5.3: version N+1 signed by
 * a threshold of N and of itself, then N+2, ...), stopping at the first envelope refused
 * (by acceptKeySet's rules, KEYSET_ROLLBACK for a serial not above the set reached). As
 * TUF does, only the last set of the chain is checked not to have expired: an intermediate
 * set that expired since still hands trust on. At most `limit` envelopes are walked. Pure.
 */
export function acceptKeySetChain(kind: KeySetKind, current: KeySet, envelopes: readonly (Uint8Array | string)[], now: number): KeySetChainResult {
  let keyset = current;
  let accepted = 0;
  for (const [i, envelope] of envelopes.entries()) {
    const decided = decideKeySet(kind, keyset, envelope, now, i === envelopes.length - 1);
    if (decided instanceof BulwarkError) return { keyset, accepted, refused: decided };
    keyset = decided;
    accepted++;
  }
  return { keyset, accepted, refused: null };
}

/**
 * A key set from public keys pinned in a host's configuration (a PEM file, before key sets
 * were distributed): serial 0, not expiring, so the first set the controller installed
 * (serial 1 and up) is accepted from it by the rotation rule when a threshold of the pinned
 * keys signed it. Trust: the configuration's.
 */
export function pinnedKeySet(kind: KeySetKind, keys: TrustedKeySet, threshold: number): KeySet {
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keys.prepared.length) {
    throw new BulwarkError('KEYSET_INVALID', `threshold ${threshold} can never be met by ${keys.prepared.length} distinct pinned key(s)`);
  }
  const document: KeySetDocument = {
    version: 1,
    kind,
    serial: 0,
    threshold,
    keys: keys.prepared.map((k, i) => ({
      keyid: k.keyid === '' ? `pinned-${i}` : k.keyid,
      publicKeyPem: createPublicKey({ key: Buffer.from(k.spki), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString(),
    })),
  };
  return brand({ document, trusted: keys, expiresAt: null });
}

/**
 * A key set read back from a store the controller alone writes, where it was accepted by
 * acceptKeySet() before: checked again to be self-signed to its threshold (a store edited
 * behind the controller's back gives SIGNATURE_* or KEYSET_INVALID), not against its
 * predecessor (which the store no longer needs to hold).
 */
export function trustKeySet(kind: KeySetKind, envelope: DsseEnvelope | Uint8Array | string): KeySet {
  const env = typeof envelope === 'string' || envelope instanceof Uint8Array ? parseEnvelope(envelope) : envelope;
  const parsed = parseKeySetDocument(unverifiedPayload(env), `${kind} key set`);
  if (parsed.document.kind !== kind) throw new BulwarkError('KEYSET_INVALID', `the key set is of kind ${parsed.document.kind}, not ${kind}`, { path: '/kind' });
  signedBy('new', env, parsed.trusted, parsed.document.threshold);
  return brand(parsed);
}

/**
 * Verifies a signed document of the set's kind: the payloadType of the kind, a threshold of
 * the set's distinct keys, the set not expired at `now`. Throws KEYSET_EXPIRED,
 * ENVELOPE_MALFORMED, PAYLOAD_TYPE_MISMATCH, SIGNATURE_INVALID, SIGNATURE_THRESHOLD_NOT_MET.
 */
export function verifyWithKeySet(envelope: DsseEnvelope | Uint8Array | string, keyset: KeySet, now: number): VerifiedEnvelope {
  if (keyset.expiresAt !== null && keyset.expiresAt <= now) {
    throw new BulwarkError('KEYSET_EXPIRED', `the ${keyset.document.kind} key set (serial ${keyset.document.serial}) expired at ${keyset.document.expires ?? ''}`);
  }
  return verifyEnvelope(envelope, { trustedKeys: keyset.trusted, threshold: keyset.document.threshold, payloadType: PAYLOAD_TYPE_OF_KIND[keyset.document.kind] });
}
