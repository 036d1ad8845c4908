// `nydus-image inspect -R "<cmd>"`: one metadata query, answered as JSON (upstream request mode).
import type { RafsSuper } from '../rafs/types.js';
import { hex } from '../util/bytes.js';
import { UsageError, FsError } from '../util/errors.js';
import { constants } from 'node:os';
import { walkRafs } from './walk.js';
import { isDir, isReg } from '../format/image-model.js';
import { RafsV5Super } from '../rafs/v5.js';

function resolvePath(sb: RafsSuper, p: string): number {
  return resolveFrom(sb, sb.rootIno, p);
}

function resolveFrom(sb: RafsSuper, start: number, p: string): number {
  let ino = start;
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

/** Upstream's superblock inode count: v5 stores it (s_inodes_count, hardlinks counted once), v6 too. */
function superblockInodes(sb: RafsSuper): number {
  return sb instanceof RafsV5Super ? sb.superBlock.inodesCount : sb.meta.inodeCount;
}

export interface ChunkOwner {
  file: string;
  parent_path: string;
  compressed_offset: number;
  compressed_size: number;
  decompressed_offset: number;
  decompressed_size: number;
  chunk_id: string;
  blob_id: string;
}

/**
 * The inspector's state: upstream's prompt keeps a current directory that `cd` changes and `ls` /
 * `stat` resolve against. One request mode query (-R) runs against a fresh inspector at "/".
 */
export class Inspector {
  readonly sb: RafsSuper;
  #cwd: number;
  readonly #parents: number[] = [];

  constructor(sb: RafsSuper) {
    this.sb = sb;
    this.#cwd = sb.rootIno;
  }

  /** Current directory as a path (for the prompt). */
  get cwd(): string {
    return this.#cwd === this.sb.rootIno ? '/' : (pathOf(this.sb, this.#cwd) ?? '/');
  }

  #resolve(p: string): number {
    return p.startsWith('/') ? resolvePath(this.sb, p) : resolveFrom(this.sb, this.#cwd, p);
  }

  /** `cd DIR`: "..", ".", a name or a path; undefined result (upstream prints nothing on success). */
  cd(dir: string): undefined {
    if (!dir) throw new UsageError('inspect: cd needs a directory');
    if (dir === '.') return undefined;
    if (dir === '..') {
      const p = this.#parents.pop();
      if (p !== undefined) this.#cwd = p;
      return undefined;
    }
    const ino = this.#resolve(dir);
    if (!isDir(this.sb.getInode(ino).mode)) throw new FsError(constants.errno.ENOTDIR, `${dir} is not a directory`);
    this.#parents.push(this.#cwd);
    this.#cwd = ino;
    return undefined;
  }

  /** `chunk OFFSET`: every file chunk stored at that compressed offset (of any blob), with its file. */
  chunk(arg: string): ChunkOwner[] {
    if (!/^\d+$/.test(arg)) throw new UsageError(`inspect: chunk needs a compressed offset (a decimal number), got '${arg}'`);
    const offset = Number(arg);
    const out: ChunkOwner[] = [];
    walkRafs(this.sb, ({ path, inode }) => {
      if (!isReg(inode.mode)) return;
      for (const c of this.sb.fileChunks(inode.ino)) {
        if (c.compressedOffset !== offset) continue;
        const full = Buffer.from(path).toString();
        const slash = full.lastIndexOf('/');
        out.push({
          file: full.slice(slash + 1),
          parent_path: '/' + (slash < 0 ? '' : full.slice(0, slash)),
          compressed_offset: c.compressedOffset,
          compressed_size: c.compressedSize,
          decompressed_offset: c.uncompressedOffset,
          decompressed_size: c.uncompressedSize,
          chunk_id: hex(c.digest),
          blob_id: this.sb.blobs[c.blobIndex]?.blobId ?? `(blob index ${c.blobIndex})`,
        });
      }
    });
    return out;
  }

  /** One request; undefined when it answers nothing (cd), as upstream's request mode. */
  request(request: string): unknown {
    const [cmd, ...rest] = request.trim().split(/\s+/);
    const arg = rest.join(' ');
    const sb = this.sb;
    switch (cmd) {
      case 'stats':
        // Upstream's request mode answers {"inodes_count"}; the rest is ours.
        return {
          inodes_count: superblockInodes(sb),
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
      case 'cd':
        return this.cd(arg);
      case 'chunk':
        return this.chunk(arg);
      case 'ls': {
        const out: Array<{ name: string; ino: number; type: number }> = [];
        sb.readdir(arg ? this.#resolve(arg) : this.#cwd, 0, (e) => {
          out.push({ name: Buffer.from(e.name).toString(), ino: e.ino, type: e.type });
          return true;
        });
        return out;
      }
      case 'stat': {
        if (!arg) throw new UsageError('inspect: stat needs a path');
        const ino = this.#resolve(arg);
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
        if (!arg || !Number.isInteger(ino)) throw new UsageError(`inspect: icheck needs an inode number, got '${arg}'`);
        return { path: pathOf(sb, ino) ?? null, ...sb.getInode(ino) };
      }
      default:
        throw new UsageError(`inspect: unknown request '${cmd ?? ''}' (stats, blobs, prefetch, ls [DIR], cd DIR, stat PATH, chunk OFFSET, icheck INODE)`);
    }
  }
}

/** One request against the root (request mode, -R). */
export function inspectRequest(sb: RafsSuper, request: string): unknown {
  return new Inspector(sb).request(request);
}
