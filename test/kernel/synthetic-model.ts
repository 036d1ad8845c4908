// A hand-built ImageModel exercising every v6 writer path (spec §5.7–5.14), plus the matching
// uncompressed device file (`.blob.data` layout: each chunk at its 4 KiB-aligned
// uncompressedOffset, §10 item 3). Shared by the writer, kernel-mount and fuzz tests.
import { emptyBlobInfo, type BlobInfo } from '../../src/format/blob-info.js';
import type { ChunkInfo } from '../../src/format/chunk-info.js';
import { BlobChunkFlags, BlobFeatures, type Digester } from '../../src/format/constants.js';
import { crc32c, digest, sha256 } from '../../src/format/digest.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, type ImageModel, type TreeNode } from '../../src/format/image-model.js';
import { makedev } from '../../src/format/erofs/inode.js';

const CHUNK = 4096;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export interface SyntheticImage {
  model: ImageModel;
  /** Device file bytes for blob 0 (whole blocks). */
  data: Uint8Array;
  /** File contents by path: latin1 string of the path bytes ('/a/b'); see pathBytes(). */
  contents: Map<string, Uint8Array>;
}

/** Absolute path bytes under `root` for a `contents` key. */
export function pathBytes(root: string, key: string): Buffer {
  return Buffer.concat([Buffer.from(root), Buffer.from(key, 'latin1')]);
}

/** Deterministic pseudo-random bytes. */
export function prng(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Chunks of one blob: dedup by digest, packed compressed offsets, 4 KiB-aligned uncompressed ones. */
export class ChunkStore {
  readonly chunks: ChunkInfo[] = [];
  readonly byDigest = new Map<string, ChunkInfo>();
  readonly pieces: Uint8Array[] = [];
  uoff = 0;
  coff = 0;
  constructor(
    readonly digester: Digester,
    readonly blobIndex = 0,
    /** Chunk index of the first chunk (to exercise 24-bit indexes). */
    readonly firstIndex = 0,
  ) {}

  /** Splits `content` into chunks, deduplicating by digest (§3.4). */
  add(content: Uint8Array): ChunkInfo[] {
    const out: ChunkInfo[] = [];
    for (let off = 0; off < content.length; off += CHUNK) {
      const piece = content.subarray(off, Math.min(content.length, off + CHUNK));
      const d = digest(piece, this.digester);
      const key = Buffer.from(d).toString('hex');
      let c = this.byDigest.get(key);
      if (!c) {
        c = {
          digest: Uint8Array.from(d),
          blobIndex: this.blobIndex,
          flags: BlobChunkFlags.HAS_CRC32,
          compressedSize: piece.length,
          uncompressedSize: piece.length,
          compressedOffset: this.coff,
          uncompressedOffset: this.uoff,
          fileOffset: off,
          index: this.firstIndex + this.chunks.length,
          crc32: crc32c(piece),
        };
        this.byDigest.set(key, c);
        this.chunks.push(c);
        this.pieces.push(piece);
        this.coff += piece.length;
        this.uoff = Math.ceil((this.uoff + piece.length) / CHUNK) * CHUNK;
      }
      out.push({ ...c, fileOffset: off });
    }
    return out;
  }

  /** The device file: every chunk at its uncompressed offset, whole blocks. */
  deviceData(): Uint8Array {
    const data = new Uint8Array(Math.ceil(this.uoff / CHUNK) * CHUNK);
    this.chunks.forEach((c, i) => data.set(this.pieces[i]!, c.uncompressedOffset));
    return data;
  }

  blobInfo(blobId: string): BlobInfo {
    const n = this.firstIndex + this.chunks.length;
    return {
      ...emptyBlobInfo(blobId, this.blobIndex, CHUNK, 'none', this.digester),
      chunkCount: n,
      features: BlobFeatures.ALIGNED | BlobFeatures.CAP_TAR_TOC,
      compressedSize: this.coff,
      uncompressedSize: this.uoff,
      metaCiUncompressedSize: 16 * n,
      metaCiCompressedSize: 16 * n,
      metaCiOffset: this.coff,
    };
  }
}

function node(name: string | Uint8Array, mode: number, extra: Partial<TreeNode> = {}): TreeNode {
  return {
    name: typeof name === 'string' ? enc(name) : name,
    mode,
    uid: 0,
    gid: 0,
    mtime: 1_700_000_000,
    mtimeNsec: 0,
    rdev: 0,
    size: 0,
    xattrs: [],
    children: [],
    chunks: [],
    ...extra,
  };
}

export { node as treeNode };

export function buildSyntheticImage(digester: Digester = 'sha256'): SyntheticImage {
  const store = new ChunkStore(digester);
  const contents = new Map<string, Uint8Array>();
  const file = (path: string, name: string | Uint8Array, content: Uint8Array, extra: Partial<TreeNode> = {}): TreeNode => {
    const nb = typeof name === 'string' ? enc(name) : name;
    contents.set(path.slice(0, path.lastIndexOf('/') + 1) + Buffer.from(nb).toString('latin1'), content);
    return node(name, S_IFREG | 0o644, { size: content.length, chunks: store.add(content), uid: 1000, gid: 100, mtime: 1_600_000_000 + content.length, mtimeNsec: 123_456_789, ...extra });
  };
  const dir = (name: string | Uint8Array, children: TreeNode[], extra: Partial<TreeNode> = {}): TreeNode =>
    node(name, S_IFDIR | 0o755, { children: children.sort((a, b) => Buffer.compare(a.name, b.name)), ...extra });
  const symlink = (name: string, target: string): TreeNode => node(name, S_IFLNK | 0o777, { symlink: enc(target), size: enc(target).length });

  const multi = prng(1, 3 * CHUNK + 123);
  const hl = prng(2, 5000);
  // Reuses multi's 2nd chunk then a fresh one: chunks not back to back (normal chunkbits).
  const mixed = new Uint8Array(2 * CHUNK);
  mixed.set(multi.subarray(CHUNK, 2 * CHUNK));
  mixed.set(prng(3, CHUNK), CHUNK);

  const big: TreeNode[] = [];
  for (let i = 0; i < 300; i++) {
    const name = `entry-with-a-longish-name-${String(i).padStart(3, '0')}`;
    big.push(i % 3 === 0 ? file(`/big/${name}`, name, prng(100 + i, 10 + i)) : i % 3 === 1 ? node(name, S_IFIFO | 0o600) : file(`/big/${name}`, name, new Uint8Array(0)));
  }
  const longTarget = 'x'.repeat(4090);
  const root = dir(
    '/',
    [
      file('/empty', 'empty', new Uint8Array(0)),
      file('/one', 'one', enc('hello, erofs\n'), {
        xattrs: [
          [enc('user.foo'), enc('bar')],
          [enc('trusted.t'), prng(9, 40)],
          [enc('security.s'), enc('sec')],
          [enc('user.empty'), new Uint8Array(0)],
        ],
      }),
      file('/multi', 'multi', multi, { mode: S_IFREG | 0o4755 }),
      file('/mixed', 'mixed', mixed),
      file('/hl1', 'hl1', hl, { hardlinkKey: 'h' }),
      file('/hl3', 'hl3', hl, { hardlinkKey: 'h' }),
      symlink('link-short', 'one'),
      symlink('link-long', longTarget),
      node('chr', S_IFCHR | 0o666, { rdev: makedev(1, 3) }),
      node('blk', S_IFBLK | 0o660, { rdev: makedev(7, 0) }),
      node('blk-big', S_IFBLK | 0o660, { rdev: makedev(259, 70000) }),
      node('fifo', S_IFIFO | 0o644, { uid: 5, gid: 6 }),
      node('sock', S_IFSOCK | 0o755),
      file('/-dash', '-dash', enc('sorts before dot')),
      file('/sp ace', 'sp ace', enc('space')),
      file('/ü', 'ü', enc('umlaut')),
      file('/odd\x01\xff', new Uint8Array([0x6f, 0x64, 0x64, 0x01, 0xff]), enc('odd bytes')),
      dir('big', big),
      dir('sub', [file('/sub/hl2', 'hl2', hl, { hardlinkKey: 'h' }), dir('deeper', [file('/sub/deeper/f', 'f', prng(4, 9000))]), dir('emptydir', [])], {
        xattrs: [[enc('user.dir'), enc('1')]],
        uid: 1,
        gid: 2,
      }),
    ],
    { mtime: 0 },
  );

  const blob = store.blobInfo(Buffer.from(sha256(enc('synthetic blob'))).toString('hex'));
  const data = store.deviceData();
  const model: ImageModel = {
    root,
    blobs: [blob],
    chunkSize: CHUNK,
    compressor: 'none',
    digester,
    explicitUidGid: true,
    prefetchPaths: ['/multi', '/sub/deeper', '/does/not/exist'],
  };
  return { model, data, contents };
}
