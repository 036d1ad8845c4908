// Blob ToC (`rafs.blob.toc`): 128-byte entries at the very end of a blob, followed by their tar
// header. Spec §7.6; upstream storage/src/meta/toc.rs (TocEntry, TocEntryList).
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import type { Compressor } from '../constants.js';
import { sha256 } from '../digest.js';
import { TAR_HEADER_SIZE, decodeTarHeader } from './tar-header.js';

export const TOC_ENTRY_SIZE = 128;
export const TOC_ENTRY_BLOB_RAW = 'image.blob';
export const TOC_ENTRY_BLOB_META = 'blob.meta';
export const TOC_ENTRY_BLOB_META_HEADER = 'blob.meta.header';
export const TOC_ENTRY_BLOB_DIGEST = 'blob.digest';
export const TOC_ENTRY_BOOTSTRAP = 'image.boot';
export const TOC_ENTRY_BLOB_TOC = 'rafs.blob.toc';
/** How much of a blob's tail a reader fetches to find the ToC (§7.6). */
export const TOC_READ_SIZE = 0x1000;

/** ToC entry flags (upstream TocEntryFlags): a different encoding from §2.2 codes. */
export const TocEntryFlags = {
  COMPRESSION_NONE: 0x1,
  COMPRESSION_ZSTD: 0x2,
  COMPRESSION_LZ4_BLOCK: 0x4,
  COMPRESSION_MASK: 0xf,
} as const;

export interface TocEntry {
  flags: number;
  /** At most 16 bytes; `blob.meta.header` fills all 16 with no NUL. */
  name: string;
  /** sha256 of the entry's uncompressed content (32 bytes; see §7.6 for image.blob). */
  uncompressedDigest: Uint8Array;
  compressedOffset: number;
  compressedSize: number;
  uncompressedSize: number;
}

export function tocFlagsForCompressor(c: Compressor): number {
  switch (c) {
    case 'none':
      return TocEntryFlags.COMPRESSION_NONE;
    case 'zstd':
      return TocEntryFlags.COMPRESSION_ZSTD;
    case 'lz4_block':
      return TocEntryFlags.COMPRESSION_LZ4_BLOCK;
    case 'gzip':
      // Upstream TocEntry::set_compressor rejects gzip as well.
      throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'ToC entry', 'gzip cannot be recorded in a ToC entry');
  }
}

export function tocEntryCompressor(e: TocEntry): Compressor {
  switch (e.flags & TocEntryFlags.COMPRESSION_MASK) {
    case TocEntryFlags.COMPRESSION_NONE:
      return 'none';
    case TocEntryFlags.COMPRESSION_ZSTD:
      return 'zstd';
    case TocEntryFlags.COMPRESSION_LZ4_BLOCK:
      return 'lz4_block';
    default:
      throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'ToC entry', `"${e.name}" has unknown compression flags 0x${e.flags.toString(16)}`);
  }
}

export function decodeTocEntry(buf: Uint8Array, offset = 0): TocEntry {
  const r = new Reader(buf, offset, TOC_ENTRY_SIZE, 'ToC entry');
  const nameBytes = r.bytes(8, 16);
  const nul = nameBytes.indexOf(0);
  // Bytes +80..128 are reserved and ignored: nydus-image before 2.2.0-rc.3 left garbage there (§7.6).
  return {
    flags: r.u32(0),
    name: String.fromCharCode(...nameBytes.subarray(0, nul < 0 ? 16 : nul)),
    uncompressedDigest: r.bytes(24, 32).slice(),
    compressedOffset: r.u64(56),
    compressedSize: r.u64(64),
    uncompressedSize: r.u64(72),
  };
}

export function encodeTocEntry(e: TocEntry, out: Uint8Array = new Uint8Array(TOC_ENTRY_SIZE), offset = 0): Uint8Array {
  if (e.name.length === 0 || e.name.length > 16) throw new FormatError('ERR_FORMAT_INVALID', 'ToC entry', `name "${e.name}" must be 1..16 bytes`);
  out.fill(0, offset, offset + TOC_ENTRY_SIZE);
  const w = new Writer(out, offset);
  w.u32(0, e.flags);
  for (let i = 0; i < e.name.length; i++) w.u8(8 + i, e.name.charCodeAt(i));
  w.bytes(24, e.uncompressedDigest.subarray(0, 32));
  w.u64(56, e.compressedOffset);
  w.u64(64, e.compressedSize);
  w.u64(72, e.uncompressedSize);
  return out;
}

export function encodeTocEntries(entries: readonly TocEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * TOC_ENTRY_SIZE);
  entries.forEach((e, i) => encodeTocEntry(e, out, i * TOC_ENTRY_SIZE));
  return out;
}

export function decodeTocEntries(buf: Uint8Array): TocEntry[] {
  if (buf.length % TOC_ENTRY_SIZE !== 0) throw new FormatError('ERR_FORMAT_INVALID', 'ToC', `size ${buf.length} is not a multiple of ${TOC_ENTRY_SIZE}`);
  const out: TocEntry[] = [];
  for (let off = 0; off < buf.length; off += TOC_ENTRY_SIZE) out.push(decodeTocEntry(buf, off));
  return out;
}

export interface BlobToc {
  entries: TocEntry[];
  /** Offset of the first entry within `tail`; add `blobSize - tail.length` for the blob offset. */
  offsetInTail: number;
  /** ToC bytes + tar header (the blob table's blob_toc_size). */
  tocSize: number;
  /** sha256(ToC bytes + tar header): the blob table's blob_toc_digest. */
  tocDigest: Uint8Array;
}

/**
 * Parses the ToC from the last bytes of a blob (readers fetch TOC_READ_SIZE, or the whole blob
 * rounded down to 128 when smaller, §7.6). Throws when the last 512 bytes are not the
 * `rafs.blob.toc` header or the ToC does not fit in `tail`.
 */
export function decodeBlobToc(tail: Uint8Array): BlobToc {
  if (tail.length < TAR_HEADER_SIZE) throw new FormatError('ERR_FORMAT_TRUNCATED', 'ToC', `tail of ${tail.length} bytes cannot hold a tar header`);
  const hdrOff = tail.length - TAR_HEADER_SIZE;
  const hdr = decodeTarHeader(tail, hdrOff, TOC_ENTRY_BLOB_TOC);
  if (hdr.size % TOC_ENTRY_SIZE !== 0) throw new FormatError('ERR_FORMAT_INVALID', 'ToC', `size ${hdr.size} is not a multiple of ${TOC_ENTRY_SIZE}`);
  if (hdr.size > hdrOff) throw new FormatError('ERR_FORMAT_TRUNCATED', 'ToC', `size ${hdr.size} exceeds the ${hdrOff} bytes read before its header`);
  const start = hdrOff - hdr.size;
  return {
    entries: decodeTocEntries(tail.subarray(start, hdrOff)),
    offsetInTail: start,
    tocSize: hdr.size + TAR_HEADER_SIZE,
    tocDigest: new Uint8Array(sha256(tail.subarray(start))),
  };
}

export function findTocEntry(toc: BlobToc | readonly TocEntry[], name: string): TocEntry | undefined {
  const entries: readonly TocEntry[] = Array.isArray(toc) ? toc : (toc as BlobToc).entries;
  return entries.find((e) => e.name === name);
}
