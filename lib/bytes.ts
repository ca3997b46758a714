import { BulwarkError, type ErrorCode } from './errors.js';

/**
 * Bounds-checked reader over a byte array. Every read checks the bytes left first; a
 * declared length is compared with what is left (and a named cap) before any slice is
 * taken, so hostile input can neither read past the end nor make us allocate.
 * Slices are zero-copy `subarray`s of the input.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private pos: number;
  private readonly end: number;
  /** Code raised on truncation, so each decoder reports its own domain. */
  private readonly code: ErrorCode;

  constructor(bytes: Uint8Array, code: ErrorCode = 'BYTES_TRUNCATED', start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
    this.code = code;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw new BulwarkError(this.code, `truncated reading ${what}: need ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`, {
        offset: this.pos,
        need: n,
        left: this.end - this.pos,
      });
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    const v = this.view.getUint8(this.pos);
    this.pos += 1;
    return v;
  }

  u16be(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }

  u16le(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32be(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }

  u32le(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64be(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }

  u64le(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** `n` bytes as a zero-copy view; `n` is checked against what is left first. */
  bytesN(n: number, what = 'bytes'): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new BulwarkError(this.code, `invalid length ${n} for ${what} at offset ${this.pos}`, { offset: this.pos });
    }
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A TPM2B: a big-endian u16 size then that many bytes, capped at `cap`. */
  tpm2b(what = 'TPM2B', cap = 0xffff): Uint8Array {
    const at = this.pos;
    const size = this.u16be(`${what}.size`);
    if (size > cap) {
      throw new BulwarkError('BYTES_LENGTH_EXCEEDS_CAP', `${what} declares ${size} bytes at offset ${at}, more than the cap of ${cap}`, {
        offset: at,
        size,
        cap,
      });
    }
    return this.bytesN(size, what);
  }

  skip(n: number, what = 'padding'): void {
    // The checks of bytesN, without making a slice nobody reads.
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new BulwarkError(this.code, `invalid length ${n} for ${what} at offset ${this.pos}`, { offset: this.pos });
    }
    this.need(n, what);
    this.pos += n;
  }

  /** Fails unless every byte has been consumed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) {
      throw new BulwarkError('BYTES_TRAILING', `${this.end - this.pos} trailing bytes after ${what} at offset ${this.pos}`, {
        offset: this.pos,
        left: this.end - this.pos,
      });
    }
  }
}

/** Growable writer mirroring ByteReader, for serializers and test builders. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  get length(): number {
    return this.pos;
  }

  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }

  u16be(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, false);
    this.pos += 2;
    return this;
  }

  u16le(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }

  u32be(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v, false);
    this.pos += 4;
    return this;
  }

  u32le(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  u64be(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v, false);
    this.pos += 8;
    return this;
  }

  u64le(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  /** A TPM2B: big-endian u16 size, then the bytes. */
  tpm2b(v: Uint8Array): this {
    if (v.length > 0xffff) throw new BulwarkError('BYTES_VALUE_OUT_OF_RANGE', `TPM2B of ${v.length} bytes does not fit a u16 size`);
    return this.u16be(v.length).bytes(v);
  }

  /** A copy of what has been written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Strict hex decoding: even length, hex digits only (Buffer.from silently stops at the first bad digit). */
export function fromHex(hex: string, what = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new BulwarkError('HEX_INVALID', `${what} is not an even-length hex string`, { length: hex.length });
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
