// Opens a bootstrap of either version: v5 has its magic at offset 0, v6 is an EROFS image with the
// magic at 1024 (spec §6 step 1).
import { EROFS_SUPER_MAGIC_V1, EROFS_SUPER_OFFSET } from '../format/erofs/constants.js';
import { RAFS_SUPER_MAGIC } from '../format/rafs-v5/superblock.js';
import { FormatError } from '../util/errors.js';
import type { RafsSuper } from './types.js';
import { openRafsV5 } from './v5.js';
import { openRafsV6 } from './v6.js';

export type { RafsSuper, RafsInode, DirEntry, RafsMeta } from './types.js';

export function detectRafsVersion(buf: Uint8Array): 5 | 6 | undefined {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length >= 8 && dv.getUint32(0, true) === RAFS_SUPER_MAGIC) return 5;
  if (buf.length >= EROFS_SUPER_OFFSET + 4 && dv.getUint32(EROFS_SUPER_OFFSET, true) === EROFS_SUPER_MAGIC_V1) return 6;
  return undefined;
}

/** Opens and validates the superblock of a v5 or v6 bootstrap (inodes are decoded lazily). */
export function openBootstrap(buf: Uint8Array, name = 'bootstrap'): RafsSuper {
  const v = detectRafsVersion(buf);
  try {
    if (v === 5) return openRafsV5(buf);
    if (v === 6) return openRafsV6(buf);
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(e.code, name, e.message, undefined, { cause: e });
    throw e;
  }
  throw new FormatError('ERR_FORMAT_BAD_MAGIC', name, 'not a RAFS bootstrap (no v5 magic at 0, no EROFS magic at 1024)');
}
