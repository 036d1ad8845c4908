// `nydus-image inspect -R "<cmd>"`: one metadata query, answered as JSON (upstream request mode).
import type { RafsSuper } from '../rafs/types.js';
import { hex } from '../util/bytes.js';
import { UsageError, FsError } from '../util/errors.js';
import { constants } from 'node:os';
import { walkRafs } from './walk.js';
import { isReg } from '../builder/tree.js';

function resolvePath(sb: RafsSuper, p: string): number {
  let ino = sb.rootIno;
  for (const part of p.split('/').filter((x) => x && x !== '.')) {
    if (part === '..') {
      ino = sb.parentOf(ino);
      continue;
    }
    const child = sb.lookup(ino, Buffer.from(part));
    if (!child) throw new FsError(constants.errno.ENOENT, `no such file or directory: ${p}`);
    ino = child.ino;
  }
  return ino;
}

function pathOf(sb: RafsSuper, target: number): string | undefined {
  let found: string | undefined;
  walkRafs(sb, ({ path, inode }) => {
    if (found === undefined && inode.ino === target) found = '/' + Buffer.from(path).toString();
  });
  return found;
}

export function inspectRequest(sb: RafsSuper, request: string): unknown {
  const [cmd, ...rest] = request.trim().split(/\s+/);
  const arg = rest.join(' ');
  switch (cmd) {
    case 'stats':
      return {
        inodes_count: sb.meta.inodeCount,
        version: sb.meta.version,
        chunk_size: sb.meta.chunkSize,
        compressor: sb.meta.compressor,
        digester: sb.meta.digester,
        flags: sb.meta.flags,
        blobs: sb.blobs.length,
      };
    case 'blobs':
      return sb.blobs.map((b) => ({
        blob_id: b.blobId,
        readahead_offset: b.readaheadOffset,
        readahead_size: b.readaheadSize,
        decompressed_size: b.uncompressedSize,
        compressed_size: b.compressedSize,
        chunk_count: b.chunkCount,
        features: b.features,
      }));
    case 'prefetch':
      return sb.prefetchInodes().map((ino) => ({ inode: ino, path: pathOf(sb, ino) ?? null }));
    case 'ls': {
      const out: Array<{ name: string; ino: number; type: number }> = [];
      sb.readdir(resolvePath(sb, arg || '/'), 0, (e) => {
        out.push({ name: Buffer.from(e.name).toString(), ino: e.ino, type: e.type });
        return true;
      });
      return out;
    }
    case 'stat': {
      if (!arg) throw new UsageError('inspect: stat needs a path');
      const ino = resolvePath(sb, arg);
      const inode = sb.getInode(ino);
      const reg = isReg(inode.mode);
      return {
        ...inode,
        chunks: reg
          ? sb.fileChunks(ino).map((c) => ({
              blob_index: c.blobIndex, index: c.index, file_offset: c.fileOffset,
              compressed_offset: c.compressedOffset, compressed_size: c.compressedSize,
              uncompressed_offset: c.uncompressedOffset, uncompressed_size: c.uncompressedSize,
              flags: c.flags, digest: hex(c.digest),
            }))
          : [],
      };
    }
    case 'icheck': {
      const ino = Number(arg);
      if (!Number.isInteger(ino)) throw new UsageError(`inspect: icheck needs an inode number, got '${arg}'`);
      return { path: pathOf(sb, ino) ?? null, ...sb.getInode(ino) };
    }
    default:
      throw new UsageError(`inspect: unknown request '${cmd ?? ''}' (stats, blobs, prefetch, ls [DIR], stat PATH, icheck INODE)`);
  }
}
