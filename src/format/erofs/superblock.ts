// EROFS superblock: 128 bytes at offset 1024 (spec §5.2). Upstream: RafsV6SuperBlock.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import {
  EROFS_BLOCK_BITS_12,
  EROFS_BLOCK_BITS_9,
  EROFS_DEVT_SLOT_SIZE,
  EROFS_FEATURE_COMPAT_RAFS_V6,
  EROFS_FEATURE_INCOMPAT_RAFS_V6,
  EROFS_SUPER_BLOCK_SIZE,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
} from './constants.js';

const S = 'EROFS superblock';

export interface ErofsSuperBlock {
  magic: number;
  checksum: number;
  featureCompat: number;
  blkszbits: number;
  extslots: number;
  rootNid: number;
  /** Number of tree entries incl. every hardlink name. */
  inos: number;
  buildTime: number;
  buildTimeNsec: number;
  /** Σ device-table blocks. */
  blocks: number;
  metaBlkaddr: number;
  xattrBlkaddr: number;
  uuid: Uint8Array;
  volumeName: Uint8Array;
  featureIncompat: number;
  /** Compression algorithms / lz4 max distance union; 0 for RAFS. */
  u: number;
  extraDevices: number;
  devtSlotoff: number;
}

/** Decodes the superblock at `EROFS_SUPER_OFFSET` of a whole bootstrap; checks only the magic. */
export function decodeErofsSuperBlock(buf: Uint8Array, offset = EROFS_SUPER_OFFSET): ErofsSuperBlock {
  const r = new Reader(buf, offset, EROFS_SUPER_BLOCK_SIZE, S);
  const magic = r.u32(0);
  if (magic !== EROFS_SUPER_MAGIC_V1) {
    throw new FormatError('ERR_FORMAT_BAD_MAGIC', S, `magic is 0x${magic.toString(16)}, expected 0x${EROFS_SUPER_MAGIC_V1.toString(16)}`, offset);
  }
  return {
    magic,
    checksum: r.u32(4),
    featureCompat: r.u32(8),
    blkszbits: r.u8(12),
    extslots: r.u8(13),
    rootNid: r.u16(14),
    inos: r.u64(16),
    buildTime: r.u64(24),
    buildTimeNsec: r.u32(32),
    blocks: r.u32(36),
    metaBlkaddr: r.u32(40),
    xattrBlkaddr: r.u32(44),
    uuid: r.bytes(48, 16).slice(),
    volumeName: r.bytes(64, 16).slice(),
    featureIncompat: r.u32(80),
    u: r.u16(84),
    extraDevices: r.u16(86),
    devtSlotoff: r.u16(88),
  };
}

/** Encodes 128 bytes (reserved tail zero). */
export function encodeErofsSuperBlock(sb: ErofsSuperBlock, out = new Uint8Array(EROFS_SUPER_BLOCK_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + EROFS_SUPER_BLOCK_SIZE);
  const w = new Writer(out, offset);
  w.u32(0, sb.magic);
  w.u32(4, sb.checksum);
  w.u32(8, sb.featureCompat);
  w.u8(12, sb.blkszbits);
  w.u8(13, sb.extslots);
  w.u16(14, sb.rootNid);
  w.u64(16, sb.inos);
  w.u64(24, sb.buildTime);
  w.u32(32, sb.buildTimeNsec);
  w.u32(36, sb.blocks);
  w.u32(40, sb.metaBlkaddr);
  w.u32(44, sb.xattrBlkaddr);
  w.bytes(48, sb.uuid.subarray(0, 16));
  w.bytes(64, sb.volumeName.subarray(0, 16));
  w.u32(80, sb.featureIncompat);
  w.u16(84, sb.u);
  w.u16(86, sb.extraDevices);
  w.u16(88, sb.devtSlotoff);
  return out;
}

/** The checks nydusd applies (RafsV6SuperBlock::validate, §5.2); `size` = bootstrap size. */
export function validateErofsSuperBlock(sb: ErofsSuperBlock, size: number): void {
  const bad = (field: string, msg: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', S, `${field} ${msg}`, EROFS_SUPER_OFFSET);
  };
  if (sb.checksum !== 0) bad('checksum', `is 0x${sb.checksum.toString(16)}, RAFS requires 0`);
  if ((sb.featureCompat & EROFS_FEATURE_COMPAT_RAFS_V6) === 0) bad('feature_compat', `0x${sb.featureCompat.toString(16)} lacks the RAFS_V6 bit`);
  if (sb.blkszbits !== EROFS_BLOCK_BITS_12 && sb.blkszbits !== EROFS_BLOCK_BITS_9) bad('blkszbits', `is ${sb.blkszbits}, expected 12 (or 9 for tarfs)`);
  if (sb.extslots !== 0) bad('extslots', `is ${sb.extslots}, expected 0`);
  if (sb.inos === 0) bad('inos', 'is 0');
  if (sb.featureIncompat !== EROFS_FEATURE_INCOMPAT_RAFS_V6) bad('feature_incompat', `is 0x${sb.featureIncompat.toString(16)}, expected 0x${EROFS_FEATURE_INCOMPAT_RAFS_V6.toString(16)}`);
  const bs = 1 << sb.blkszbits;
  if (size < 4096 || size % bs !== 0) bad('(bootstrap size)', `${size} is not a multiple of the block size ${bs} (minimum 4096)`);
  if (sb.metaBlkaddr * bs > size) bad('meta_blkaddr', `${sb.metaBlkaddr} points beyond the bootstrap`);
  if (sb.extraDevices === 0 && sb.blocks !== 0 && sb.blocks !== 4096) bad('blocks', `is ${sb.blocks} without extra devices`);
  const devtEnd = sb.devtSlotoff * EROFS_DEVT_SLOT_SIZE + sb.extraDevices * EROFS_DEVT_SLOT_SIZE;
  if (sb.extraDevices > 0 && (sb.devtSlotoff * EROFS_DEVT_SLOT_SIZE < EROFS_SUPER_OFFSET + EROFS_SUPER_BLOCK_SIZE || devtEnd > size)) {
    bad('devt_slotoff', `${sb.devtSlotoff} with ${sb.extraDevices} devices lies outside the bootstrap`);
  }
}
