// The read model of a bootstrap: one interface, two implementations (v5, v6). Metadata only: data
// reads go through storage with the ChunkInfo values returned here. Implementations decode lazily
// from one Uint8Array (which may sit on a SharedArrayBuffer shared by FUSE worker threads), so an
// instance is cheap to create per thread and never copies the metadata per request.
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Compressor, Digester } from '../format/constants.js';

export interface RafsInode {
  /** Inode number reported to users (v5: i_ino; v6: nid). */
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes (regular), target length (symlink), dirent bytes (dir). */
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  nlink: number;
  rdev: number;
  mtime: number;
  mtimeNsec: number;
}

export interface DirEntry {
  name: Uint8Array;
  ino: number;
  /** DT_* type (1 fifo, 2 chr, 4 dir, 6 blk, 8 reg, 10 lnk, 12 sock). */
  type: number;
}

export interface RafsMeta {
  version: 5 | 6;
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** RafsSuperFlags. */
  flags: number;
  explicitUidGid: boolean;
  hasXattr: boolean;
  /** Number of inode entries (incl. every hardlink name). */
  inodeCount: number;
}

export interface RafsSuper {
  readonly meta: RafsMeta;
  readonly blobs: readonly BlobInfo[];
  readonly rootIno: number;
  /** Throws FsError(ENOENT) for an unknown inode, FormatError for a corrupt one. */
  getInode(ino: number): RafsInode;
  /** Child by name, or undefined. `.`/`..` are not looked up here. */
  lookup(parentIno: number, name: Uint8Array): RafsInode | undefined;
  /** Parent inode number (root: itself). */
  parentOf(ino: number): number;
  /**
   * Directory entries in name order, without `.` and `..`, starting at position `offset`
   * (0-based). Calls `cb` for each; stops when it returns false.
   */
  readdir(ino: number, offset: number, cb: (entry: DirEntry, nextOffset: number) => boolean): void;
  readlink(ino: number): Uint8Array;
  getXattr(ino: number, name: Uint8Array): Uint8Array | undefined;
  listXattrs(ino: number): Uint8Array[];
  /** Chunks of a regular file in file order (fully resolved: blob index, offsets, sizes, digest). */
  fileChunks(ino: number): ChunkInfo[];
  /** Inode numbers of the prefetch table. */
  prefetchInodes(): number[];
  /** Validates every structure reachable from the root; throws FormatError naming the first problem. */
  validate(): void;
}
