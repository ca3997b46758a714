/**
 * What a verifier keeps of the IMA entries of one boot so that a policy change can judge
 * them again without the list: each distinct measurement (template, event name, digest,
 * signature, buffer, appended signature: everything a runtime policy looks at) once, with
 * the index and offset of its first entry. The template hash, the PCR and the field
 * encoding are not kept: they matter for replay, which has been done. Pure.
 *
 * Segment format (Bulwark's own, big-endian): "BIMR", u8 version 1, u32 count, then per
 * measurement: u32 index, u64 offset, u8 flags (1 violation, 2 signature, 4 buffer, 8 modsig,
 * 16 digest typed "ima", 32 digest typed "verity": the ima-ngv2/ima-sigv2 prefix),
 * u8-length template name, u8-length digest algorithm, u8-length digest, u16-length event
 * name, [u32-length signature], [u32-length buffer], [u8-length modsig algorithm, u8-length
 * modsig digest, u32-length modsig signature].
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter } from '../bytes.js';
import { BulwarkError } from '../errors.js';
import { IMA_LIMITS, IMA_PCR, isImaHashAlgorithmName, isImaTemplateName, type ImaEntry, type RecordedImaEntries } from './types.js';

const MAGIC = [0x42, 0x49, 0x4d, 0x52] as const; // "BIMR"
const VERSION = 1;

const FLAG = { violation: 1, signature: 2, buffer: 4, modsig: 8, digestIma: 16, digestVerity: 32 } as const;

/** Caps checked before anything is sliced: a segment holds at most this many measurements. */
export const RECORDED_IMA_LIMITS = {
  measurementsPerSegment: 1_000_000,
  pathBytes: 4096,
} as const;

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder('utf-8', { fatal: false });

/** The identity of a measurement: everything policy evaluation reads, nothing about where it stood. */
function measurementKey(e: ImaEntry): string {
  const h = createHash('sha1');
  const sep = Buffer.of(0xff);
  h.update(e.template).update(sep).update(e.violation ? '1' : '0').update(e.digestType ?? '-').update(sep).update(e.digestAlgorithm).update(sep).update(e.digest).update(sep).update(e.pathBytes).update(sep);
  if (e.signature !== null) h.update('s').update(e.signature);
  h.update(sep);
  if (e.buffer !== null) h.update('b').update(e.buffer);
  h.update(sep);
  if (e.modsig !== null) h.update('m').update(e.modsig.digestAlgorithm).update(e.modsig.digest).update(e.modsig.signature);
  return h.digest('binary');
}

/**
 * Encodes the measurements among `entries` whose key is not in `seen` (and adds their keys
 * to it): a segment to keep. Returns null when every one was seen before.
 */
export function encodeRecordedImaEntries(entries: readonly ImaEntry[], seen: Set<string>): Uint8Array | null {
  const w = new ByteWriter(64 * 1024);
  let count = 0;
  const body = new ByteWriter(64 * 1024);
  for (const e of entries) {
    const key = measurementKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    count++;
    const flags = (e.violation ? FLAG.violation : 0) | (e.signature !== null ? FLAG.signature : 0) | (e.buffer !== null ? FLAG.buffer : 0) | (e.modsig !== null ? FLAG.modsig : 0) |
      (e.digestType === 'ima' ? FLAG.digestIma : e.digestType === 'verity' ? FLAG.digestVerity : 0);
    body.u32be(e.index).u64be(BigInt(e.offset)).u8(flags);
    shortString(body, e.template);
    shortString(body, e.digestAlgorithm);
    body.u8(e.digest.length).bytes(e.digest);
    body.u16be(e.pathBytes.length).bytes(e.pathBytes);
    if (e.signature !== null) body.u32be(e.signature.length).bytes(e.signature);
    if (e.buffer !== null) body.u32be(e.buffer.length).bytes(e.buffer);
    if (e.modsig !== null) {
      shortString(body, e.modsig.digestAlgorithm);
      body.u8(e.modsig.digest.length).bytes(e.modsig.digest);
      body.u32be(e.modsig.signature.length).bytes(e.modsig.signature);
    }
  }
  if (count === 0) return null;
  for (const b of MAGIC) w.u8(b);
  return w.u8(VERSION).u32be(count).bytes(body.finish()).finish();
}

function shortString(w: ByteWriter, s: string): void {
  const b = Buffer.from(s, 'latin1');
  w.u8(b.length).bytes(b);
}

function readShortString(r: ByteReader, what: string): string {
  const n = r.u8(`${what} length`);
  return Buffer.from(r.bytesN(n, what)).toString('latin1');
}

function capped(r: ByteReader, cap: number, what: string): Uint8Array {
  const at = r.offset;
  const n = r.u32be(`${what} length`);
  if (n > cap) throw new BulwarkError('IMA_STATE_INVALID', `recorded ${what} at offset ${at} declares ${n} bytes, more than ${cap}`, { offset: at });
  return r.bytesN(n, what);
}

/**
 * Decodes one segment encodeRecordedImaEntries made, adding each measurement's key to
 * `seen` and leaving out those already in it (segments of one boot are read in order).
 * IMA_STATE_INVALID (or IMA_STATE_INVALID for truncation) when it does not decode.
 * Trust: the verifier's own stored state; proven only as far as its replay state says.
 */
export function decodeRecordedImaEntries(bytes: Uint8Array, seen: Set<string> = new Set()): RecordedImaEntries {
  const r = new ByteReader(bytes, 'IMA_STATE_INVALID');
  for (const b of MAGIC) if (r.u8('magic') !== b) throw new BulwarkError('IMA_STATE_INVALID', 'a recorded IMA segment does not start with BIMR');
  const version = r.u8('version');
  if (version !== VERSION) throw new BulwarkError('IMA_STATE_INVALID', `recorded IMA segment version ${version} is not ${VERSION}`);
  const count = r.u32be('count');
  if (count > RECORDED_IMA_LIMITS.measurementsPerSegment || count * 20 > r.remaining) {
    throw new BulwarkError('IMA_STATE_INVALID', `a recorded IMA segment declares ${count} measurements in ${r.remaining} bytes`);
  }
  const out: ImaEntry[] = [];
  for (let i = 0; i < count; i++) {
    const index = r.u32be('index');
    const offset = r.u64be('offset');
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new BulwarkError('IMA_STATE_INVALID', `recorded offset ${offset} is too large`);
    const flags = r.u8('flags');
    if ((flags & FLAG.digestIma) !== 0 && (flags & FLAG.digestVerity) !== 0) throw new BulwarkError('IMA_STATE_INVALID', 'a recorded measurement has two digest types');
    const template = readShortString(r, 'template');
    if (!isImaTemplateName(template)) throw new BulwarkError('IMA_STATE_INVALID', `recorded template ${JSON.stringify(template.slice(0, 64))} is unknown`);
    const digestAlgorithm = readShortString(r, 'digest algorithm');
    if (!isImaHashAlgorithmName(digestAlgorithm)) throw new BulwarkError('IMA_STATE_INVALID', `recorded digest algorithm ${JSON.stringify(digestAlgorithm.slice(0, 32))} is unknown`);
    const digest = r.bytesN(r.u8('digest length'), 'digest');
    const pathLength = r.u16be('event name length');
    if (pathLength > RECORDED_IMA_LIMITS.pathBytes) throw new BulwarkError('IMA_STATE_INVALID', `recorded event name of ${pathLength} bytes`);
    const pathBytes = r.bytesN(pathLength, 'event name');
    const signature = (flags & FLAG.signature) !== 0 ? capped(r, IMA_LIMITS.templateDataMax, 'signature') : null;
    const buffer = (flags & FLAG.buffer) !== 0 ? capped(r, IMA_LIMITS.templateDataMax, 'buffer') : null;
    let modsig: ImaEntry['modsig'] = null;
    if ((flags & FLAG.modsig) !== 0) {
      const alg = readShortString(r, 'modsig algorithm');
      if (!isImaHashAlgorithmName(alg)) throw new BulwarkError('IMA_STATE_INVALID', `recorded modsig algorithm ${JSON.stringify(alg.slice(0, 32))} is unknown`);
      const d = r.bytesN(r.u8('modsig digest length'), 'modsig digest');
      modsig = { digestAlgorithm: alg, digest: d, signature: capped(r, IMA_LIMITS.templateDataMax, 'modsig signature') };
    }
    const e: ImaEntry = {
      index,
      offset: Number(offset),
      size: 0,
      pcr: IMA_PCR,
      template,
      templateHash: EMPTY,
      hashInput: EMPTY,
      violation: (flags & FLAG.violation) !== 0,
      digestType: (flags & FLAG.digestIma) !== 0 ? 'ima' : (flags & FLAG.digestVerity) !== 0 ? 'verity' : null,
      digestAlgorithm,
      digest,
      path: utf8.decode(pathBytes),
      pathBytes,
      signature,
      buffer,
      modsig,
    };
    const key = measurementKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  if (!r.atEnd) throw new BulwarkError('IMA_STATE_INVALID', `a recorded IMA segment has ${r.remaining} bytes after its last measurement`);
  return Object.freeze(out) as unknown as RecordedImaEntries;
}

/** Recorded measurements of several segments as one list, in order. Trust: as the parts'. */
export function joinRecordedImaEntries(parts: readonly RecordedImaEntries[]): RecordedImaEntries {
  const out: ImaEntry[] = [];
  for (const p of parts) for (const e of p) out.push(e);
  return Object.freeze(out) as unknown as RecordedImaEntries;
}
