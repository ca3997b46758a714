/**
 * What the two list formats share: decoding template fields (ima_template_lib.c) into an
 * ImaEntry, the 'ima' template's hash input, option checks and the error helpers. Internal
 * to lib/ima.
 */
import { BulwarkError, type ErrorCode } from '../errors.js';
import { HASH_ALGS_BY_NAME } from '../tpm/index.js';
import {
  IMA_HASH_ALGOS,
  IMA_TEMPLATE_FIELDS,
  isImaTemplateName,
  IMA_LIMITS,
  type ImaDigestType,
  type ImaEntry,
  type ImaHashAlgorithmName,
  type ImaModsig,
  type ImaParseOptions,
  type ImaTemplateHashAlgorithm,
  type ImaTemplateName,
} from './types.js';

/** Options with defaults applied and checked. */
export interface ResolvedParseOptions {
  readonly fromEntry: number;
  readonly fromOffset: number;
  readonly allowIncompleteTail: boolean;
  readonly templateHashAlgorithm: ImaTemplateHashAlgorithm;
  readonly templateHashSize: number;
  readonly littleEndian: boolean;
}

export function resolveParseOptions(options: ImaParseOptions): ResolvedParseOptions {
  const fromEntry = options.fromEntry ?? 0;
  const fromOffset = options.fromOffset ?? 0;
  if (!Number.isSafeInteger(fromEntry) || fromEntry < 0) throw new BulwarkError('USAGE', `fromEntry must be a non-negative integer, not ${fromEntry}`);
  if (!Number.isSafeInteger(fromOffset) || fromOffset < 0) throw new BulwarkError('USAGE', `fromOffset must be a non-negative integer, not ${fromOffset}`);
  const templateHashAlgorithm = options.templateHashAlgorithm ?? 'sha1';
  const templateHashSize = HASH_ALGS_BY_NAME.get(templateHashAlgorithm)?.size;
  if (templateHashSize === undefined) throw new BulwarkError('USAGE', `unsupported template hash algorithm ${String(templateHashAlgorithm)}`);
  const byteOrder = options.byteOrder ?? 'le';
  if (byteOrder !== 'le' && byteOrder !== 'be') throw new BulwarkError('USAGE', `byteOrder must be 'le' or 'be'`);
  return {
    fromEntry,
    fromOffset,
    allowIncompleteTail: options.allowIncompleteTail === true,
    templateHashAlgorithm,
    templateHashSize,
    littleEndian: byteOrder === 'le',
  };
}

/** Where an error happened: the entry's index and the byte offset in the whole list. */
export interface Position {
  readonly entry: number;
  readonly offset: number;
}

export function logError(code: ErrorCode, pos: Position, why: string, extra: Readonly<Record<string, string | number>> = {}): BulwarkError {
  return new BulwarkError(code, `IMA entry ${pos.entry} at byte offset ${pos.offset}: ${why}`, { entry: pos.entry, offset: pos.offset, ...extra });
}

/** A zero-copy Buffer view of any Uint8Array (Buffer methods: indexOf, utf8 decoding). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A row of IMA_HASH_ALGOS. */
type ImaHashAlgo = { readonly name: ImaHashAlgorithmName; readonly size: number };

const HASH_BY_NAME: ReadonlyMap<string, ImaHashAlgo> = new Map(IMA_HASH_ALGOS.map((a) => [a.name, a]));

/** The interned algorithm entry for the ASCII bytes [start, end) of `buf`, if the kernel knows such a name. */
export function hashAlgoAt(buf: Buffer, start: number, end: number): ImaHashAlgo | undefined {
  // Fast path: almost every entry of a current kernel says sha256.
  if (
    end - start === 6 &&
    buf[start] === 0x73 &&
    buf[start + 1] === 0x68 &&
    buf[start + 2] === 0x61 &&
    buf[start + 3] === 0x32 &&
    buf[start + 4] === 0x35 &&
    buf[start + 5] === 0x36
  ) {
    return SHA256;
  }
  if (end - start > 16 || end <= start) return undefined;
  return HASH_BY_NAME.get(buf.toString('latin1', start, end));
}

const SHA256: ImaHashAlgo = { name: 'sha256', size: 32 };

const TEMPLATE_NAME_BYTES: readonly (readonly [ImaTemplateName, Buffer])[] = Object.keys(IMA_TEMPLATE_FIELDS)
  .filter(isImaTemplateName)
  .map((n) => [n, Buffer.from(n, 'latin1')] as const);

/**
 * The template named by buf[start, end), compared byte by byte (no string per entry); undefined
 * for any other name.
 */
export function templateAt(buf: Buffer, start: number, end: number): ImaTemplateName | undefined {
  const len = end - start;
  outer: for (const [name, bytes] of TEMPLATE_NAME_BYTES) {
    if (bytes.length !== len) continue;
    for (let i = 0; i < len; i++) if (buf[start + i] !== bytes[i]) continue outer;
    return name;
  }
  return undefined;
}

/** The error for a template name that is not one Bulwark decodes: unsupported if printable, else malformed. */
export function unknownTemplate(buf: Buffer, start: number, end: number, pos: Position, extra: Readonly<Record<string, string | number>> = {}): BulwarkError {
  const name = buf.toString('latin1', start, end);
  if (!/^[\x21-\x7e]+$/.test(name)) return logError('IMA_LOG_MALFORMED', pos, 'template name is not printable', { field: 'template name', ...extra });
  return logError('IMA_TEMPLATE_UNSUPPORTED', pos, `template "${name}" is not one Bulwark decodes`, { template: name });
}


/** Size of the 'ima' template's name buffer in the hash input: IMA_EVENT_NAME_LEN_MAX + 1. */
export const IMA_TEMPLATE_NAME_PAD = IMA_LIMITS.eventNameLenMax + 1;

/**
 * Where each field's data lies in one buffer, for the entry being decoded. One instance is
 * reused for every entry of a parse, so decoding allocates only what the entry keeps.
 * For the 'ima' template: field 0 is the bare digest, field 1 the name without NUL.
 */
export class FieldBounds {
  readonly start = new Int32Array(5);
  readonly end = new Int32Array(5);

  set(i: number, start: number, end: number): void {
    this.start[i] = start;
    this.end[i] = end;
  }
}

/** Numbers of one entry, side by side in a shared Float64Array (SlotTable): field indices. */
const S = {
  index: 0,
  offset: 1,
  size: 2,
  pcr: 3,
  hashAt: 4,
  hashEnd: 5,
  inputAt: 6,
  inputEnd: 7,
  digestAt: 8,
  digestEnd: 9,
  pathAt: 10,
  pathEnd: 11,
  sigAt: 12,
  sigEnd: 13,
  bufAt: 14,
  bufEnd: 15,
} as const;
const SLOT = 16;
const SLOTS_PER_CHUNK = 4096;

/**
 * Where the numbers of a parse's entries live: chunks of Float64Array (off the garbage
 * collected heap, never copied by it), 16 numbers per entry.
 */
export class SlotTable {
  private chunk = new Float64Array(0);
  private used = 0;

  /** Reserves the slot of the next entry in `current` and returns its base index. */
  next(): number {
    if (this.used + SLOT > this.chunk.length) {
      this.chunk = new Float64Array(SLOT * SLOTS_PER_CHUNK);
      this.used = 0;
    }
    const base = this.used;
    this.used += SLOT;
    return base;
  }

  /** The chunk the last reserved slot is in. */
  get current(): Float64Array {
    return this.chunk;
  }
}

/**
 * A decoded entry. It keeps its source buffer and its numbers (offsets of its fields in the
 * source) in a shared table; byte views are made when asked for. So 100,000 entries are
 * 100,000 small objects, which keeps a parse out of the garbage collector, and policy
 * evaluation compares digests and paths in place.
 */
export class DecodedImaEntry implements ImaEntry {
  private decodedPath: string | undefined;

  constructor(
    readonly template: ImaTemplateName,
    readonly violation: boolean,
    readonly digestAlgorithm: ImaHashAlgorithmName,
    readonly digestType: ImaDigestType | null,
    /** Holds the template hash, digest, name and other fields. */
    readonly src: Buffer,
    /** A DataView of `src`, shared by the entries of a parse: four bytes per comparison. */
    readonly srcView: DataView,
    /** Holds the hash input (src, or the padded buffer of an 'ima' template entry). */
    readonly inputSrc: Uint8Array,
    private readonly slots: Float64Array,
    private readonly base: number,
    readonly modsig: ImaModsig | null,
  ) {}

  private n(field: number): number {
    return this.slots[this.base + field] ?? 0;
  }

  get index(): number {
    return this.n(S.index);
  }
  get offset(): number {
    return this.n(S.offset);
  }
  get size(): number {
    return this.n(S.size);
  }
  get pcr(): number {
    return this.n(S.pcr);
  }
  get hashAt(): number {
    return this.n(S.hashAt);
  }
  get hashEnd(): number {
    return this.n(S.hashEnd);
  }
  get inputAt(): number {
    return this.n(S.inputAt);
  }
  get inputEnd(): number {
    return this.n(S.inputEnd);
  }
  get digestAt(): number {
    return this.n(S.digestAt);
  }
  get digestEnd(): number {
    return this.n(S.digestEnd);
  }
  get pathAt(): number {
    return this.n(S.pathAt);
  }
  get pathEnd(): number {
    return this.n(S.pathEnd);
  }
  /** sig field; at === end when empty or absent. */
  get sigAt(): number {
    return this.n(S.sigAt);
  }
  get sigEnd(): number {
    return this.n(S.sigEnd);
  }
  /** buf field of ima-buf; -1 when absent. */
  get bufAt(): number {
    return this.n(S.bufAt);
  }
  get bufEnd(): number {
    return this.n(S.bufEnd);
  }

  get templateHash(): Uint8Array {
    return view(this.src, this.hashAt, this.hashEnd);
  }

  get hashInput(): Uint8Array {
    return view(this.inputSrc, this.inputAt, this.inputEnd);
  }

  get digest(): Uint8Array {
    return view(this.src, this.digestAt, this.digestEnd);
  }

  get pathBytes(): Uint8Array {
    return view(this.src, this.pathAt, this.pathEnd);
  }

  get path(): string {
    if (this.decodedPath === undefined) this.decodedPath = this.src.toString('utf8', this.pathAt, this.pathEnd);
    return this.decodedPath;
  }

  get signature(): Uint8Array | null {
    return this.sigEnd > this.sigAt ? view(this.src, this.sigAt, this.sigEnd) : null;
  }

  get buffer(): Uint8Array | null {
    return this.bufAt < 0 ? null : view(this.src, this.bufAt, this.bufEnd);
  }

  /** The public fields only (never the whole source buffer), hex for bytes. */
  toJSON(): Record<string, unknown> {
    const hex = (b: Uint8Array | null): string | null => (b === null ? null : asBuffer(b).toString('hex'));
    return {
      index: this.index,
      offset: this.offset,
      size: this.size,
      pcr: this.pcr,
      template: this.template,
      templateHash: hex(this.templateHash),
      violation: this.violation,
      digest: `${this.digestType === null ? '' : `${this.digestType}:`}${this.digestAlgorithm}:${hex(this.digest) ?? ''}`,
      path: this.path,
      signature: hex(this.signature),
      buffer: hex(this.buffer),
      modsig: this.modsig === null ? null : { digest: `${this.modsig.digestAlgorithm}:${hex(this.modsig.digest) ?? ''}`, signature: hex(this.modsig.signature) },
    };
  }

  /** util.inspect (console.log) shows the same, not the source buffer. */
  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return this.toJSON();
  }
}

/** A DataView over exactly the bytes of `buf`. */
export function dataViewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Length of the entry's template hash column, without making a view of it. */
export function templateHashLength(e: ImaEntry): number {
  return e instanceof DecodedImaEntry ? e.hashEnd - e.hashAt : e.templateHash.length;
}

/** A plain Uint8Array view of buf[start, end): cheaper to make than a Buffer subarray. */
export function view(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
}

/** Bytes of "sha256:" NUL, the d-ng prefix of nearly every entry of a current kernel. */
const SHA256_PREFIX = [0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x3a, 0x00] as const;

/**
 * "<algo>:" NUL digest in buf[start, end) (DATA_FMT_DIGEST_WITH_ALGO) → the interned algorithm
 * (its digest starts at start + name length + 2); null for an empty field.
 */
function digestWithAlgo(buf: Buffer, start: number, end: number, index: number, offset: number, field: string): ImaHashAlgo | null {
  if (end === start) return null;
  if (end - start === 40) {
    let sha256 = true;
    for (let i = 0; i < 8; i++) {
      if (buf[start + i] !== SHA256_PREFIX[i]) {
        sha256 = false;
        break;
      }
    }
    if (sha256) return SHA256;
  }
  let colon = -1;
  for (let i = start; i < end && i <= start + 16; i++) {
    if (buf[i] === 0x3a) {
      colon = i;
      break;
    }
  }
  if (colon <= start || colon + 1 >= end || buf[colon + 1] !== 0) {
    throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, `${field} is not "<algorithm>:" NUL digest`, { field });
  }
  const algo = hashAlgoAt(buf, start, colon);
  if (algo === undefined) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, `${field} names an unknown hash algorithm`, { field });
  const digestLength = end - (colon + 2);
  if (digestLength !== algo.size) {
    throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, `${field} ${algo.name} digest of ${digestLength} bytes, not ${algo.size}`, { field });
  }
  return algo;
}

/** The digest types as field bytes, for a comparison without a string per entry. */
const DIGEST_TYPE_BYTES: readonly (readonly [ImaDigestType, Buffer])[] = [
  ['ima', Buffer.from('ima', 'latin1')],
  ['verity', Buffer.from('verity', 'latin1')],
];

/** The digest type named by buf[start, end) (digest_type_name[]), or undefined. */
export function digestTypeAt(buf: Buffer, start: number, end: number): ImaDigestType | undefined {
  outer: for (const [name, bytes] of DIGEST_TYPE_BYTES) {
    if (bytes.length !== end - start) continue;
    for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) continue outer;
    return name;
  }
  return undefined;
}

/** DIGEST_TYPE_NAME_LEN_MAX - 1 (ima_template_lib.c): "verity". */
const DIGEST_TYPE_NAME_MAX = 6;

/**
 * "<type>:<algo>:" NUL digest in buf[start, end) (DATA_FMT_DIGEST_WITH_TYPE_AND_ALGO, the
 * d-ngv2 field) → the type, the interned algorithm and where the digest starts. Never empty:
 * even a violation has its type, algorithm and a zero digest.
 */
function digestWithTypeAndAlgo(buf: Buffer, start: number, end: number, index: number, offset: number): { type: ImaDigestType; algo: ImaHashAlgo; digestAt: number } {
  const bad = (why: string): BulwarkError => logError('IMA_LOG_MALFORMED', { entry: index, offset }, `d-ngv2 ${why}`, { field: 'd-ngv2' });
  let colon1 = -1;
  for (let i = start; i < end && i <= start + DIGEST_TYPE_NAME_MAX; i++) {
    if (buf[i] === 0x3a) {
      colon1 = i;
      break;
    }
  }
  if (colon1 <= start) throw bad('is not "<type>:<algorithm>:" NUL digest');
  const type = digestTypeAt(buf, start, colon1);
  if (type === undefined) throw bad('names an unknown digest type');
  const algo = digestWithAlgo(buf, colon1 + 1, end, index, offset, 'd-ngv2');
  if (algo === null) throw bad('has no algorithm');
  return { type, algo, digestAt: colon1 + 1 + algo.name.length + 2 };
}

/**
 * Decodes field data into an entry (ima_template_lib.c):
 * - d-ng, d-modsig (DATA_FMT_DIGEST_WITH_ALGO): "<hash_algo_name>:" NUL digest, the digest as
 *   long as the algorithm's; d-modsig may be empty (no appended signature).
 * - d-ngv2 (DATA_FMT_DIGEST_WITH_TYPE_AND_ALGO): "<ima|verity>:<hash_algo_name>:" NUL digest.
 * - n-ng (DATA_FMT_STRING): the name and its terminating NUL, no NUL inside.
 * - sig, buf, modsig (DATA_FMT_HEX): raw bytes, may be empty.
 * - 'ima' template: d is a bare 20-byte SHA-1 (16-byte MD5) digest, n a name of at most 255 bytes.
 * A violation (zero template hash) must have an all-zero digest, as ima_eventdigest_init makes it.
 * `src` holds the template hash at hashAt and every field; the hash input is inputSrc[inputAt, inputEnd).
 */
export function decodeEntry(
  slots: SlotTable,
  src: Buffer,
  srcView: DataView,
  hashAt: number,
  hashSize: number,
  inputSrc: Uint8Array,
  inputAt: number,
  inputEnd: number,
  template: ImaTemplateName,
  f: FieldBounds,
  index: number,
  offset: number,
  size: number,
  pcr: number,
): ImaEntry {
  let violation = true;
  for (let i = hashAt; i < hashAt + hashSize; i++) {
    if (src[i] !== 0) {
      violation = false;
      break;
    }
  }
  let digestAlgorithm: ImaHashAlgorithmName;
  let digestType: ImaDigestType | null = null;
  let digestAt: number;
  let pathAt: number;
  let pathEnd: number;
  let sigAt = 0;
  let sigEnd = 0;
  let bufAt = -1;
  let bufEnd = -1;
  let modsig: ImaModsig | null = null;
  const s0 = f.start[0] ?? 0;
  const e0 = f.end[0] ?? 0;
  const s1 = f.start[1] ?? 0;
  const e1 = f.end[1] ?? 0;
  if (template === 'ima') {
    if (e0 - s0 === 20) digestAlgorithm = 'sha1';
    else if (e0 - s0 === 16) digestAlgorithm = 'md5';
    else throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, `'ima' template digest of ${e0 - s0} bytes`, { field: 'd' });
    digestAt = s0;
    if (e1 - s1 > IMA_LIMITS.eventNameLenMax) {
      throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, `'ima' template name of ${e1 - s1} bytes, more than ${IMA_LIMITS.eventNameLenMax}`, { field: 'n' });
    }
    for (let i = s1; i < e1; i++) if (src[i] === 0) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'name contains a NUL byte', { field: 'n' });
    pathAt = s1;
    pathEnd = e1;
  } else {
    if (template === 'ima-ngv2' || template === 'ima-sigv2') {
      const d = digestWithTypeAndAlgo(src, s0, e0, index, offset);
      digestAlgorithm = d.algo.name;
      digestType = d.type;
      digestAt = d.digestAt;
    } else {
      const d = digestWithAlgo(src, s0, e0, index, offset, 'd-ng');
      if (d === null) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'empty d-ng field', { field: 'd-ng' });
      digestAlgorithm = d.name;
      digestAt = s0 + d.name.length + 2;
    }
    // n-ng: the name, then exactly one NUL at its end.
    if (e1 <= s1 || src[e1 - 1] !== 0) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'n-ng is not NUL-terminated', { field: 'n-ng' });
    for (let i = s1; i < e1 - 1; i++) if (src[i] === 0) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'n-ng contains a NUL byte before its end', { field: 'n-ng' });
    pathAt = s1;
    pathEnd = e1 - 1;
    if (template === 'ima-sig' || template === 'ima-sigv2' || template === 'ima-modsig') {
      sigAt = f.start[2] ?? 0;
      sigEnd = f.end[2] ?? 0;
    } else if (template === 'ima-buf') {
      bufAt = f.start[2] ?? 0;
      bufEnd = f.end[2] ?? 0;
    }
    if (template === 'ima-modsig') {
      const s3 = f.start[3] ?? 0;
      const e3 = f.end[3] ?? 0;
      const s4 = f.start[4] ?? 0;
      const e4 = f.end[4] ?? 0;
      const md = digestWithAlgo(src, s3, e3, index, offset, 'd-modsig');
      if (md === null && e4 > s4) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'modsig without d-modsig', { field: 'd-modsig' });
      if (md !== null && e4 === s4) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'd-modsig without modsig', { field: 'modsig' });
      if (md !== null) modsig = { digestAlgorithm: md.name, digest: view(src, s3 + md.name.length + 2, e3), signature: view(src, s4, e4) };
    }
  }
  const digestEnd = e0;
  if (violation) {
    for (let i = digestAt; i < digestEnd; i++) {
      if (src[i] !== 0) throw logError('IMA_LOG_MALFORMED', { entry: index, offset }, 'a violation entry (zero template hash) with a non-zero digest', { field: 'd' });
    }
  }
  const base = slots.next();
  const chunk = slots.current;
  chunk[base + S.index] = index;
  chunk[base + S.offset] = offset;
  chunk[base + S.size] = size;
  chunk[base + S.pcr] = pcr;
  chunk[base + S.hashAt] = hashAt;
  chunk[base + S.hashEnd] = hashAt + hashSize;
  chunk[base + S.inputAt] = inputAt;
  chunk[base + S.inputEnd] = inputEnd;
  chunk[base + S.digestAt] = digestAt;
  chunk[base + S.digestEnd] = digestEnd;
  chunk[base + S.pathAt] = pathAt;
  chunk[base + S.pathEnd] = pathEnd;
  chunk[base + S.sigAt] = sigAt;
  chunk[base + S.sigEnd] = sigEnd;
  chunk[base + S.bufAt] = bufAt;
  chunk[base + S.bufEnd] = bufEnd;
  return new DecodedImaEntry(template, violation, digestAlgorithm, digestType, src, srcView, inputSrc, chunk, base, modsig);
}
