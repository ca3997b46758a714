/**
 * DSSE Pre-Authentication Encoding (secure-systems-lab/dsse protocol.md, "Signature
 * Definition"): what is signed is never the payload alone but
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * with LEN the byte length in ASCII decimal without leading zeros, so a signature binds the
 * payload type as well as the payload and no (type, body) pair encodes like another.
 */

const encoder = new TextEncoder();
const SP = 0x20;
/** "DSSEv1" followed by SP. */
const PREFIX = encoder.encode('DSSEv1 ');

/** PAE(UTF8(payloadType), payload): the bytes every signature of an envelope covers. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType);
  // LEN() of bytes, not of UTF-16 code units: a type with non-ASCII characters counts its UTF-8 bytes.
  const typeLen = encoder.encode(String(type.length));
  const bodyLen = encoder.encode(String(payload.length));
  const out = new Uint8Array(PREFIX.length + typeLen.length + 1 + type.length + 1 + bodyLen.length + 1 + payload.length);
  let at = 0;
  out.set(PREFIX, at);
  at += PREFIX.length;
  out.set(typeLen, at);
  at += typeLen.length;
  out[at++] = SP;
  out.set(type, at);
  at += type.length;
  out[at++] = SP;
  out.set(bodyLen, at);
  at += bodyLen.length;
  out[at++] = SP;
  out.set(payload, at);
  return out;
}
