import { BulwarkError, type ErrorCode } from '../errors.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 (RFC 4648 §4) with padding, canonical only: Node's decoder skips bad
 * characters silently, so the text is matched first and the decoded bytes must encode
 * back to the same text (no stray low bits in the last character).
 */
export function decodeBase64Strict(text: string, code: ErrorCode, what: string, maxBytes: number): Uint8Array {
  if (text.length > Math.ceil(maxBytes / 3) * 4) {
    throw new BulwarkError(code, `${what} is longer than ${maxBytes} bytes`, { what, length: text.length });
  }
  if (!BASE64.test(text)) throw new BulwarkError(code, `${what} is not standard padded base64`, { what });
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new BulwarkError(code, `${what} is not canonical base64`, { what });
  return new Uint8Array(bytes);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
