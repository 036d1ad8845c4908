// `nydus-image check`: validate every structure of a bootstrap and, with blobs, every chunk digest.
import type { RafsSuper } from '../rafs/types.js';
import { LocalBlobs, type LocalBlobSource } from './local-blobs.js';
import { walkRafs } from './walk.js';
import { isReg } from '../format/image-model.js';
import { BlobFeatures } from '../format/constants.js';
import { FormatError } from '../util/errors.js';
import { chunkKey } from '../format/chunk-info.js';

const FEATURE_NAMES: Array<[number, string]> = [
  [BlobFeatures.ALIGNED, 'aligned'],
  [BlobFeatures.BATCH, 'batch'],
  [BlobFeatures.CAP_TAR_TOC, 'cap_toc'],
  [BlobFeatures.INLINED_CHUNK_DIGEST, 'chunk-digest'],
  [BlobFeatures.CHUNK_INFO_V2, 'chunk-v2'],
  [BlobFeatures.INLINED_FS_META, 'fs-meta'],
  [BlobFeatures.SEPARATE, 'separate'],
  [BlobFeatures.HAS_TAR_HEADER, 'tar-header'],
  [BlobFeatures.HAS_TOC, 'toc'],
  [BlobFeatures.ZRAN, 'zran'],
  [BlobFeatures.ENCRYPTED, 'encrypted'],
  [BlobFeatures.IS_CHUNKDICT_GENERATED, 'is-chunkdict-generated'],
  [BlobFeatures.TARFS, 'tarfs'],
  [BlobFeatures.EXTERNAL, 'external'],
];

/** Upstream's textual feature list, as `check` prints it. */
export function blobFeatureNames(features: number): string[] {
  return FEATURE_NAMES.filter(([bit]) => (features & bit) !== 0).map(([, n]) => n);
}

export interface CheckResult {
  inodes: number;
  files: number;
  chunksVerified: number;
  bytesVerified: number;
}

export function checkImage(sb: RafsSuper, src?: LocalBlobSource, verbose?: (line: string) => void): CheckResult {
  sb.validate();
  const res: CheckResult = { inodes: 0, files: 0, chunksVerified: 0, bytesVerified: 0 };
  const blobs = src ? new LocalBlobs(sb.blobs, src) : undefined;
  const verified = new Set<string>();
  try {
    walkRafs(sb, ({ path, inode }) => {
      res.inodes++;
      verbose?.(`inode ${inode.ino} mode ${inode.mode.toString(8)} size ${inode.size} /${Buffer.from(path).toString()}`);
      if (!isReg(inode.mode)) return;
      res.files++;
      const chunks = sb.fileChunks(inode.ino);
      let covered = 0;
      for (const c of chunks) covered += c.uncompressedSize;
      if (covered < inode.size) throw new FormatError('ERR_FORMAT_INVALID', 'inode', `/${Buffer.from(path).toString()}: chunks cover ${covered} of ${inode.size} bytes`);
      if (!blobs) return;
      for (const c of chunks) {
        const key = `${c.blobIndex}:${chunkKey(sb.blobs[c.blobIndex] ?? { features: 0 }, c)}`;
        if (verified.has(key)) continue;
        blobs.readChunk(c, true);
        verified.add(key);
        res.chunksVerified++;
        res.bytesVerified += c.uncompressedSize;
      }
    });
  } finally {
    blobs?.close();
  }
  return res;
}
