// RAFS v5 blob table (spec §4.5: packed `{readahead_offset, readahead_size, blob_id, NUL}`, the
// last entry without NUL, padded to 8) and extended blob table (§4.6: 64-byte entries), plus
// their mapping to the shared BlobInfo model. Upstream: RafsV5BlobTable / RafsV5ExtBlobTable.
import { Reader, Writer, align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { emptyBlobInfo, type BlobInfo } from '../blob-info.js';
import { BLOB_FEATURES_INVALID, BlobFeatures, type Compressor, type Digester } from '../constants.js';
import { RAFSV5_ALIGNMENT, RAFSV5_EXT_BLOB_ENTRY_SIZE } from './superblock.js';

const S = 'RAFS v5 blob table';
const SX = 'RAFS v5 extended blob table';
const ENTRY_HEADER = 8;

export interface RafsV5BlobEntry {
  readaheadOffset: number;
  readaheadSize: number;
  blobId: string;
}

export interface RafsV5ExtBlobEntry {
  chunkCount: number;
  /** BlobFeatures (§2.3). */
  features: number;
  uncompressedSize: number;
  compressedSize: number;
}

const utf8 = new TextDecoder('utf-8');

/** Parses while more than 8 bytes remain; the blob id runs to the next NUL or the end (§4.5). */
export function decodeRafsV5BlobTable(buf: Uint8Array, offset: number, size: number): RafsV5BlobEntry[] {
  const r = new Reader(buf, offset, size, S);
  const out: RafsV5BlobEntry[] = [];
  let p = 0;
  while (size - p > ENTRY_HEADER) {
    const readaheadOffset = r.u32(p);
    const readaheadSize = r.u32(p + 4);
    const rest = r.bytes(p + ENTRY_HEADER, size - p - ENTRY_HEADER);
    let n = rest.indexOf(0);
    if (n < 0) n = rest.length;
    if (n === 0) {
      // Zero padding after the last entry has no id; an empty id mid-table is corruption.
      if (rest.every((b) => b === 0)) break;
      throw new FormatError('ERR_FORMAT_INVALID', S, `entry ${out.length} has an empty blob_id`, offset + p);
    }
    out.push({ readaheadOffset, readaheadSize, blobId: utf8.decode(rest.subarray(0, n)) });
    p += ENTRY_HEADER + n + 1;
  }
  return out;
}

export function encodeRafsV5BlobTable(entries: readonly RafsV5BlobEntry[]): Uint8Array {
  const ids = entries.map((e) => new TextEncoder().encode(e.blobId));
  let size = 0;
  ids.forEach((id, i) => {
    if (id.length === 0 || id.includes(0)) throw new FormatError('ERR_FORMAT_INVALID', S, `blob_id of entry ${i} is empty or contains NUL`);
    size += ENTRY_HEADER + id.length + (i < ids.length - 1 ? 1 : 0);
  });
  const out = new Uint8Array(align(size, RAFSV5_ALIGNMENT));
  const w = new Writer(out);
  let p = 0;
  entries.forEach((e, i) => {
    w.u32(p, e.readaheadOffset);
    w.u32(p + 4, e.readaheadSize);
    w.bytes(p + ENTRY_HEADER, ids[i]!);
    p += ENTRY_HEADER + ids[i]!.length + 1;
  });
  return out;
}

export function decodeRafsV5ExtBlobTable(buf: Uint8Array, offset: number, entries: number): RafsV5ExtBlobEntry[] {
  const r = new Reader(buf, offset, entries * RAFSV5_EXT_BLOB_ENTRY_SIZE, SX);
  const out: RafsV5ExtBlobEntry[] = [];
  for (let i = 0; i < entries; i++) {
    const o = i * RAFSV5_EXT_BLOB_ENTRY_SIZE;
    const features = r.u32(o + 4);
    if ((features & BLOB_FEATURES_INVALID) !== 0) {
      throw new FormatError('ERR_FORMAT_INVALID', SX, `features 0x${features.toString(16)} of entry ${i} has invalid bits`, offset + o + 4);
    }
    out.push({ chunkCount: r.u32(o), features, uncompressedSize: r.u64(o + 8), compressedSize: r.u64(o + 16) });
  }
  return out;
}

export function encodeRafsV5ExtBlobTable(entries: readonly RafsV5ExtBlobEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * RAFSV5_EXT_BLOB_ENTRY_SIZE);
  const w = new Writer(out);
  entries.forEach((e, i) => {
    const o = i * RAFSV5_EXT_BLOB_ENTRY_SIZE;
    w.u32(o, e.chunkCount);
    w.u32(o + 4, e.features);
    w.u64(o + 8, e.uncompressedSize);
    w.u64(o + 16, e.compressedSize);
  });
  return out;
}

/**
 * Joins both tables into BlobInfo[]. Without an extended table (`ext` empty, older images) the
 * chunk count is unknown (0) and features get the internal _V5_NO_EXT_BLOB_TABLE bit (§4.6).
 */
export function blobInfosFromRafsV5(
  entries: readonly RafsV5BlobEntry[],
  ext: readonly RafsV5ExtBlobEntry[],
  chunkSize: number,
  compressor: Compressor,
  digester: Digester,
): BlobInfo[] {
  if (ext.length !== 0 && ext.length !== entries.length) {
    throw new FormatError('ERR_FORMAT_INVALID', SX, `extended_blob_table_entries ${ext.length} does not match ${entries.length} blob table entries`);
  }
  return entries.map((e, i) => {
    const b = emptyBlobInfo(e.blobId, i, chunkSize, compressor, digester);
    b.readaheadOffset = e.readaheadOffset;
    b.readaheadSize = e.readaheadSize;
    const x = ext[i];
    if (x) {
      b.chunkCount = x.chunkCount;
      b.features = x.features;
      b.uncompressedSize = x.uncompressedSize;
      b.compressedSize = x.compressedSize;
    } else {
      b.features = BlobFeatures._V5_NO_EXT_BLOB_TABLE;
    }
    return b;
  });
}

/**
 * Splits BlobInfo[] into both tables. The extended table is omitted only when every blob came
 * from an image without one (all carry _V5_NO_EXT_BLOB_TABLE), so such images re-encode as is;
 * the internal bit never reaches the disk.
 */
export function rafsV5TablesFromBlobInfos(blobs: readonly BlobInfo[]): { entries: RafsV5BlobEntry[]; ext: RafsV5ExtBlobEntry[] } {
  const entries = blobs.map((b) => ({ readaheadOffset: b.readaheadOffset, readaheadSize: b.readaheadSize, blobId: b.blobId }));
  const legacy = blobs.length > 0 && blobs.every((b) => (b.features & BlobFeatures._V5_NO_EXT_BLOB_TABLE) !== 0);
  const ext = legacy
    ? []
    : blobs.map((b) => ({
        chunkCount: b.chunkCount,
        features: (b.features & ~BlobFeatures._V5_NO_EXT_BLOB_TABLE) >>> 0,
        uncompressedSize: b.uncompressedSize,
        compressedSize: b.compressedSize,
      }));
  return { entries, ext };
}
