/**
 * The ASCII measurement list, /sys/kernel/security/ima/ascii_runtime_measurements
 * (Linux security/integrity/ima/ima_fs.c, ima_ascii_measurements_show). One line per entry:
 *
 *   "%2d " PCR · template hash as %02x hex (TPM_DIGEST_SIZE: SHA-1; the bank's digest in the
 *   per-bank files) · " " template name · for each field " " and its text · "\n"
 *
 * Field texts (ima_template_lib.c ima_show_template_*, IMA_SHOW_ASCII): d is hex; d-ng and
 * d-modsig are "<algorithm>:" then hex; d-ngv2 is "<type>:<algorithm>:" then hex; n and n-ng are the name as is (the kernel turned
 * spaces into '_' when it recorded it, so a name never contains a space); sig, buf and
 * modsig are hex. An empty field prints nothing, so its separator space still appears
 * (an ima-sig line without signature ends in " \n").
 *
 * The line does not carry the template data itself: the parser rebuilds the exact bytes the
 * kernel hashed (u32 length + data per field; digest + 256-byte name for 'ima') so replay can
 * recompute template hashes for any bank. Hex must be lowercase (%02x): anything the kernel
 * would not print is an error with the entry's position, never skipped.
 */
import type { BulwarkError } from '../errors.js';
import { asBuffer, dataViewOf, decodeEntry, FieldBounds, SlotTable, hashAlgoAt, templateAt, unknownTemplate, IMA_TEMPLATE_NAME_PAD, logError, resolveParseOptions, type Position, type ResolvedParseOptions } from './fields.js';
import { IMA_LIMITS, IMA_TEMPLATE_FIELDS, type ImaEntry, type ImaParseOptions, type ParsedImaLog } from './types.js';

/** The longest line accepted: hex of the largest template data plus the fixed columns. */
export const IMA_ASCII_LINE_MAX = 2 * IMA_LIMITS.templateDataMax + 1024;

/** Where each field's text starts and ends on the line being parsed (parsing is synchronous: one pair serves all). */
const TOKEN_START = new Int32Array(5);
const TOKEN_END = new Int32Array(5);
/** The ':' of a d-ng / d-modsig field. */
const TOKEN_COLON = new Int32Array(5);

const NEWLINE = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;

/**
 * Byte value of every pair of lowercase hex digits, indexed by (first << 8 | second); -1 for
 * any other pair (uppercase included: the kernel prints %02x). One lookup per output byte.
 */
const HEX_PAIR: Int16Array = (() => {
  const t = new Int16Array(65536).fill(-1);
  const digits = '0123456789abcdef';
  for (let hi = 0; hi < 16; hi++) {
    for (let lo = 0; lo < 16; lo++) t[(digits.charCodeAt(hi) << 8) | digits.charCodeAt(lo)] = (hi << 4) | lo;
  }
  return t;
})();

/**
 * Scratch space for the rebuilt hash inputs of one parse: entries keep views into a few
 * large chunks instead of one small allocation each.
 */
class Arena {
  private chunk: Buffer = Buffer.alloc(0);
  private chunkView: DataView = dataViewOf(this.chunk);
  private used = 0;

  /** Makes room for at least `n` contiguous bytes at `at` in `buffer` (a new chunk when the current one is full). */
  reserve(n: number): void {
    if (this.chunk.length - this.used >= n) return;
    this.chunk = Buffer.allocUnsafe(Math.max(n, 256 * 1024));
    this.chunkView = dataViewOf(this.chunk);
    this.used = 0;
  }

  get buffer(): Buffer {
    return this.chunk;
  }

  get view(): DataView {
    return this.chunkView;
  }

  get at(): number {
    return this.used;
  }

  commit(end: number): void {
    this.used = end;
  }
}

/** Decodes the lowercase hex in src[start, end) (an even count) into dst at `to`; false on any other character. */
function hexInto(src: Buffer, start: number, end: number, dst: Buffer, to: number): boolean {
  let o = to;
  for (let i = start; i < end; i += 2) {
    const v = HEX_PAIR[((src[i] ?? 0) << 8) | (src[i + 1] ?? 0)] ?? -1;
    if (v < 0) return false;
    dst[o++] = v;
  }
  return true;
}

/** First `byte` in buf[from, end), or `end`: a plain loop beats a native call for the short fields of a line. */
function scan(buf: Buffer, byte: number, from: number, end: number): number {
  let i = from;
  while (i < end && buf[i] !== byte) i++;
  return i;
}

/** src[start, end) into dst at `to`, by a loop (short copies). */
function copyInto(src: Buffer, start: number, end: number, dst: Buffer, to: number): void {
  for (let i = start, o = to; i < end; i++, o++) dst[o] = src[i] ?? 0;
}

/** A u32 in the host's byte order (the field lengths the template hash covers), stored byte by byte. */
function writeU32(dst: Buffer, at: number, value: number, littleEndian: boolean): void {
  if (littleEndian) {
    dst[at] = value & 0xff;
    dst[at + 1] = (value >>> 8) & 0xff;
    dst[at + 2] = (value >>> 16) & 0xff;
    dst[at + 3] = value >>> 24;
  } else {
    dst[at] = value >>> 24;
    dst[at + 1] = (value >>> 16) & 0xff;
    dst[at + 2] = (value >>> 8) & 0xff;
    dst[at + 3] = value & 0xff;
  }
}

/**
 * Parses one line [start, end) (end at its '\n'): the columns, then the rebuilt hash input
 * in the arena, then the fields via decodeEntry.
 */
function parseLine(buf: Buffer, start: number, end: number, pos: Position, arena: Arena, bounds: FieldBounds, slots: SlotTable, o: ResolvedParseOptions): ImaEntry {
  const bad = (why: string, at: number): BulwarkError => logError('IMA_LOG_MALFORMED', pos, why, { column: at - start });
  let p = start;
  // "%2d ": one space and one digit below 10, two digits from 10 on.
  let pcr: number;
  const c0 = buf[p] ?? 0;
  if (c0 === SPACE) {
    const d = (buf[p + 1] ?? 0) - 0x30;
    if (d < 0 || d > 9) throw bad('PCR is not "%2d"', p);
    pcr = d;
    p += 2;
  } else {
    const d0 = c0 - 0x30;
    const d1 = (buf[p + 1] ?? 0) - 0x30;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9) throw bad('PCR is not "%2d"', p);
    pcr = d0 * 10 + d1;
    p += 2;
  }
  if (pcr > IMA_LIMITS.pcrMax) throw bad(`PCR ${pcr} is above ${IMA_LIMITS.pcrMax}`, start);
  if (buf[p] !== SPACE) throw bad('no space after the PCR', p);
  p++;

  // Template hash column.
  const hashHex = 2 * o.templateHashSize;
  if (end - p < hashHex + 1 || buf[p + hashHex] !== SPACE) throw bad(`template hash is not ${hashHex} hex digits and a space`, p);
  const hashStart = p;
  p += hashHex + 1;

  // Template name.
  const nameEnd = scan(buf, SPACE, p, end);
  if (nameEnd === p) throw bad('empty template name', p);
  if (nameEnd - p > IMA_LIMITS.templateNameMax) throw bad('template name too long', p);
  const name = templateAt(buf, p, nameEnd);
  if (name === undefined) throw unknownTemplate(buf, p, nameEnd, pos, { column: p - start });
  const fieldIds = IMA_TEMPLATE_FIELDS[name];
  p = nameEnd;

  // Field texts: exactly one space before each; the last runs to the end of the line.
  const starts = TOKEN_START;
  const ends = TOKEN_END;
  const colons = TOKEN_COLON;
  for (let i = 0; i < fieldIds.length; i++) {
    if (p >= end || buf[p] !== SPACE) throw bad(`template ${name} has ${fieldIds.length} fields, the line fewer`, p);
    p++;
    const id = fieldIds[i];
    let e: number;
    if ((id === 'd-ng' || id === 'd-modsig' || id === 'd-ngv2') && p < end && buf[p] !== SPACE) {
      // "<algorithm>:" then exactly twice the algorithm's digest size in hex: no need to scan the hex for a space.
      // d-ngv2 has "<type>:" before it ("ima:sha256:<hex>", "verity:sha256:<hex>").
      let algoAt = p;
      if (id === 'd-ngv2') {
        const typeColon = scan(buf, COLON, p, Math.min(end, p + 7));
        if (typeColon >= end || buf[typeColon] !== COLON) throw bad(`${id} has no "<type>:"`, p);
        algoAt = typeColon + 1;
      }
      const colon = scan(buf, COLON, algoAt, Math.min(end, algoAt + 17));
      if (colon >= end || buf[colon] !== COLON) throw bad(`${id} has no "<algorithm>:"`, p);
      const algo = hashAlgoAt(buf, algoAt, colon);
      if (algo === undefined) throw bad(`${id} names an unknown hash algorithm`, algoAt);
      e = colon + 1 + 2 * algo.size;
      if (e > end || (e < end && buf[e] !== SPACE)) throw bad(`${id} digest is not ${2 * algo.size} hex digits`, colon + 1);
      colons[i] = colon;
    } else {
      e = scan(buf, SPACE, p, end);
    }
    if (i === fieldIds.length - 1 && e !== end) throw bad(`more fields than template ${name} has`, e);
    starts[i] = p;
    ends[i] = e;
    p = e;
  }

  // Rebuild the hash input in the arena: a bound on its size first.
  const lineLength = end - start;
  arena.reserve(lineLength + IMA_TEMPLATE_NAME_PAD + 8 * fieldIds.length + o.templateHashSize + 64);
  const out = arena.buffer;
  const base = arena.at;
  let w = base;
  const hashAt = w;
  if (!hexInto(buf, hashStart, hashStart + hashHex, out, w)) throw bad('template hash is not lowercase hex', hashStart);
  w += o.templateHashSize;
  const inputStart = w;
  const f = bounds;

  if (name === 'ima') {
    // d: a bare digest; n: the name. Hashed as digest || name zero-padded to 256 bytes.
    const [ds, de, ns, ne] = [starts[0] ?? 0, ends[0] ?? 0, starts[1] ?? 0, ends[1] ?? 0];
    if ((de - ds) % 2 !== 0 || !hexInto(buf, ds, de, out, w)) throw bad("'ima' template digest is not lowercase hex", ds);
    const dLen = (de - ds) / 2;
    f.set(0, w, w + dLen);
    w += dLen;
    const nLen = ne - ns;
    if (nLen > IMA_LIMITS.eventNameLenMax) throw bad(`'ima' template name longer than ${IMA_LIMITS.eventNameLenMax} bytes`, ns);
    buf.copy(out, w, ns, ne);
    f.set(1, w, w + nLen);
    out.fill(0, w + nLen, w + IMA_TEMPLATE_NAME_PAD);
    w += IMA_TEMPLATE_NAME_PAD;
  } else {
    for (let i = 0; i < fieldIds.length; i++) {
      const id = fieldIds[i];
      const fs = starts[i] ?? 0;
      const fe = ends[i] ?? 0;
      const lenAt = w;
      w += 4;
      const dataAt = w;
      if (id === 'd-ng' || id === 'd-modsig' || id === 'd-ngv2') {
        if (fe > fs) {
          // "[<type>:]<algorithm>:<hex>" → "[<type>:]<algorithm>:" NUL digest (the length was checked while splitting).
          const colon = colons[i] ?? fs;
          copyInto(buf, fs, colon + 1, out, w);
          w += colon + 1 - fs;
          out[w++] = 0;
          if (!hexInto(buf, colon + 1, fe, out, w)) throw bad(`${id} digest is not lowercase hex`, colon + 1);
          w += (fe - colon - 1) / 2;
        }
      } else if (id === 'n-ng') {
        if (fe === fs) throw bad('empty n-ng field', fs);
        copyInto(buf, fs, fe, out, w);
        w += fe - fs;
        out[w++] = 0;
      } else {
        // sig, buf, modsig: hex, possibly empty.
        const hexLen = fe - fs;
        if (hexLen % 2 !== 0 || !hexInto(buf, fs, fe, out, w)) throw bad(`${id} is not lowercase hex`, fs);
        w += hexLen / 2;
      }
      writeU32(out, lenAt, w - dataAt, o.littleEndian);
      f.set(i, dataAt, w);
    }
  }
  arena.commit(w);
  return decodeEntry(slots, out, arena.view, hashAt, o.templateHashSize, out, inputStart, w, name, f, pos.entry, pos.offset, lineLength + 1, pcr);
}

/**
 * Parses ascii_runtime_measurements bytes (the whole list, or the part read from byte
 * `fromOffset` where entry `fromEntry` begins). Pure; malformed input throws a BulwarkError
 * with the entry index and byte offset: IMA_LOG_MALFORMED, IMA_TEMPLATE_UNSUPPORTED, or
 * IMA_LOG_TRUNCATED for a last line without its newline (unless allowIncompleteTail, which
 * leaves it for the next call). Untrusted output: replay it before believing any entry.
 */
export function parseImaAscii(bytes: Uint8Array, options: ImaParseOptions = {}): ParsedImaLog {
  const o = resolveParseOptions(options);
  const buf = asBuffer(bytes);
  const arena = new Arena();
  const bounds = new FieldBounds();
  const slots = new SlotTable();
  const entries: ImaEntry[] = [];
  let p = 0;
  let index = o.fromEntry;
  while (p < buf.length) {
    const pos: Position = { entry: index, offset: o.fromOffset + p };
    // Never search further than the longest valid line: a hostile input without newlines costs O(cap).
    const limit = Math.min(buf.length, p + IMA_ASCII_LINE_MAX + 1);
    const nl = buf.indexOf(NEWLINE, p);
    if (nl === -1 || nl >= limit) {
      if (limit - p > IMA_ASCII_LINE_MAX) throw logError('IMA_LOG_MALFORMED', pos, `line longer than ${IMA_ASCII_LINE_MAX} bytes`);
      if (o.allowIncompleteTail) break;
      throw logError('IMA_LOG_TRUNCATED', pos, 'the list ends inside a line (no newline)', { left: buf.length - p });
    }
    entries.push(parseLine(buf, p, nl, pos, arena, bounds, slots, o));
    index++;
    p = nl + 1;
  }
  return { format: 'ascii', entries, nextEntry: index, nextOffset: o.fromOffset + p, remainder: buf.length - p };
}
