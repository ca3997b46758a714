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
  const json = ENVELOPE.parse(value, source);
  const signatures = json.signatures.map((s, i) => ({ keyid: s.keyid ?? '', sig: decodeBase64(s.sig, `/signatures/${i}/sig`, 'ENVELOPE_MALFORMED') }));
  return { payloadType: json.payloadType, payload: decodeBase64(json.payload, '/payload', 'ENVELOPE_MALFORMED'), signatures };
}

/** Parses envelope JSON text (or UTF-8 bytes) into an untrusted, decoded envelope; anything else is ENVELOPE_MALFORMED. */
export function parseEnvelope(text: string | Uint8Array, source?: string): DsseEnvelope {
  return decodeEnvelope(parseJsonText(text, WHAT, 'ENVELOPE_MALFORMED', source, MAX_ENVELOPE_BYTES), source);
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
