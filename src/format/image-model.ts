// The in-memory image model (shared by the builder, which produces it, and rafs, which reads
// bootstraps back into it): a file tree whose regular files already reference their
// chunks, plus the blob table. Sources (dir, tar, an existing bootstrap) produce it; the v5 and v6
// bootstrap writers consume it. Writers derive indexes, nids, nlink, directory sizes and digests.
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Compressor, Digester } from '../format/constants.js';

export interface TreeNode {
  /** Name bytes (no '/' or NUL); the root's name is "/". */
  name: Uint8Array;
  /** Full st_mode (type + permission bits). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** Device number (glibc st_rdev) for char/block devices, else 0. */
  rdev: number;
  /** Regular files: file size. Symlinks: target length. Others: 0 (writers compute dir sizes). */
  size: number;
  /** Symlink target. */
  symlink?: Uint8Array;
  /** Xattrs as (full name, value) pairs in a stable order. */
  xattrs: Array<[Uint8Array, Uint8Array]>;
  /** Directories: children sorted by name bytes (Buffer.compare). */
  children: TreeNode[];
  /** Regular files: chunks in file order. */
  chunks: ChunkInfo[];
  /**
   * Regular files only: names sharing a key are hardlinks of one inode. The first node in
   * writer traversal order is the "first name"; later ones share its inode.
   */
  hardlinkKey?: string;
}

/** Everything a bootstrap writer needs. */
export interface ImageModel {
  root: TreeNode;
  blobs: BlobInfo[];
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** Sets EXPLICIT_UID_GID (default on; off with --repeatable). */
  explicitUidGid: boolean;
  /** Paths ('/a/b') named by --prefetch-policy fs, in order. */
  prefetchPaths: string[];
  /** Chunks of parent layers / chunk dict that must appear in the v6 chunk table. */
  extraChunks?: ChunkInfo[];
}

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number): boolean => (mode & S_IFMT) === S_IFREG;
export const isSymlink = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK;
export const isDevice = (mode: number): boolean => (mode & S_IFMT) === S_IFCHR || (mode & S_IFMT) === S_IFBLK;

export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function sortChildren(n: TreeNode): void {
  n.children.sort((a, b) => compareNames(a.name, b.name));
}
