// Little-endian byte access with bounds checks. Every on-disk decoder reads through here so a
// truncated or corrupt input becomes a FormatError, never a RangeError or a silent garbage value.
import { FormatError } from './errors.js';

export function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** Bounds-checked little-endian reader over a window [base, base+length) of `buf`. */
export class Reader {
  readonly buf: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  readonly length: number;
  readonly structure: string;

  constructor(buf: Uint8Array, offset: number, length: number, structure: string) {
    if (offset < 0 || length < 0 || offset + length > buf.length) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', structure, `needs ${length} bytes, only ${Math.max(0, buf.length - offset)} available`, offset);
    }
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.base = offset;
    this.length = length;
    this.structure = structure;
  }

  #check(off: number, n: number): number {
    if (off < 0 || off + n > this.length) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', this.structure, `field at +${off} (${n} bytes) is outside the structure`, this.base + off);
    }
    return this.base + off;
  }
  u8(off: number): number {
    return this.buf[this.#check(off, 1)]!;
  }
  u16(off: number): number {
    return this.dv.getUint16(this.#check(off, 2), true);
  }
  u32(off: number): number {
    return this.dv.getUint32(this.#check(off, 4), true);
  }
  /** u64 as a number; throws above 2^53-1 (use u64n for full range). */
  u64(off: number): number {
    const v = this.dv.getBigUint64(this.#check(off, 8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError('ERR_FORMAT_INVALID', this.structure, `u64 field at +${off} is too large (${v})`, this.base + off);
    }
    return Number(v);
  }
  u64n(off: number): bigint {
    return this.dv.getBigUint64(this.#check(off, 8), true);
  }
  i64(off: number): number {
    return Number(this.dv.getBigInt64(this.#check(off, 8), true));
  }
  bytes(off: number, n: number): Uint8Array {
    const start = this.#check(off, n);
    return this.buf.subarray(start, start + n);
  }
}

/** Little-endian writer into a caller-provided buffer; assumes the encoder sized it right. */
export class Writer {
  readonly buf: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  constructor(buf: Uint8Array, offset = 0) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.base = offset;
  }
  u8(off: number, v: number): void {
    this.buf[this.base + off] = v;
  }
  u16(off: number, v: number): void {
    this.dv.setUint16(this.base + off, v, true);
  }
  u32(off: number, v: number): void {
    this.dv.setUint32(this.base + off, v >>> 0, true);
  }
  u64(off: number, v: number | bigint): void {
    this.dv.setBigUint64(this.base + off, BigInt(v), true);
  }
  i64(off: number, v: number | bigint): void {
    this.dv.setBigInt64(this.base + off, BigInt(v), true);
  }
  bytes(off: number, b: Uint8Array): void {
    this.buf.set(b, this.base + off);
  }
}

/** Growable output buffer for sequential encoders (bootstrap writers). */
export class ByteSink {
  #buf: Uint8Array;
  #len = 0;
  constructor(initial = 64 * 1024) {
    this.#buf = new Uint8Array(initial);
  }
  get length(): number {
    return this.#len;
  }
  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  /** Appends n zero bytes and returns a Writer positioned at them. */
  alloc(n: number): Writer {
    this.#reserve(n);
    const w = new Writer(this.#buf, this.#len);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return w;
  }
  append(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }
  padTo(alignment: number): void {
    const target = align(this.#len, alignment);
    if (target > this.#len) this.alloc(target - this.#len);
  }
  /** Writer over already-written bytes (for back-patching). */
  at(offset: number): Writer {
    return new Writer(this.#buf, offset);
  }
  /** The bytes written; no copy when the sink was sized exactly (the sink must not be used after). */
  finish(): Uint8Array {
    return this.#len === this.#buf.length ? this.#buf : this.#buf.slice(0, this.#len);
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function isAllZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
