/**
 * DSSE Pre-Authentication Encoding (secure-systems-lab/dsse protocol.md, "Signature
 * Definition"): what is signed is never the payload alone but
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * with LEN the byte length in ASCII decimal without leading zeros, so a signature binds the
 * payload type as well as the payload and no (type, body) pair encodes like another.
 */

/** PAE(UTF8(payloadType), payload): the bytes every signature of an envelope covers. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  // LEN() of bytes, not of UTF-16 code units: a type with non-ASCII characters counts its UTF-8
  // bytes (Buffer.byteLength and Buffer#write agree, lone surrogates included, as U+FFFD).
  const typeLength = Buffer.byteLength(payloadType, 'utf8');
  const head = `DSSEv1 ${typeLength} `;
  const middle = ` ${payload.length} `;
  // Every byte is written below, so the unzeroed (pooled, for small sizes) allocation is safe.
  const out = Buffer.allocUnsafe(head.length + typeLength + middle.length + payload.length);
  let at = out.write(head, 0, 'latin1');
  at += out.write(payloadType, at, 'utf8');
  at += out.write(middle, at, 'latin1');
  out.set(payload, at);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Largest PAE kept in the reused buffer; a larger one is allocated for its call only. */
const SCRATCH_MAX = 1 << 20;
let scratch = Buffer.allocUnsafeSlow(4096);

/**
 * PAE written into a buffer reused from call to call: valid only until the next call, for a
 * caller that hands it to a synchronous crypto.verify and drops it. Verifying many envelopes
 * then allocates no PAE buffer per envelope (the allocation and its collection cost more
 * than the copy).
 */
export function paeTransient(payloadType: string, payload: Uint8Array): Uint8Array {
  const typeLength = Buffer.byteLength(payloadType, 'utf8');
  const head = `DSSEv1 ${typeLength} `;
  const middle = ` ${payload.length} `;
  const size = head.length + typeLength + middle.length + payload.length;
  if (size > SCRATCH_MAX) return pae(payloadType, payload);
  if (size > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, 2 ** Math.ceil(Math.log2(size))));
  let at = scratch.write(head, 0, 'latin1');
  at += scratch.write(payloadType, at, 'utf8');
  at += scratch.write(middle, at, 'latin1');
  scratch.set(payload, at);
  return new Uint8Array(scratch.buffer, scratch.byteOffset, size);
}
