// RAFS v5 superblock: 8192 bytes at offset 0 (spec §4.2), and the file-level checks nydusd
// applies before trusting any table offset (§4.12). Upstream: RafsV5SuperBlock in
// rafs/src/metadata/layout/v5.rs.
import { Reader, Writer, align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { RAFS_SUPER_FLAGS_KNOWN, isValidChunkSize } from '../constants.js';

const S = 'RAFS v5 superblock';

export const RAFS_SUPER_MAGIC = 0x52414653;
export const RAFSV5_SUPER_VERSION = 0x500;
export const RAFSV5_SUPERBLOCK_SIZE = 8192;
/** Every table and inode record starts on this boundary (§4.1). */
export const RAFSV5_ALIGNMENT = 8;
/** Upper bound of a v5 bootstrap (§4.12). */
export const RAFSV5_MAX_METADATA_SIZE = 0x8000_0000;
export const RAFSV5_EXT_BLOB_ENTRY_SIZE = 64;

export interface RafsV5SuperBlock {
  magic: number;
  fsVersion: number;
  sbSize: number;
  /** The fs chunk size. */
  blockSize: number;
  /** RafsSuperFlags (§2.1). */
  flags: number;
  /** Unique inodes (hardlinks once). */
  inodesCount: number;
  inodeTableOffset: number;
  prefetchTableOffset: number;
  blobTableOffset: number;
  /** All inode entries, incl. every hardlink name. */
  inodeTableEntries: number;
  prefetchTableEntries: number;
  /** Bytes, multiple of 8. */
  blobTableSize: number;
  extendedBlobTableEntries: number;
  extendedBlobTableOffset: number;
}

/** Decodes the superblock; checks only magic and version (call validate for the rest). */
export function decodeRafsV5SuperBlock(buf: Uint8Array): RafsV5SuperBlock {
  const r = new Reader(buf, 0, RAFSV5_SUPERBLOCK_SIZE, S);
  const magic = r.u32(0);
  if (magic !== RAFS_SUPER_MAGIC) {
    throw new FormatError('ERR_FORMAT_BAD_MAGIC', S, `magic 0x${magic.toString(16)} is not RAFS_SUPER_MAGIC 0x${RAFS_SUPER_MAGIC.toString(16)}`, 0);
  }
  const fsVersion = r.u32(4);
  if (fsVersion !== RAFSV5_SUPER_VERSION) {
    throw new FormatError('ERR_FORMAT_UNSUPPORTED', S, `fs_version 0x${fsVersion.toString(16)} is not RAFSV5_SUPER_VERSION 0x500`, 4);
  }
  const flags = r.u64n(16);
  if ((flags & ~BigInt(RAFS_SUPER_FLAGS_KNOWN)) !== 0n) {
    throw new FormatError('ERR_FORMAT_INVALID', S, `flags 0x${flags.toString(16)} has unknown bits`, 16);
  }
  return {
    magic,
    fsVersion,
    sbSize: r.u32(8),
    blockSize: r.u32(12),
    flags: Number(flags),
    inodesCount: r.u64(24),
    inodeTableOffset: r.u64(32),
    prefetchTableOffset: r.u64(40),
    blobTableOffset: r.u64(48),
    inodeTableEntries: r.u32(56),
    prefetchTableEntries: r.u32(60),
    blobTableSize: r.u32(64),
    extendedBlobTableEntries: r.u32(68),
    extendedBlobTableOffset: r.u64(72),
  };
}

export function encodeRafsV5SuperBlock(sb: RafsV5SuperBlock): Uint8Array {
  const out = new Uint8Array(RAFSV5_SUPERBLOCK_SIZE);
  const w = new Writer(out);
  w.u32(0, sb.magic);
  w.u32(4, sb.fsVersion);
  w.u32(8, sb.sbSize);
  w.u32(12, sb.blockSize);
  w.u64(16, sb.flags);
  w.u64(24, sb.inodesCount);
  w.u64(32, sb.inodeTableOffset);
  w.u64(40, sb.prefetchTableOffset);
  w.u64(48, sb.blobTableOffset);
  w.u32(56, sb.inodeTableEntries);
  w.u32(60, sb.prefetchTableEntries);
  w.u32(64, sb.blobTableSize);
  w.u32(68, sb.extendedBlobTableEntries);
  w.u64(72, sb.extendedBlobTableOffset);
  return out;
}

/** Byte size of a u32 table with n entries, padded to 8 (inode and prefetch tables, §4.3/§4.4). */
export function rafsV5U32TableSize(n: number): number {
  return align(n * 4, RAFSV5_ALIGNMENT);
}

interface Region {
  name: string;
  offset: number;
  size: number;
}

/** The table regions the superblock describes (zero-sized ones included). */
export function rafsV5TableRegions(sb: RafsV5SuperBlock): Region[] {
  return [
    { name: 'inode table', offset: sb.inodeTableOffset, size: rafsV5U32TableSize(sb.inodeTableEntries) },
    { name: 'prefetch table', offset: sb.prefetchTableOffset, size: rafsV5U32TableSize(sb.prefetchTableEntries) },
    { name: 'blob table', offset: sb.blobTableOffset, size: sb.blobTableSize },
    { name: 'extended blob table', offset: sb.extendedBlobTableOffset, size: sb.extendedBlobTableEntries * RAFSV5_EXT_BLOB_ENTRY_SIZE },
  ];
}

/** nydusd's superblock checks (§4.12) against the bootstrap's total size. */
export function validateRafsV5SuperBlock(sb: RafsV5SuperBlock, fileSize: number): void {
  const bad = (field: string, msg: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', S, `${field} ${msg}`);
  };
  if (sb.sbSize !== RAFSV5_SUPERBLOCK_SIZE) bad('sb_size', `${sb.sbSize} is not ${RAFSV5_SUPERBLOCK_SIZE}`);
  if (fileSize <= RAFSV5_SUPERBLOCK_SIZE || fileSize % RAFSV5_ALIGNMENT !== 0 || fileSize > RAFSV5_MAX_METADATA_SIZE) {
    bad('file size', `${fileSize} must be > 8192, a multiple of 8 and <= 2 GiB`);
  }
  if (!isValidChunkSize(sb.blockSize)) bad('block_size', `0x${sb.blockSize.toString(16)} is not a power of two in [0x1000, 0x1000000]`);
  if (sb.inodeTableEntries === 0) bad('inode_table_entries', 'is 0 (no root inode)');
  if (sb.inodesCount > sb.inodeTableEntries) bad('inodes_count', `${sb.inodesCount} exceeds inode_table_entries ${sb.inodeTableEntries}`);
  if (sb.blobTableSize % RAFSV5_ALIGNMENT !== 0) bad('blob_table_size', `${sb.blobTableSize} is not a multiple of 8`);
  const regions = rafsV5TableRegions(sb).filter((r) => r.size > 0);
  for (const r of regions) {
    if (r.offset % RAFSV5_ALIGNMENT !== 0) bad(`${r.name} offset`, `${r.offset} is not 8-byte aligned`);
    if (r.offset < RAFSV5_SUPERBLOCK_SIZE || r.offset + r.size > fileSize) {
      bad(`${r.name} offset`, `[${r.offset}, ${r.offset + r.size}) is outside the bootstrap (${fileSize} bytes)`);
    }
  }
  const sorted = [...regions].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!;
    const c = sorted[i]!;
    if (p.offset + p.size > c.offset) bad(`${c.name} offset`, `${c.offset} overlaps the ${p.name}`);
  }
}
