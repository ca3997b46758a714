/**
 * The DSSE JSON envelope (secure-systems-lab/dsse envelope.md, v1.0):
 *
 *   {"payload": "<Base64(SERIALIZED_BODY)>", "payloadType": "<PAYLOAD_TYPE>",
 *    "signatures": [{"keyid": "<KEYID>", "sig": "<Base64(SIGNATURE)>"}]}
 *
 * Parsing validates the shape through lib/schema and decodes every base64 field once;
 * the result is untrusted until verifyEnvelope() has checked it. Fields the spec does not
 * name are ignored, as envelope.md's parsing rules require ("Consumers MUST ignore
 * unrecognized fields"); a named field of the wrong type, an empty signature list, more
 * than MAX_ENVELOPE_SIGNATURES signatures, or a value that is not base64 is
 * ENVELOPE_MALFORMED.
 */
import { Type } from '@sinclair/typebox';
import { BulwarkError } from '../errors.js';
import { defineDocument, parseJsonText } from '../schema/index.js';
import { decodeBase64, encodeBase64 } from './base64.js';

/** Most signatures one envelope may carry: each is tried against every trusted key. */
export const MAX_ENVELOPE_SIGNATURES = 64;

/** Largest envelope text accepted (a runtime policy of a whole root file system, in base64, fits). */
export const MAX_ENVELOPE_BYTES = 64 * 1024 * 1024;

/** Longest payloadType (a media type or URI) accepted. */
export const MAX_PAYLOAD_TYPE_LENGTH = 1024;

/** Longest keyid accepted (a hint only: never used to decide anything). */
export const MAX_KEYID_LENGTH = 1024;

/** Longest base64 signature accepted: 8 KiB of text decodes to 6 KiB, beyond RSA-16384's 2 KiB. */
export const MAX_SIGNATURE_BASE64_LENGTH = 8192;

/** The envelope's JSON shape (before base64 decoding). */
export const DsseEnvelopeJsonSchema = Type.Object(
  {
    payload: Type.String({ maxLength: MAX_ENVELOPE_BYTES }),
    payloadType: Type.String({ maxLength: MAX_PAYLOAD_TYPE_LENGTH }),
    signatures: Type.Array(
      Type.Object({
        keyid: Type.Optional(Type.String({ maxLength: MAX_KEYID_LENGTH })),
        sig: Type.String({ maxLength: MAX_SIGNATURE_BASE64_LENGTH }),
      }),
      { minItems: 1, maxItems: MAX_ENVELOPE_SIGNATURES },
    ),
  },
  { $id: 'https://bulwark.invalid/schemas/dsse-envelope.json', title: 'DSSE envelope v1' },
);

const WHAT = 'DSSE envelope';
const ENVELOPE = defineDocument(DsseEnvelopeJsonSchema, WHAT, 'ENVELOPE_MALFORMED');

/** One signature of an envelope, decoded. An absent keyid and an empty one are the same (envelope.md). */
export interface DsseSignature {
  readonly keyid: string;
  readonly sig: Uint8Array;
}

/** A parsed, decoded envelope: untrusted (nothing in it has been verified). */
export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly DsseSignature[];
}

/** Validates an already-parsed JSON value as an envelope and decodes its base64 fields (untrusted result). */
export function decodeEnvelope(value: unknown, source?: string): DsseEnvelope {
  return decodeFields(ENVELOPE.parse(value, source));
}

/** Parses envelope JSON text (or UTF-8 bytes) into an untrusted, decoded envelope; anything else is ENVELOPE_MALFORMED. */
export function parseEnvelope(text: string | Uint8Array, source?: string): DsseEnvelope {
  if (text.length <= MAX_ENVELOPE_BYTES) {
    const str = typeof text === 'string' ? text : utf8OrNull(text);
    const fast = str === null ? null : scanCompactEnvelope(str);
    if (fast !== null) return decodeFields(fast);
  }
  return decodeEnvelope(parseJsonText(text, WHAT, 'ENVELOPE_MALFORMED', source, MAX_ENVELOPE_BYTES), source);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes as text, or null when they are not UTF-8 (the full parser says so). */
function utf8OrNull(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** An envelope's JSON fields (before base64 decoding), as the schema types them. */
interface EnvelopeFields {
  readonly payload: string;
  readonly payloadType: string;
  readonly signatures: readonly { readonly keyid?: string | undefined; readonly sig: string }[];
}

function decodeFields(json: EnvelopeFields): DsseEnvelope {
  const signatures = json.signatures.map((s, i) => ({ keyid: s.keyid ?? '', sig: decodeBase64(s.sig, `/signatures/${i}/sig`, 'ENVELOPE_MALFORMED') }));
  return { payloadType: json.payloadType, payload: decodeBase64(json.payload, '/payload', 'ENVELOPE_MALFORMED'), signatures };
}

/**
 * The fast path for the one layout encodeEnvelope() (and Go's and Python's DSSE encoders
 * without spaces) writes: `{"payload":"…","payloadType":"…","signatures":[{"keyid":"…",
 * "sig":"…"},…]}`, keyid optional, nothing before, between or after. It reads the strings
 * in place instead of building the JSON value (JSON.parse of a long base64 payload, the
 * depth walk and the schema check cost about as much as decoding it). It accepts only text
 * JSON.parse reads to the same fields: each string free of `\\` (no escapes to decode) and
 * of control characters (JSON forbids them raw; in base64 fields the strict decoder refuses
 * them, with the same code), within the schema's lengths, and
 * 1 to MAX_ENVELOPE_SIGNATURES signatures. Anything else (other key order, whitespace,
 * escapes, unknown fields, an error of any kind) returns null: the full parser decides,
 * with its messages.
 */
function scanCompactEnvelope(text: string): EnvelopeFields | null {
  let at = 0;
  /** Reads `"` + a plain string + `"`, at most `max` long, from `at`; null when it is not one. */
  const plainString = (max: number, base64 = false): string | null => {
    if (text.charCodeAt(at) !== 0x22) return null;
    const end = text.indexOf('"', at + 1);
    if (end < 0 || end - at - 1 > max) return null;
    const value = text.slice(at + 1, end);
    // A raw control character in base64 is refused by the strict decoder, as JSON refuses it: one scan less.
    if (base64 ? value.includes('\\') : !isPlain(value)) return null;
    at = end + 1;
    return value;
  };
  const literal = (expected: string): boolean => {
    if (!text.startsWith(expected, at)) return false;
    at += expected.length;
    return true;
  };
  if (!literal('{"payload":')) return null;
  const payload = plainString(MAX_ENVELOPE_BYTES, true);
  if (payload === null || !literal(',"payloadType":')) return null;
  const payloadType = plainString(MAX_PAYLOAD_TYPE_LENGTH);
  if (payloadType === null || !literal(',"signatures":[')) return null;
  const signatures: { keyid?: string; sig: string }[] = [];
  for (;;) {
    if (signatures.length === MAX_ENVELOPE_SIGNATURES) return null;
    let keyid: string | undefined;
    if (literal('{"keyid":')) {
      const id = plainString(MAX_KEYID_LENGTH);
      if (id === null || !literal(',"sig":')) return null;
      keyid = id;
    } else if (!literal('{"sig":')) {
      return null;
    }
    const sig = plainString(MAX_SIGNATURE_BASE64_LENGTH, true);
    if (sig === null || !literal('}')) return null;
    signatures.push(keyid === undefined ? { sig } : { keyid, sig });
    if (literal(',')) continue;
    if (literal(']}') && at === text.length) return { payload, payloadType, signatures };
    return null;
  }
}

/** A string JSON.parse reads as written: no backslash (escape) and no control character (U+0000-U+001F, which JSON forbids raw). */
const NOT_PLAIN = /[\\\u0000-\u001f]/;

function isPlain(value: string): boolean {
  return !NOT_PLAIN.test(value);
}

/** The envelope as JSON text, standard base64 with padding; keyid left out when empty. */
export function encodeEnvelope(envelope: DsseEnvelope): string {
  if (envelope.signatures.length === 0 || envelope.signatures.length > MAX_ENVELOPE_SIGNATURES) {
    throw new BulwarkError('USAGE', `an envelope carries 1 to ${MAX_ENVELOPE_SIGNATURES} signatures, not ${envelope.signatures.length}`);
  }
  return JSON.stringify({
    payload: encodeBase64(envelope.payload),
    payloadType: envelope.payloadType,
    signatures: envelope.signatures.map((s) => (s.keyid === '' ? { sig: encodeBase64(s.sig) } : { keyid: s.keyid, sig: encodeBase64(s.sig) })),
  });
}
