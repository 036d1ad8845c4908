// Blob cache ready-bitmap file `<blob_id>.blob.data.chunk_map`: 4096-byte header + one bit per
// chunk, MSB first. Spec §8; upstream storage/src/cache/state/persist_map.rs (PersistMap).
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';

/** Upstream MAGIC1 "PAMB" (ASCII "BMAP" little-endian). */
export const CHUNK_MAP_MAGIC1 = 0x424d_4150;
/** Upstream MAGIC2 "PAMC". */
export const CHUNK_MAP_MAGIC2 = 0x434d_4150;
/** Upstream MAGIC_ALL_READY "PAMM": written once every chunk is ready. */
export const CHUNK_MAP_MAGIC_ALL_READY = 0x4d4d_4150;
export const CHUNK_MAP_HEADER_SIZE = 4096;
export const CHUNK_MAP_VERSION = 1;
export const CHUNK_MAP_FILE_SUFFIX = 'chunk_map';

export interface ChunkMapHeader {
  version: number;
  allReady: boolean;
}

/** The only valid file size; nydusd discards a map of any other size (§8). */
export function chunkMapFileSize(chunkCount: number): number {
  return CHUNK_MAP_HEADER_SIZE + Math.ceil(chunkCount / 8);
}

export function encodeChunkMapHeader(h: ChunkMapHeader, out: Uint8Array = new Uint8Array(CHUNK_MAP_HEADER_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + CHUNK_MAP_HEADER_SIZE);
  const w = new Writer(out, offset);
  w.u32(0, CHUNK_MAP_MAGIC1);
  w.u32(4, h.version);
  w.u32(8, CHUNK_MAP_MAGIC2);
  w.u32(12, h.allReady ? CHUNK_MAP_MAGIC_ALL_READY : 0);
  return out;
}

export function decodeChunkMapHeader(buf: Uint8Array, offset = 0): ChunkMapHeader {
  const r = new Reader(buf, offset, CHUNK_MAP_HEADER_SIZE, 'chunk_map header');
  if (r.u32(0) !== CHUNK_MAP_MAGIC1 || r.u32(8) !== CHUNK_MAP_MAGIC2) {
    throw new FormatError('ERR_FORMAT_BAD_MAGIC', 'chunk_map header', `magic 0x${r.u32(0).toString(16)}/0x${r.u32(8).toString(16)}, expected PAMB/PAMC`, offset);
  }
  const version = r.u32(4);
  if (version !== CHUNK_MAP_VERSION) throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'chunk_map header', `version ${version}, expected ${CHUNK_MAP_VERSION}`, offset + 4);
  return { version, allReady: r.u32(12) === CHUNK_MAP_MAGIC_ALL_READY };
}

/** A fresh map file (nothing ready). */
export function createChunkMap(chunkCount: number): Uint8Array {
  const out = new Uint8Array(chunkMapFileSize(chunkCount));
  encodeChunkMapHeader({ version: CHUNK_MAP_VERSION, allReady: false }, out);
  return out;
}

/** Validates a whole map file; returns its header and a view of the bitmap. */
export function decodeChunkMap(file: Uint8Array, chunkCount: number): { header: ChunkMapHeader; bitmap: Uint8Array } {
  const expected = chunkMapFileSize(chunkCount);
  if (file.length !== expected) throw new FormatError('ERR_FORMAT_INVALID', 'chunk_map', `file is ${file.length} bytes, expected ${expected} for ${chunkCount} chunks`);
  return { header: decodeChunkMapHeader(file), bitmap: file.subarray(CHUNK_MAP_HEADER_SIZE) };
}

/** Chunk i is bit 0x80 >> (i % 8) of byte i / 8 (MSB first), §8. */
export function isChunkReady(bitmap: Uint8Array, index: number): boolean {
  return ((bitmap[index >>> 3] ?? 0) & (0x80 >>> (index & 7))) !== 0;
}

export function setChunkReady(bitmap: Uint8Array, index: number): void {
  if (index >>> 3 >= bitmap.length) throw new FormatError('ERR_FORMAT_INVALID', 'chunk_map', `chunk ${index} is outside the bitmap`);
  bitmap[index >>> 3]! |= 0x80 >>> (index & 7);
}

export function allChunksReady(bitmap: Uint8Array, chunkCount: number): boolean {
  for (let i = 0; i < chunkCount >>> 3; i++) if (bitmap[i] !== 0xff) return false;
  for (let i = chunkCount & ~7; i < chunkCount; i++) if (!isChunkReady(bitmap, i)) return false;
  return true;
}
