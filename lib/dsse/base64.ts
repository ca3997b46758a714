/**
 * Base64 as DSSE envelopes carry it (envelope.md: "Either standard or URL-safe encoding is
 * allowed"; protocol.md: verifiers MUST accept either). Decoding is strict where Node's
 * Buffer is lenient: one alphabet per string (RFC 4648 §4 or §5, never mixed), padding
 * either complete or absent, no whitespace, and the unused bits of the last character
 * zero, so each byte string has exactly one standard and one URL-safe spelling (with and
 * without padding) and a changed character always changes the bytes or is refused.
 */
import { BulwarkError, type ErrorCode } from '../errors.js';

/** RFC 4648 §4 (standard) or §5 (URL-safe) alphabet, optional "=" padding; checked per alphabet below. */
const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;

/** Value of a base64 character in either alphabet (-1 when it is none). */
function sextet(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c === 0x2b || c === 0x2d) return 62;
  if (c === 0x2f || c === 0x5f) return 63;
  return -1;
}

/**
 * Decodes standard or URL-safe base64, padded or not; anything else throws `code` with
 * `field` named (the JSON path of the value).
 *
 * Fast path: Buffer's (lenient, native) decoder reads both alphabets, and the text is
 * accepted only when it is exactly one of the four canonical spellings of the bytes it
 * decoded to, which holds for every valid text and for no other (a stray character, a
 * mixed alphabet, wrong padding or non-zero trailing bits all spell differently).
 */
export function decodeBase64(text: string, field: string, code: ErrorCode): Uint8Array {
  const buf = Buffer.from(text, 'base64');
  const standard = buf.toString('base64');
  if (text !== standard) {
    const padding = standard.length - unpaddedLength(standard);
    const urlSafe = buf.toString('base64url');
    const ok = text === standard.slice(0, standard.length - padding) || text === urlSafe || (padding > 0 && text === `${urlSafe}${'='.repeat(padding)}`);
    if (!ok) throw new BulwarkError(code, `${field} is not base64: ${whyNotBase64(text)}`, { path: field, length: text.length });
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function unpaddedLength(text: string): number {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  return end;
}

/** Why a text that is not a canonical base64 spelling is refused (for the message only). */
function whyNotBase64(text: string): string {
  if (!STANDARD.test(text) && !URL_SAFE.test(text)) return 'characters outside one base64 alphabet';
  const end = unpaddedLength(text);
  const padding = text.length - end;
  if (padding > 0 && text.length % 4 !== 0) return 'padding that does not complete a 4-character group';
  const rest = end % 4;
  if (rest === 1) return 'a length that no byte string encodes to';
  if (padding > 0 && padding !== (4 - rest) % 4) return 'wrong amount of padding';
  if (rest !== 0) {
    // The last character carries 4 (rest 2) or 2 (rest 3) bits that encode nothing: they must be 0.
    const last = sextet(text.charCodeAt(end - 1));
    if ((last & (rest === 2 ? 0x0f : 0x03)) !== 0) return 'non-zero bits after the last byte';
  }
  return 'not a canonical spelling';
}

/** Standard base64 with padding (RFC 4648 §4), as the envelope's producers write it. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
