/**
 * DER (ITU-T X.690) for the certificates the controller's CA issues: a `DerWriter` that
 * encodes exactly the types X.509 needs, and a `DerReader` over a bounds-checked
 * ByteReader (the same rules as the EK certificate walk in lib/tpm/ekcert.ts: single-octet
 * tags, definite minimal lengths of at most 4 octets). Every reader failure is a
 * BulwarkError with the reader's code; every writer failure is PKI_TEMPLATE_INVALID.
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import { BulwarkError, type ErrorCode } from '../errors.js';

/** Universal and context-specific tags used by X.509 (X.690, 8; RFC 5280, 4.1). */
export const DER_TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag numbers: [n] with the constructed bit (EXPLICIT or constructed IMPLICIT) or without (primitive IMPLICIT). */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** Largest value length the writer emits (a certificate is a few KiB; 4 length octets cover it many times over). */
const MAX_WRITE_LENGTH = 0xffffff;

function templateError(message: string): BulwarkError {
  return new BulwarkError('PKI_TEMPLATE_INVALID', message);
}

/** The definite length octets (X.690, 8.1.3; DER 10.1: the shortest form). */
function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  if (n > MAX_WRITE_LENGTH) throw templateError(`DER value of ${n} bytes is larger than the writer's cap`);
  const octets: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
  return Uint8Array.of(0x80 | octets.length, ...octets);
}

/** OBJECT IDENTIFIER content octets from dotted text (X.690, 8.19): base-128 arcs, the first two combined. */
export function encodeOid(dotted: string): Uint8Array {
  if (!/^[0-2](\.(0|[1-9][0-9]{0,14}))+$/.test(dotted)) throw templateError(`"${dotted}" is not a dotted OID`);
  const arcs = dotted.split('.').map(Number);
  const [top = 0, second = 0, ...rest] = arcs;
  if (top < 2 && second >= 40) throw templateError(`OID ${dotted}: second arc must be below 40`);
  const out: number[] = [];
  for (const arc of [top * 40 + second, ...rest]) {
    if (!Number.isSafeInteger(arc)) throw templateError(`OID ${dotted}: arc too large`);
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v % 128);
      v = Math.floor(v / 128);
    } while (v > 0);
    groups.forEach((g, i) => out.push(i < groups.length - 1 ? g | 0x80 : g));
  }
  return Uint8Array.from(out);
}

/** INTEGER content octets for a non-negative magnitude (big-endian): minimal, with a 0x00 octet when the high bit is set (X.690, 8.3). */
export function encodeUnsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  const body = magnitude.subarray(start);
  if (body.length === 0) return Uint8Array.of(0);
  return ((body[0] ?? 0) & 0x80) !== 0 ? Uint8Array.of(0, ...body) : body.slice();
}

/**
 * Encodes DER values in order; constructed values take a callback that writes their
 * contents into a nested writer, mirroring DerReader.nested.
 */
export class DerWriter {
  private readonly out = new ByteWriter(256);

  /** One TLV with the given tag and content octets. */
  tlv(tag: number, value: Uint8Array): this {
    this.out.u8(tag).bytes(encodeLength(value.length)).bytes(value);
    return this;
  }

  /** Already-encoded DER (one or more TLVs), copied verbatim. */
  raw(encoded: Uint8Array): this {
    this.out.bytes(encoded);
    return this;
  }

  /** A constructed value with tag `tag` whose contents `body` writes. */
  constructed(tag: number, body: (w: DerWriter) => void): this {
    const inner = new DerWriter();
    body(inner);
    return this.tlv(tag, inner.finish());
  }

  sequence(body: (w: DerWriter) => void): this {
    return this.constructed(DER_TAG.SEQUENCE, body);
  }

  /**
   * SET OF: DER sorts the encoded elements as octet strings (X.690, 11.6). Each element is
   * written by its own callback.
   */
  setOf(elements: ReadonlyArray<(w: DerWriter) => void>): this {
    const encoded = elements.map((body) => {
      const w = new DerWriter();
      body(w);
      return w.finish();
    });
    encoded.sort(compareOctets);
    return this.constructed(DER_TAG.SET, (w) => encoded.forEach((e) => w.raw(e)));
  }

  /** [n] EXPLICIT: a constructed context tag around the value `body` writes. */
  explicit(n: number, body: (w: DerWriter) => void): this {
    return this.constructed(contextTag(n, true), body);
  }

  /** [n] IMPLICIT over a primitive type: the content octets under a context tag. */
  implicit(n: number, value: Uint8Array): this {
    return this.tlv(contextTag(n, false), value);
  }

  /** BOOLEAN: DER TRUE is 0xff (X.690, 11.1). */
  boolean(value: boolean): this {
    return this.tlv(DER_TAG.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
  }

  /** A small non-negative INTEGER (version, pathLenConstraint). */
  smallInteger(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw templateError(`INTEGER ${value} is not a non-negative safe integer`);
    const octets: number[] = [];
    let v = value;
    do {
      octets.unshift(v % 256);
      v = Math.floor(v / 256);
    } while (v > 0);
    return this.tlv(DER_TAG.INTEGER, encodeUnsignedInteger(Uint8Array.from(octets)));
  }

  /** A non-negative INTEGER given as its big-endian magnitude (serial numbers). */
  unsignedInteger(magnitude: Uint8Array): this {
    return this.tlv(DER_TAG.INTEGER, encodeUnsignedInteger(magnitude));
  }

  null(): this {
    return this.tlv(DER_TAG.NULL, new Uint8Array(0));
  }

  oid(dotted: string): this {
    return this.tlv(DER_TAG.OID, encodeOid(dotted));
  }

  /** BIT STRING: the count of unused bits in the last octet, then the octets (X.690, 8.6). */
  bitString(bytes: Uint8Array, unusedBits = 0): this {
    if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
      throw templateError(`BIT STRING with ${unusedBits} unused bits`);
    }
    return this.tlv(DER_TAG.BIT_STRING, Uint8Array.of(unusedBits, ...bytes));
  }

  octetString(bytes: Uint8Array): this {
    return this.tlv(DER_TAG.OCTET_STRING, bytes);
  }

  utf8String(text: string): this {
    return this.tlv(DER_TAG.UTF8_STRING, new TextEncoder().encode(text));
  }

  /** IA5String: ASCII only (X.680, 41). */
  ia5String(text: string): this {
    if (!/^[\x00-\x7f]*$/.test(text)) throw templateError('IA5String holds a character outside ASCII');
    return this.tlv(DER_TAG.IA5_STRING, new TextEncoder().encode(text));
  }

  /**
   * A certificate Time (RFC 5280, 4.1.2.5): UTCTime YYMMDDHHMMSSZ for 1950–2049,
   * GeneralizedTime YYYYMMDDHHMMSSZ otherwise; always UTC, seconds, no fractions.
   */
  time(at: Date): this {
    const ms = at.getTime();
    if (!Number.isFinite(ms)) throw templateError('time is not a valid date');
    const year = at.getUTCFullYear();
    if (year < 1 || year > 9999) throw templateError(`year ${year} does not fit a certificate time`);
    const two = (n: number): string => String(n).padStart(2, '0');
    const rest = `${two(at.getUTCMonth() + 1)}${two(at.getUTCDate())}${two(at.getUTCHours())}${two(at.getUTCMinutes())}${two(at.getUTCSeconds())}Z`;
    if (year >= 1950 && year < 2050) return this.tlv(DER_TAG.UTC_TIME, new TextEncoder().encode(`${two(year % 100)}${rest}`));
    return this.tlv(DER_TAG.GENERALIZED_TIME, new TextEncoder().encode(`${String(year).padStart(4, '0')}${rest}`));
  }

  /** A copy of everything written. */
  finish(): Uint8Array {
    return this.out.finish();
  }
}

function compareOctets(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** One decoded TLV. */
export interface Tlv {
  readonly tag: number;
  readonly value: Uint8Array;
  /** The whole encoding: header and value (a zero-copy view). */
  readonly encoded: Uint8Array;
}

/**
 * DER over a bounds-checked ByteReader: single-octet tags, definite minimal lengths of at
 * most 4 octets (X.690, 10.1). Every failure is a BulwarkError with the reader's code.
 */
export class DerReader {
  private readonly r: ByteReader;
  readonly code: ErrorCode;

  constructor(bytes: Uint8Array, code: ErrorCode) {
    this.r = new ByteReader(bytes, code);
    this.code = code;
  }

  get atEnd(): boolean {
    return this.r.atEnd;
  }

  fail(message: string, offset = this.r.offset): BulwarkError {
    return new BulwarkError(this.code, `${message} at offset ${offset}`, { offset });
  }

  /** The tag of the next TLV, without consuming it; undefined at the end. */
  peekTag(): number | undefined {
    return this.r.atEnd ? undefined : this.r.bytes[this.r.offset];
  }

  tlv(what: string): Tlv {
    const start = this.r.offset;
    const tag = this.r.u8(`${what} tag`);
    if ((tag & 0x1f) === 0x1f) throw this.fail(`${what}: high tag numbers do not occur in certificates`, start);
    const first = this.r.u8(`${what} length`);
    let length = first;
    if (first >= 0x80) {
      const n = first & 0x7f;
      if (n === 0 || n > 4) throw this.fail(`${what}: ${n === 0 ? 'indefinite' : 'oversized'} length`, start);
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + this.r.u8(`${what} length`);
      if (length < 0x80 || length < 256 ** (n - 1)) throw this.fail(`${what}: non-minimal DER length`, start);
    }
    const value = this.r.bytesN(length, what);
    return { tag, value, encoded: this.r.bytes.subarray(start, this.r.offset) };
  }

  /** The next TLV, which must carry `tag`. */
  expectTlv(tag: number, what: string): Tlv {
    const start = this.r.offset;
    const tlv = this.tlv(what);
    if (tlv.tag !== tag) throw this.fail(`${what}: tag 0x${tlv.tag.toString(16)} where 0x${tag.toString(16)} was expected`, start);
    return tlv;
  }

  /** The next TLV's value, which must carry `tag`. */
  expect(tag: number, what: string): Uint8Array {
    return this.expectTlv(tag, what).value;
  }

  /** A reader over the next TLV's value, which must carry `tag`. */
  nested(tag: number, what: string): DerReader {
    return new DerReader(this.expect(tag, what), this.code);
  }

  end(what: string): void {
    if (!this.r.atEnd) throw this.fail(`${this.r.remaining} unexpected bytes after ${what}`);
  }
}

/** OBJECT IDENTIFIER content octets (X.690, 8.19) as dotted text. */
export function decodeOid(bytes: Uint8Array, code: ErrorCode): string {
  const arcs: number[] = [];
  let value = 0;
  let octets = 0;
  for (const b of bytes) {
    if (octets === 0 && b === 0x80) throw new BulwarkError(code, 'OID arc with a leading zero octet');
    value = value * 128 + (b & 0x7f);
    octets += 1;
    if (octets > 7) throw new BulwarkError(code, 'OID arc too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const top = value < 40 ? 0 : value < 80 ? 1 : 2;
        arcs.push(top, value - top * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
      octets = 0;
    }
  }
  if (octets !== 0 || arcs.length === 0) throw new BulwarkError(code, 'OID is truncated or empty');
  return arcs.join('.');
}

/** UTCTime or GeneralizedTime in the forms RFC 5280, 4.1.2.5 allows (always Z, with seconds), as epoch milliseconds. */
export function decodeTime(tlv: Tlv, code: ErrorCode, what: string): number {
  const text = Buffer.from(tlv.value).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === DER_TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)) !== null) {
    const yy = Number(m[1]);
    // RFC 5280, 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === DER_TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)) !== null) {
    year = Number(m[1]);
  } else {
    throw new BulwarkError(code, `${what} is not a UTCTime or GeneralizedTime of the form RFC 5280 requires`);
  }
  const [month, day, hour, minute, second] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw new BulwarkError(code, `${what} is not a valid date`);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** A non-negative INTEGER's magnitude (no sign octet), refusing negative and non-minimal encodings (X.690, 8.3.2). */
export function decodeUnsignedInteger(value: Uint8Array, code: ErrorCode, what: string): Uint8Array {
  const first = value[0];
  if (first === undefined) throw new BulwarkError(code, `${what} is an empty INTEGER`);
  if ((first & 0x80) !== 0) throw new BulwarkError(code, `${what} is negative`);
  if (value.length > 1 && first === 0 && ((value[1] ?? 0) & 0x80) === 0) throw new BulwarkError(code, `${what} is not minimally encoded`);
  return first === 0 && value.length > 1 ? value.subarray(1) : value;
}
