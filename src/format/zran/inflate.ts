// Pure-TS inflate (RFC 1951 raw deflate inside RFC 1952 gzip members) that can start at any block
// boundary given the bit position and the 32 KiB window before it, and reports every block
// boundary it passes. Node's zlib can do neither (no inflatePrime, no Z_BLOCK state), which
// zero-conversion (zran) images need: upstream utils/src/compress/zlib_random.rs drives libz with
// Z_BLOCK, inflateGetDictionary and inflatePrime for the same two jobs.
import { crc32 } from 'node:zlib';
import { FormatError } from '../../util/errors.js';

/** Upstream ZRAN_DICT_WIN_SIZE: the deflate window kept per random access point. */
export const ZRAN_DICT_WIN_SIZE = 1 << 15;

/** Where a deflate block starts: absolute input bit position and output offset. */
export interface InflateCheckpoint {
  /** Absolute bit position in the input (byte * 8 + bit, bits counted LSB first). */
  bit: number;
  /** Absolute output offset. */
  out: number;
  /** Gzip member number (0-based); a block never reaches back across members. */
  member: number;
  /** Output offset where this member's data starts (the window never reaches before it). */
  memberOut: number;
  /** Upstream ctx_byte: the partly used byte holding the block's first bits in its top `8 - bit % 8` bits. */
  ctxByte: number;
  /** Lowest absolute output offset a match of this block copies from (updated while it decodes). */
  minRef: number;
}

export interface InflaterOptions {
  /** Next input bytes, or null at the end of input. */
  fill: () => Uint8Array | null;
  /** Input starts with a gzip header (a whole layer); false: raw deflate from `startBit`. */
  gzip: boolean;
  /** Raw mode: bit within the first input byte where the first block starts (0..7). */
  startBit?: number;
  /** Raw mode: the window (up to 32 KiB) the first block may refer to. */
  window?: Uint8Array;
  /** Called at each block start. */
  onBlock?: (cp: InflateCheckpoint) => void;
  /** Names the input in errors. */
  name: string;
}

const LEN_BASE = new Uint16Array([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]);
const LEN_EXTRA = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]);
const DIST_BASE = new Uint16Array([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]);
const DIST_EXTRA = new Uint8Array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]);
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** A decode table: entry = symbol << 4 | code length (0 = no code), indexed by `bits` LSB-first bits. */
interface Table {
  t: Int32Array;
  bits: number;
}

function buildTable(lengths: Uint8Array, n: number, what: string, err: (m: string) => Error): Table {
  const count = new Uint16Array(16);
  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    const l = lengths[i]!;
    count[l]!++;
    if (l > maxLen) maxLen = l;
  }
  count[0] = 0;
  // Over-subscribed sets are corrupt; incomplete ones are legal (a single distance code).
  let left = 1;
  for (let l = 1; l <= 15; l++) {
    left = (left << 1) - count[l]!;
    if (left < 0) throw err(`over-subscribed ${what} code`);
  }
  const bits = Math.max(maxLen, 1);
  const t = new Int32Array(1 << bits);
  const next = new Uint16Array(16);
  let code = 0;
  for (let l = 1; l <= 15; l++) {
    code = (code + count[l - 1]!) << 1;
    next[l] = code;
  }
  for (let s = 0; s < n; s++) {
    const l = lengths[s]!;
    if (l === 0) continue;
    let c = next[l]!++;
    let r = 0;
    for (let i = 0; i < l; i++) {
      r = (r << 1) | (c & 1);
      c >>= 1;
    }
    const e = (s << 4) | l;
    for (let k = r; k < 1 << bits; k += 1 << l) t[k] = e;
  }
  return { t, bits };
}

let fixedLit: Table | undefined;
let fixedDist: Table | undefined;
function fixedTables(err: (m: string) => Error): [Table, Table] {
  if (!fixedLit || !fixedDist) {
    const l = new Uint8Array(288);
    l.fill(8, 0, 144);
    l.fill(9, 144, 256);
    l.fill(7, 256, 280);
    l.fill(8, 280, 288);
    fixedLit = buildTable(l, 288, 'literal/length', err);
    fixedDist = buildTable(new Uint8Array(30).fill(5), 30, 'distance', err);
  }
  return [fixedLit, fixedDist];
}

const enum St {
  Header,
  Block,
  Stored,
  Huff,
  Trailer,
  Done,
}

/**
 * Streaming inflater. `step(target)` decodes until `produced >= target` or the stream ends; the
 * output since `keepFrom` (and at least the 32 KiB window) stays readable through `view`.
 */
export class Inflater {
  readonly #o: InflaterOptions;
  #in: Uint8Array = new Uint8Array(0);
  #ip = 0;
  #inBase = 0;
  #bb = 0;
  #bc = 0;
  #eof = false;
  #out: Uint8Array;
  #ol = 0;
  #ob = 0;
  /** Output before this absolute offset may be discarded (the caller still needs what follows). */
  keepFrom = 0;
  #st: St;
  #final = false;
  #stored = 0;
  #lit: Table | undefined;
  #dist: Table | undefined;
  #member = 0;
  #memberOut = 0;
  #crc = 0;
  #crcPos = 0;
  /** Checkpoint of the block being decoded. */
  last: InflateCheckpoint | undefined;

  constructor(o: InflaterOptions) {
    this.#o = o;
    this.#out = new Uint8Array(4 << 20);
    if (o.gzip) this.#st = St.Header;
    else {
      const w = o.window ?? new Uint8Array(0);
      if (w.length > ZRAN_DICT_WIN_SIZE) throw this.#err(`window of ${w.length} bytes exceeds 32 KiB`);
      this.#out.set(w, 0);
      this.#ol = w.length;
      this.#ob = -w.length;
      this.#memberOut = -w.length;
      this.#st = St.Block;
      const sb = o.startBit ?? 0;
      if (sb) {
        this.#need(sb);
        this.#drop(sb);
      }
    }
  }

  /** Absolute output offset decoded so far. */
  get produced(): number {
    return this.#ob + this.#ol;
  }

  get done(): boolean {
    return this.#st === St.Done;
  }

  /** Absolute input bytes consumed (whole bytes, bits buffered not counted). */
  get inputPosition(): number {
    return this.#inBase + this.#ip - (this.#bc >> 3);
  }

  /** Output bytes [from, to) (absolute); valid until the next `step`. */
  view(from: number, to: number): Uint8Array {
    if (from < this.#ob || to > this.produced) throw new RangeError(`output ${from}..${to} is no longer (or not yet) available`);
    return this.#out.subarray(from - this.#ob, to - this.#ob);
  }

  /** The window a decoder starting at `cp` needs (up to 32 KiB, never before its member). */
  windowAt(cp: InflateCheckpoint): Uint8Array {
    const from = Math.max(cp.out - ZRAN_DICT_WIN_SIZE, cp.memberOut);
    return this.view(from, cp.out).slice();
  }

  #err(m: string, code: 'ERR_FORMAT_INVALID' | 'ERR_FORMAT_TRUNCATED' = 'ERR_FORMAT_INVALID'): FormatError {
    return new FormatError(code, this.#o.name, m);
  }

  #more(): boolean {
    if (this.#eof) return false;
    for (;;) {
      const b = this.#o.fill();
      if (!b) {
        this.#eof = true;
        return false;
      }
      if (b.length === 0) continue;
      this.#inBase += this.#in.length;
      this.#in = b;
      this.#ip = 0;
      return true;
    }
  }

  #need(n: number): void {
    while (this.#bc < n) {
      if (this.#ip >= this.#in.length && !this.#more()) throw this.#err(`gzip data ends early (at input byte ${this.#inBase + this.#ip})`, 'ERR_FORMAT_TRUNCATED');
      this.#bb |= this.#in[this.#ip++]! << this.#bc;
      this.#bc += 8;
    }
  }

  #drop(n: number): void {
    this.#bb >>>= n;
    this.#bc -= n;
  }

  #bits(n: number): number {
    if (n === 0) return 0;
    this.#need(n);
    const v = this.#bb & ((1 << n) - 1);
    this.#drop(n);
    return v;
  }

  #byte(): number {
    return this.#bits(8);
  }

  /** True when more input exists (after the current bit buffer). */
  #hasInput(): boolean {
    if (this.#bc >= 8) return true;
    return this.#ip < this.#in.length || this.#more();
  }

  /** Makes room for `n` more output bytes, discarding output before keepFrom and the window. */
  #room(n: number): void {
    if (this.#ol + n <= this.#out.length) return;
    const keep = Math.max(this.#ob, Math.min(this.keepFrom, this.produced - ZRAN_DICT_WIN_SIZE));
    this.#updateCrc();
    const cut = keep - this.#ob;
    if (cut > 0) {
      this.#out.copyWithin(0, cut, this.#ol);
      this.#ol -= cut;
      this.#ob = keep;
    }
    if (this.#ol + n > this.#out.length - (this.#out.length >> 2)) {
      const grown = new Uint8Array(Math.max(this.#out.length * 2, this.#ol + n));
      grown.set(this.#out.subarray(0, this.#ol));
      this.#out = grown;
    }
  }

  #updateCrc(): void {
    if (!this.#o.gzip) return;
    const p = this.produced;
    if (p > this.#crcPos) {
      this.#crc = crc32(this.#out.subarray(this.#crcPos - this.#ob, this.#ol), this.#crc);
      this.#crcPos = p;
    }
  }

  #header(): void {
    const m0 = this.#byte();
    const m1 = this.#byte();
    if (m0 !== 0x1f || m1 !== 0x8b) throw this.#err(`not a gzip stream (magic ${m0.toString(16).padStart(2, '0')} ${m1.toString(16).padStart(2, '0')} at input byte ${this.inputPosition - 2})`);
    if (this.#byte() !== 8) throw this.#err('gzip compression method is not deflate');
    const flg = this.#byte();
    for (let i = 0; i < 6; i++) this.#byte();
    if (flg & 4) {
      const xlen = this.#byte() | (this.#byte() << 8);
      for (let i = 0; i < xlen; i++) this.#byte();
    }
    if (flg & 8) while (this.#byte() !== 0);
    if (flg & 16) while (this.#byte() !== 0);
    if (flg & 2) this.#bits(16);
    this.#memberOut = this.produced;
    this.#crc = 0;
    this.#crcPos = this.produced;
    this.#st = St.Block;
  }

  #trailer(): void {
    this.#drop(this.#bc & 7);
    const crc = (this.#bits(16) | (this.#bits(16) << 16)) >>> 0;
    const size = (this.#bits(16) | (this.#bits(16) << 16)) >>> 0;
    if (this.#o.gzip) {
      this.#updateCrc();
      if (crc !== this.#crc >>> 0) throw this.#err(`gzip member ${this.#member} CRC mismatch (data is corrupt)`);
      if (size !== (this.produced - this.#memberOut) % 2 ** 32) throw this.#err(`gzip member ${this.#member} size mismatch (data is corrupt)`);
    }
    this.#member++;
    // Another member follows, or the stream ends (trailing zeros, as tar tools pad, are ignored).
    if (!this.#hasInput()) {
      this.#st = St.Done;
      return;
    }
    this.#need(8);
    if ((this.#bb & 0xff) !== 0x1f) {
      this.#st = St.Done;
      return;
    }
    this.#st = St.Header;
  }

  #blockHeader(): void {
    const bit = (this.#inBase + this.#ip) * 8 - this.#bc;
    const pending = (8 - (bit & 7)) & 7;
    const ctxByte = pending ? ((this.#bb & ((1 << pending) - 1)) << (8 - pending)) & 0xff : 0;
    const cp: InflateCheckpoint = { bit, out: this.produced, member: this.#member, memberOut: this.#memberOut, ctxByte, minRef: this.produced };
    this.last = cp;
    this.#o.onBlock?.(cp);
    this.#final = this.#bits(1) === 1;
    const type = this.#bits(2);
    if (type === 0) {
      this.#drop(this.#bc & 7);
      const len = this.#bits(16);
      const nlen = this.#bits(16);
      if ((len ^ 0xffff) !== nlen) throw this.#err(`stored block length check fails at input byte ${this.inputPosition}`);
      this.#stored = len;
      this.#st = St.Stored;
    } else if (type === 1) {
      [this.#lit, this.#dist] = fixedTables((m) => this.#err(m));
      this.#st = St.Huff;
    } else if (type === 2) {
      this.#dynamic();
      this.#st = St.Huff;
    } else throw this.#err(`invalid deflate block type 3 at input byte ${this.inputPosition}`);
  }

  #dynamic(): void {
    const err = (m: string): Error => this.#err(m);
    const hlit = this.#bits(5) + 257;
    const hdist = this.#bits(5) + 1;
    const hclen = this.#bits(4) + 4;
    if (hlit > 286 || hdist > 30) throw err('too many length or distance codes');
    const cl = new Uint8Array(19);
    for (let i = 0; i < hclen; i++) cl[CL_ORDER[i]!] = this.#bits(3);
    const clt = buildTable(cl, 19, 'code length', err);
    const lens = new Uint8Array(hlit + hdist);
    for (let i = 0; i < hlit + hdist; ) {
      const e = this.#sym(clt);
      const s = e >>> 4;
      if (s < 16) lens[i++] = s;
      else {
        let rep: number;
        let v = 0;
        if (s === 16) {
          if (i === 0) throw err('repeat of a code length with no previous length');
          v = lens[i - 1]!;
          rep = 3 + this.#bits(2);
        } else if (s === 17) rep = 3 + this.#bits(3);
        else rep = 11 + this.#bits(7);
        if (i + rep > hlit + hdist) throw err('code lengths overflow');
        lens.fill(v, i, i + rep);
        i += rep;
      }
    }
    if (lens[256] === 0) throw err('no end-of-block code');
    this.#lit = buildTable(lens.subarray(0, hlit), hlit, 'literal/length', err);
    this.#dist = buildTable(lens.subarray(hlit), hdist, 'distance', err);
  }

  /** Decodes one symbol (slow path, with refills); returns the table entry. */
  #sym(tb: Table): number {
    // Fill what is available, up to the table width.
    while (this.#bc < tb.bits) {
      if (this.#ip >= this.#in.length && !this.#more()) break;
      this.#bb |= this.#in[this.#ip++]! << this.#bc;
      this.#bc += 8;
    }
    const e = tb.t[this.#bb & ((1 << tb.bits) - 1)]!;
    const l = e & 15;
    if (l === 0) throw this.#err(`invalid Huffman code at input byte ${this.inputPosition}`);
    if (l > this.#bc) throw this.#err(`gzip data ends early (at input byte ${this.#inBase + this.#ip})`, 'ERR_FORMAT_TRUNCATED');
    this.#drop(l);
    return e;
  }

  /** Decodes until `produced >= target` or the end of the stream. */
  step(target: number): void {
    while (this.produced < target) {
      switch (this.#st) {
        case St.Header:
          this.#header();
          break;
        case St.Block:
          this.#blockHeader();
          break;
        case St.Stored: {
          while (this.#stored > 0 && this.produced < target) {
            // Whole bytes: first any left in the bit buffer, then straight from the input.
            if (this.#bc >= 8) {
              this.#room(1);
              this.#out[this.#ol++] = this.#bits(8);
              this.#stored--;
              continue;
            }
            if (this.#ip >= this.#in.length && !this.#more()) throw this.#err('gzip data ends early inside a stored block', 'ERR_FORMAT_TRUNCATED');
            const n = Math.min(this.#stored, this.#in.length - this.#ip, target - this.produced);
            this.#room(n);
            this.#out.set(this.#in.subarray(this.#ip, this.#ip + n), this.#ol);
            this.#ol += n;
            this.#ip += n;
            this.#stored -= n;
          }
          if (this.#stored === 0) this.#st = this.#final ? St.Trailer : St.Block;
          break;
        }
        case St.Huff:
          if (this.#huff(target)) this.#st = this.#final ? St.Trailer : St.Block;
          break;
        case St.Trailer:
          if (!this.#o.gzip && !this.#hasInputForTrailer()) {
            this.#st = St.Done;
            break;
          }
          this.#trailer();
          break;
        case St.Done:
          return;
      }
    }
  }

  /** Raw (context) mode: a member end is followed by its trailer only when the input goes on. */
  #hasInputForTrailer(): boolean {
    return this.#hasInput();
  }

  /** Huffman block body; true at end of block. The hot loop keeps state in locals. */
  #huff(target: number): boolean {
    const lt = this.#lit!.t;
    const lmask = (1 << this.#lit!.bits) - 1;
    const dt = this.#dist!.t;
    const dmask = (1 << this.#dist!.bits) - 1;
    let inp = this.#in;
    let ip = this.#ip;
    let bb = this.#bb;
    let bc = this.#bc;
    let out = this.#out;
    let ol = this.#ol;
    const cp = this.last;
    // Lowest copy source relative to the buffer start (#ob only changes inside #room, after save).
    let minRel = Infinity;
    const save = (): void => {
      this.#ip = ip;
      this.#bb = bb;
      this.#bc = bc;
      this.#ol = ol;
      if (cp && minRel !== Infinity) {
        cp.minRef = Math.min(cp.minRef, this.#ob + minRel);
        minRel = Infinity;
      }
    };
    const load = (): void => {
      inp = this.#in;
      ip = this.#ip;
      bb = this.#bb;
      bc = this.#bc;
      out = this.#out;
      ol = this.#ol;
    };
    // Tops the bit buffer up to more than 24 bits (fewer only at the end of input).
    const refill = (): void => {
      if (ip + 4 <= inp.length) {
        while (bc <= 24) {
          bb |= inp[ip++]! << bc;
          bc += 8;
        }
        return;
      }
      save();
      while (this.#bc <= 24 && (this.#ip < this.#in.length || this.#more())) {
        this.#bb |= this.#in[this.#ip++]! << this.#bc;
        this.#bc += 8;
      }
      load();
    };
    const fail = (m: string, truncated = false): never => {
      save();
      throw truncated ? this.#err(`gzip data ends early (at input byte ${this.#inBase + this.#ip})`, 'ERR_FORMAT_TRUNCATED') : this.#err(`${m} at input byte ${this.inputPosition}`);
    };
    for (;;) {
      if (this.#ob + ol >= target) {
        save();
        return false;
      }
      if (ol + 258 > out.length) {
        save();
        this.#room(258);
        load();
      }
      if (bc < 15) refill();
      let e = lt[bb & lmask]!;
      let l = e & 15;
      if (l === 0) fail('invalid Huffman code');
      if (l > bc) fail('', true);
      bb >>>= l;
      bc -= l;
      const s = e >>> 4;
      if (s < 256) {
        out[ol++] = s;
        continue;
      }
      if (s === 256) {
        save();
        return true;
      }
      if (s > 285) fail(`invalid length symbol ${s}`);
      const li = s - 257;
      let x = LEN_EXTRA[li]!;
      if (bc < 20) refill();
      if (x > bc) fail('', true);
      const len = LEN_BASE[li]! + (bb & ((1 << x) - 1));
      bb >>>= x;
      bc -= x;
      if (bc < 15) refill();
      e = dt[bb & dmask]!;
      l = e & 15;
      if (l === 0) fail('invalid distance code');
      if (l > bc) fail('', true);
      bb >>>= l;
      bc -= l;
      const ds = e >>> 4;
      if (ds >= 30) fail(`invalid distance symbol ${ds}`);
      x = DIST_EXTRA[ds]!;
      if (bc < x) refill();
      if (x > bc) fail('', true);
      const dist = DIST_BASE[ds]! + (bb & ((1 << x) - 1));
      bb >>>= x;
      bc -= x;
      if (dist > ol || this.#ob + ol - dist < this.#memberOut) fail(`distance ${dist} reaches before the start of the data`);
      let from = ol - dist;
      if (from < minRel) minRel = from;
      if (dist >= len) {
        out.copyWithin(ol, from, from + len);
        ol += len;
      } else {
        for (let k = 0; k < len; k++) out[ol++] = out[from++]!;
      }
    }
  }
}

/** Inflates a whole gzip buffer (all members): tests and small inputs. */
export function gunzipAll(data: Uint8Array, name = 'gzip data'): Uint8Array {
  let given = false;
  const inf = new Inflater({ gzip: true, name, fill: () => (given ? null : ((given = true), data)) });
  const parts: Uint8Array[] = [];
  let pos = 0;
  while (!inf.done) {
    inf.step(pos + (1 << 20));
    const p = inf.produced;
    parts.push(inf.view(pos, p).slice());
    inf.keepFrom = p;
    pos = p;
  }
  return Buffer.concat(parts);
}
