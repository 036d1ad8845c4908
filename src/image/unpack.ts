// `nydus-image unpack`: a RAFS image back to an OCI layer tar (PAX xattrs, hardlinks as link entries).
import { closeSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { RafsSuper } from '../rafs/types.js';
import { LocalBlobs, type LocalBlobSource } from './local-blobs.js';
import { TarFileWriter, type TarType } from './tar-writer.js';
import { walkRafs } from './walk.js';
import { logger } from '../util/log.js';
import { FormatError } from '../util/errors.js';
import { entryNameProblem } from '../rafs/names.js';

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

/**
 * Member names come from the bootstrap, so a crafted one could aim a permissive extractor outside
 * its target. Every component must pass the shared entry-name rule and every parent must be a
 * directory this tar already holds (no names through a symlink or a file, no duplicates).
 */
function checkMemberPath(path: Uint8Array, dirs: Set<string>): void {
  const shown = Buffer.from(path).toString('latin1');
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      parts.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  for (const p of parts) {
    const problem = entryNameProblem(p);
    if (problem) throw new FormatError('ERR_FORMAT_INVALID', 'directory entry', `unsafe member name "${shown}": ${problem}`);
  }
  const parent = Buffer.from(path.subarray(0, Math.max(0, path.length - parts.at(-1)!.length - 1))).toString('latin1');
  if (!dirs.has(parent)) throw new FormatError('ERR_FORMAT_INVALID', 'directory entry', `unsafe member name "${shown}": its parent is not a directory of the image`);
}

/** Writes to a temp file next to `outputPath` and renames on success: a refused image leaves no partial tar. */
export function unpackToTar(sb: RafsSuper, src: LocalBlobSource, outputPath: string, verify = false): UnpackStats {
  // A device or pipe (e.g. /dev/stdout) is written in place; a regular path atomically.
  const special = (() => {
    try {
      return !statSync(outputPath).isFile();
    } catch {
      return false;
    }
  })();
  const target = special ? outputPath : join(dirname(outputPath), `.${basename(outputPath)}.${process.pid}.partial`);
  let done = false;
  try {
    const stats = writeTar(sb, src, target, verify);
    if (!special) renameSync(target, outputPath);
    done = true;
    return stats;
  } finally {
    if (!done && !special) {
      try {
        unlinkSync(target);
      } catch {
        /* never created */
      }
    }
  }
}

function writeTar(sb: RafsSuper, src: LocalBlobSource, outputPath: string, verify: boolean): UnpackStats {
  // The same structural checks as `check` (sorted, unique, safe names; no cycles) before any byte.
  sb.validate();
  const blobs = new LocalBlobs(sb.blobs, src);
  const fd = openSync(outputPath, 'w');
  const stats: UnpackStats = { entries: 0, files: 0, bytes: 0, skipped: 0 };
  try {
    const tar = new TarFileWriter(fd);
    const firstName = new Map<number, Uint8Array>();
    const dirs = new Set<string>(['']);
    walkRafs(sb, ({ path, inode }) => {
      if (path.length === 0) return; // the root is implicit in layer tars
      checkMemberPath(path, dirs);
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
        if (type === 'dir') dirs.add(Buffer.from(path).toString('latin1'));
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
