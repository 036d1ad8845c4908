// EROFS chunk index entry (8 bytes, erofs_inode_chunk_index) as RAFS uses it (spec §5.10):
// u16 ci_index low 16 bits | u16 device_id (low byte blob_index+1, high byte ci_index bits 16..23)
// | u32 block address of the uncompressed chunk on that device.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { EROFS_CHUNK_INDEX_SIZE } from './constants.js';

const S = 'EROFS chunk index';

export interface ChunkIndexEntry {
  blobIndex: number;
  /** Chunk index within its blob (24 bits). */
  ciIndex: number;
  /** uncompressed_offset / block_size. */
  blkaddr: number;
}

export function decodeChunkIndex(buf: Uint8Array, offset: number): ChunkIndexEntry {
  const r = new Reader(buf, offset, EROFS_CHUNK_INDEX_SIZE, S);
  const lo = r.u16(0);
  const dev = r.u16(2);
  if ((dev & 0xff) === 0) throw new FormatError('ERR_FORMAT_INVALID', S, 'device_id 0 (the bootstrap itself) holds no chunk data', offset);
  return { blobIndex: (dev & 0xff) - 1, ciIndex: ((dev >>> 8) << 16) | lo, blkaddr: r.u32(4) };
}

export function encodeChunkIndex(e: ChunkIndexEntry, out = new Uint8Array(EROFS_CHUNK_INDEX_SIZE), offset = 0): Uint8Array {
  if (e.blobIndex < 0 || e.blobIndex > 254) throw new FormatError('ERR_FORMAT_INVALID', S, `blob index ${e.blobIndex} does not fit (at most 255 blobs)`);
  if (e.ciIndex < 0 || e.ciIndex > 0xffffff) throw new FormatError('ERR_FORMAT_INVALID', S, `chunk index ${e.ciIndex} does not fit in 24 bits`);
  const w = new Writer(out, offset);
  w.u16(0, e.ciIndex & 0xffff);
  w.u16(2, (e.blobIndex + 1) | (((e.ciIndex >>> 16) & 0xff) << 8));
  w.u32(4, e.blkaddr);
  return out;
}
