// `nydus-image unpack`: a RAFS image back to an OCI layer tar (PAX xattrs, hardlinks as link entries).
import { closeSync, openSync } from 'node:fs';
import type { RafsSuper } from '../rafs/types.js';
import { LocalBlobs, type LocalBlobSource } from './local-blobs.js';
import { TarFileWriter, type TarType } from './tar-writer.js';
import { walkRafs } from './walk.js';
import { logger } from '../util/log.js';
import { FormatError } from '../util/errors.js';

const log = logger('unpack');

function tarType(mode: number): TarType | undefined {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'char';
    case 0o060000: return 'block';
    case 0o010000: return 'fifo';
    default: return undefined; // sockets cannot be represented in tar
  }
}

/** Linux dev_t (glibc encoding) → major/minor. */
export function devMajor(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
export function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
}

export interface UnpackStats {
  entries: number;
  files: number;
  bytes: number;
  skipped: number;
}

export function unpackToTar(sb: RafsSuper, src: LocalBlobSource, outputPath: string, verify = false): UnpackStats {
  const blobs = new LocalBlobs(sb.blobs, src);
  const fd = openSync(outputPath, 'w');
  const stats: UnpackStats = { entries: 0, files: 0, bytes: 0, skipped: 0 };
  try {
    const tar = new TarFileWriter(fd);
    const firstName = new Map<number, Uint8Array>();
    walkRafs(sb, ({ path, inode }) => {
      if (path.length === 0) return; // the root is implicit in layer tars
      const type = tarType(inode.mode);
      if (!type) {
        log.warn(`skipping socket ${Buffer.from(path).toString()}`);
        stats.skipped++;
        return;
      }
      const xattrs = sb.listXattrs(inode.ino).map((n) => [n, sb.getXattr(inode.ino, n) ?? new Uint8Array(0)] as [Uint8Array, Uint8Array]);
      const base = { path, mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime, mtimeNsec: inode.mtimeNsec, xattrs };
      if (type === 'file' && inode.nlink > 1) {
        const first = firstName.get(inode.ino);
        if (first) {
          tar.entry({ ...base, type: 'link', size: 0, linkname: first, xattrs: [] });
          stats.entries++;
          return;
        }
        firstName.set(inode.ino, path);
      }
      if (type === 'symlink') {
        tar.entry({ ...base, type, size: 0, linkname: sb.readlink(inode.ino) });
      } else if (type === 'char' || type === 'block') {
        tar.entry({ ...base, type, size: 0, devMajor: devMajor(inode.rdev), devMinor: devMinor(inode.rdev) });
      } else if (type === 'file') {
        tar.entry({ ...base, type, size: inode.size });
        let written = 0;
        for (const c of sb.fileChunks(inode.ino)) {
          let data = blobs.readChunk(c, verify);
          if (written + data.length > inode.size) data = data.subarray(0, inode.size - written);
          tar.data(data);
          written += data.length;
        }
        if (written !== inode.size) {
          // A file whose chunks do not cover its size is corrupt metadata; fail rather than write garbage.
          throw new FormatError('ERR_FORMAT_INVALID', 'inode', `file ${Buffer.from(path).toString()} has ${written} bytes of chunks but size ${inode.size}`);
        }
        tar.endEntry(inode.size);
        stats.files++;
        stats.bytes += inode.size;
      } else {
        tar.entry({ ...base, type, size: 0 });
      }
      stats.entries++;
    });
    tar.finish();
  } finally {
    closeSync(fd);
    blobs.close();
  }
  return stats;
}
