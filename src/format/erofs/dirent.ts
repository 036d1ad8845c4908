// EROFS directory blocks (spec §5.9): n 12-byte dirents {u64 nid, u16 nameoff, u8 file_type,
// u8 reserved} followed by their n names (no NULs); nameoff is relative to the block start.
import { FormatError } from '../../util/errors.js';
import { EROFS_DIRENT_SIZE, EROFS_FT_MAX } from './constants.js';

const S = 'EROFS dirent block';

export interface ErofsDirent {
  nid: number;
  fileType: number;
  /** View into the block. */
  name: Uint8Array;
}

/**
 * A validated view over one directory block (or inline tail) `block`: entries are read on demand,
 * O(1) each, without copying. `blockOffset` is only used in error messages.
 */
export class DirentBlock {
  readonly block: Uint8Array;
  readonly count: number;
  readonly #dv: DataView;
  readonly #at: number;

  constructor(block: Uint8Array, blockOffset = 0) {
    this.block = block;
    this.#at = blockOffset;
    this.#dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (block.length < EROFS_DIRENT_SIZE) throw this.#err(`block of ${block.length} bytes cannot hold a dirent`);
    const first = this.#dv.getUint16(8, true);
    if (first % EROFS_DIRENT_SIZE !== 0 || first < EROFS_DIRENT_SIZE || first >= block.length) {
      throw this.#err(`nameoff[0] ${first} is not a multiple of 12 in [12, ${block.length})`);
    }
    this.count = first / EROFS_DIRENT_SIZE;
    let prev = first;
    for (let i = 1; i < this.count; i++) {
      const off = this.#dv.getUint16(i * EROFS_DIRENT_SIZE + 8, true);
      if (off <= prev || off >= block.length) throw this.#err(`nameoff[${i}] ${off} is not after nameoff[${i - 1}] ${prev} inside the block`);
      prev = off;
    }
  }

  #err(msg: string): FormatError {
    return new FormatError('ERR_FORMAT_INVALID', S, msg, this.#at);
  }

  nid(i: number): number {
    const v = this.#dv.getBigUint64(i * EROFS_DIRENT_SIZE, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#err(`dirent ${i} nid ${v} is too large`);
    return Number(v);
  }

  fileType(i: number): number {
    const ft = this.block[i * EROFS_DIRENT_SIZE + 10]!;
    if (ft >= EROFS_FT_MAX) throw this.#err(`dirent ${i} file_type ${ft} is invalid`);
    return ft;
  }

  /** Name of entry i; the last one runs to the first NUL or the end of the block. */
  name(i: number): Uint8Array {
    const start = this.#dv.getUint16(i * EROFS_DIRENT_SIZE + 8, true);
    let end: number;
    if (i + 1 < this.count) end = this.#dv.getUint16((i + 1) * EROFS_DIRENT_SIZE + 8, true);
    else {
      end = this.block.indexOf(0, start);
      if (end < 0) end = this.block.length;
    }
    if (end <= start) throw this.#err(`dirent ${i} has an empty name`);
    return this.block.subarray(start, end);
  }

  entry(i: number): ErofsDirent {
    return { nid: this.nid(i), fileType: this.fileType(i), name: this.name(i) };
  }

  entries(): ErofsDirent[] {
    const out: ErofsDirent[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.entry(i));
    return out;
  }

  /** Binary search for `name` in this block: index or -(insertion point) - 1. */
  find(name: Uint8Array): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(this.name(mid), name);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }
}

/** Decodes one directory block into its entries (validating offsets). */
export function decodeDirentBlock(block: Uint8Array, blockOffset = 0): ErofsDirent[] {
  return new DirentBlock(block, blockOffset).entries();
}

/** Byte size of a directory whose sorted entry names are `names` (packing rule of §5.9/§5.14). */
export function direntSize(names: readonly Uint8Array[], blockSize = 4096): number {
  let d = 0;
  for (const n of names) {
    const len = EROFS_DIRENT_SIZE + n.length;
    if ((d % blockSize) + len > blockSize) d = Math.ceil(d / blockSize) * blockSize;
    d += len;
  }
  return d;
}

/**
 * Encodes entries (already sorted by name bytes, incl. `.` and `..`) into the directory's data:
 * `direntSize(names)` bytes, full blocks then the used part of the last one.
 */
export function encodeDirents(entries: readonly ErofsDirent[], blockSize = 4096): Uint8Array {
  const size = direntSize(entries.map((e) => e.name), blockSize);
  const out = new Uint8Array(Math.ceil(size / blockSize) * blockSize);
  const dv = new DataView(out.buffer);
  let i = 0;
  let blockStart = 0;
  while (i < entries.length) {
    // Take as many entries as fit in this block.
    let used = 0;
    let j = i;
    while (j < entries.length && used + EROFS_DIRENT_SIZE + entries[j]!.name.length <= blockSize) {
      used += EROFS_DIRENT_SIZE + entries[j]!.name.length;
      j++;
    }
    if (j === i) throw new FormatError('ERR_FORMAT_INVALID', S, `name of ${entries[i]!.name.length} bytes does not fit in a block`);
    let nameOff = (j - i) * EROFS_DIRENT_SIZE;
    for (let k = i; k < j; k++) {
      const e = entries[k]!;
      const d = blockStart + (k - i) * EROFS_DIRENT_SIZE;
      dv.setBigUint64(d, BigInt(e.nid), true);
      dv.setUint16(d + 8, nameOff, true);
      out[d + 10] = e.fileType;
      out.set(e.name, blockStart + nameOff);
      nameOff += e.name.length;
    }
    i = j;
    blockStart += blockSize;
  }
  return out.subarray(0, size);
}
