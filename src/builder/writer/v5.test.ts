// encodeBootstrapV5: byte identity with upstream fixtures, §4.10 rules, and model round trips.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FIXTURE_V5_BLAKE3, FIXTURE_V5_SHA256 } from '../../../test/helpers/paths.js';
import { emptyBlobInfo } from '../../format/blob-info.js';
import type { ChunkInfo } from '../../format/chunk-info.js';
import { BlobChunkFlags, BlobFeatures, RafsSuperFlags } from '../../format/constants.js';
import { digest } from '../../format/digest.js';
import { openRafsV5 } from '../../rafs/v5.js';
import { treeFromRafs } from '../../rafs/tree-from-rafs.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, type ImageModel, type TreeNode } from '../../format/image-model.js';
import { encodeBootstrapV5 } from './v5.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const CHUNK = 0x1000;

describe('encodeBootstrapV5 re-encodes upstream fixtures', () => {
  for (const f of [FIXTURE_V5_SHA256, FIXTURE_V5_BLAKE3]) {
    it(`reproduces ${f.split('/').pop()} byte for byte with recordOrder 'index'`, () => {
      const buf = new Uint8Array(readFileSync(f));
      const out = encodeBootstrapV5(treeFromRafs(openRafsV5(buf)), { recordOrder: 'index' });
      // Fully canonical: no xattrs (order would be free), dir sizes/nlink follow the current
      // rules, uid/gid 0. Only inodes_count follows the <= 2.2 rule tied to 'index' order.
      assert.equal(out.length, buf.length);
      assert.ok(Buffer.from(out).equals(Buffer.from(buf)));
    });
    it(`writes ${f.split('/').pop()} in DFS pre-order by default, same content`, () => {
      const buf = new Uint8Array(readFileSync(f));
      const model = treeFromRafs(openRafsV5(buf));
      const out = encodeBootstrapV5(model);
      const sb = openRafsV5(out);
      sb.validate();
      sb.verifyDigests();
      assert.equal(sb.superBlock.inodesCount, 52);
      // Records: root first, then index 2 (hardlink-test), then its children 5, 6, then index 3.
      const offs = [1, 2, 5, 6, 3].map((i) => sb.recordOffset(i));
      assert.deepEqual([...offs].sort((a, b) => a - b), offs);
      assert.deepEqual(treeFromRafs(sb), model);
    });
  }
});

function chunkOf(data: Uint8Array, index: number, fileOffset: number): ChunkInfo {
  return {
    digest: digest(data, 'blake3'),
    blobIndex: index % 2,
    flags: index % 3 === 0 ? BlobChunkFlags.COMPRESSED | BlobChunkFlags.HAS_CRC32 : 0,
    compressedSize: Math.max(1, data.length - (index % 3 === 0 ? 10 : 0)),
    uncompressedSize: data.length,
    compressedOffset: index * 5000,
    uncompressedOffset: index * CHUNK,
    fileOffset,
    index,
    crc32: index * 7919,
  };
}

let chunkNo = 0;
function node(name: Uint8Array | string, mode: number, extra: Partial<TreeNode> = {}): TreeNode {
  return { name: typeof name === 'string' ? enc(name) : name, mode, uid: 1000, gid: 100, mtime: 1700000000, mtimeNsec: 123, rdev: 0, size: 0, xattrs: [], children: [], chunks: [], ...extra };
}
function file(name: string | Uint8Array, size: number, extra: Partial<TreeNode> = {}): TreeNode {
  const chunks: ChunkInfo[] = [];
  for (let off = 0; off < size; off += CHUNK) {
    const data = new Uint8Array(Math.min(CHUNK, size - off)).fill(chunkNo & 0xff);
    chunks.push(chunkOf(data, chunkNo++, off));
  }
  return node(name, S_IFREG | 0o644, { size, chunks, ...extra });
}
function dir(name: string | Uint8Array, children: TreeNode[], extra: Partial<TreeNode> = {}): TreeNode {
  children.sort((a, b) => Buffer.compare(a.name, b.name));
  return node(name, S_IFDIR | 0o755, { children, ...extra });
}
function link(name: string, target: string): TreeNode {
  return node(name, S_IFLNK | 0o777, { symlink: enc(target), size: enc(target).length });
}

function synthetic(explicitUidGid: boolean): ImageModel {
  const big: TreeNode[] = [];
  for (let i = 0; i < 300; i++) big.push(i % 3 === 0 ? file(`entry-${String(i).padStart(4, '0')}`, i) : dir(`d${i}`, []));
  const odd = [new Uint8Array([0xff, 0xfe]), enc('with space'), enc('new\nline'), enc('ü-utf8'), new Uint8Array(255).fill(0x61)];
  // Hardlink names share one inode, so they carry the same chunks.
  const a = file('a', 3 * CHUNK + 1, { hardlinkKey: 'k1' });
  const root = dir('/', [
    dir('hl', [a, { ...a, name: enc('b') }]),
    dir('other', [{ ...a, name: enc('c') }, file('solo', 10, { hardlinkKey: 'k2' })]),
    dir('dev', [
      node('null', S_IFCHR | 0o666, { rdev: 0x103 }),
      node('sda', S_IFBLK | 0o660, { rdev: 0x800 }),
      node('fifo', S_IFIFO | 0o600),
      node('sock', S_IFSOCK | 0o755),
    ]),
    dir('links', [link('abs', '/hl/a'), link('rel', '../other'), link('long', 'x'.repeat(1000))]),
    dir('xattrs', [
      file('f', 0, { xattrs: [[enc('user.b'), enc('2')], [enc('user.a'), new Uint8Array(0)], [enc('security.capability'), new Uint8Array(20).fill(7)]] }),
      dir('d', [], { xattrs: [[enc('trusted.x'), enc('v')]] }),
    ]),
    dir('empty', []),
    file('empty-file', 0),
    file('multi', 5 * CHUNK),
    dir('big', big),
    dir('odd', odd.map((n) => file(n, 1))),
  ], { mtime: 0, mtimeNsec: 0 });
  const blobs = [0, 1].map((i) => {
    const b = emptyBlobInfo(`${i}`.repeat(64), i, CHUNK, 'lz4_block', 'blake3');
    Object.assign(b, { chunkCount: 100 + i, features: BlobFeatures.CAP_TAR_TOC, compressedSize: 1234 + i, uncompressedSize: 5678 + i, readaheadSize: i * 10 });
    return b;
  });
  return { root, blobs, chunkSize: CHUNK, compressor: 'lz4_block', digester: 'blake3', explicitUidGid, prefetchPaths: ['/hl/b', '/missing', '/big'] };
}

/** What the writer is allowed to change: dir sizes (derived), uid/gid without EXPLICIT, hardlink key names. */
function normalize(m: ImageModel): unknown {
  const keys = new Map<string, number>();
  const walk = (n: TreeNode): unknown => ({
    ...n,
    name: Buffer.from(n.name).toString('hex'),
    size: (n.mode & 0o170000) === S_IFDIR ? 0 : n.size,
    uid: m.explicitUidGid ? n.uid : 0,
    gid: m.explicitUidGid ? n.gid : 0,
    hardlinkKey: n.hardlinkKey === undefined ? undefined : keys.get(n.hardlinkKey) ?? (keys.set(n.hardlinkKey, keys.size), keys.size - 1),
    children: n.children.map(walk),
    xattrs: n.xattrs.map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]),
    symlink: n.symlink ? Buffer.from(n.symlink).toString('hex') : undefined,
    chunks: n.chunks.map((c) => ({ ...c, digest: Buffer.from(c.digest).toString('hex') })),
  });
  return { ...m, root: walk(m.root), blobs: m.blobs.map((b) => ({ ...b, blobTocDigest: [...b.blobTocDigest], blobMetaDigest: [...b.blobMetaDigest] })) };
}

describe('encodeBootstrapV5 on synthetic trees', () => {
  for (const explicit of [true, false]) {
    it(`round-trips model → bytes → reader → model (explicitUidGid ${explicit})`, () => {
      const model = synthetic(explicit);
      const bytes = encodeBootstrapV5(model);
      const sb = openRafsV5(bytes);
      sb.validate();
      sb.verifyDigests();
      const back = treeFromRafs(sb);
      // The solo file with a hardlink key but one name is not a hardlink after the trip.
      const want = normalize(model) as { prefetchPaths: string[]; root: { children: Array<{ children: Array<{ hardlinkKey?: unknown }> }> } };
      assert.ok(want.root.children[8]!.children[1]!.hardlinkKey !== undefined);
      want.root.children[8]!.children[1]!.hardlinkKey = undefined;
      // Prefetch paths come back as the first name of each prefetched inode; missing ones vanish.
      want.prefetchPaths = ['/hl/a', '/big'];
      assert.deepEqual(normalize(back), want);
      // Re-encoding the decoded model is idempotent.
      assert.ok(Buffer.from(encodeBootstrapV5(back)).equals(Buffer.from(bytes)));
    });
  }

  it('follows the §4.10 numbering and synthesized attributes', () => {
    const model = synthetic(true);
    const sb = openRafsV5(encodeBootstrapV5(model));
    const s = sb.superBlock;
    assert.equal(s.flags, RafsSuperFlags.COMPRESSION_LZ4 | RafsSuperFlags.HASH_BLAKE3 | RafsSuperFlags.EXPLICIT_UID_GID | RafsSuperFlags.HAS_XATTR);
    assert.equal(s.extendedBlobTableEntries, 2);
    // Root children: big dev empty empty-file hl links multi odd other xattrs → indexes 2..11.
    const root = sb.getInode(1);
    assert.equal(root.childIndex, 2);
    assert.equal(root.childCount, 10);
    assert.equal(root.nlink, 2 + 8);
    assert.equal(root.mtime, 0);
    const big = sb.lookup(1, enc('big'))!;
    assert.equal(big.index, 2);
    assert.equal(big.childIndex, 12, 'first directory processed first');
    assert.equal(big.nlink, 2 + 200);
    let d = 0;
    sb.readdir(big.ino, 0, (e) => ((d += e.name.length + 8), true));
    assert.equal(big.size, Math.ceil(d / 4096) * 4096);
    assert.ok(big.size > 4096);
    const dev = sb.lookup(1, enc('dev'))!;
    assert.equal(dev.childIndex, 12 + 300, 'big children then dev children');
    assert.equal(sb.lookup(dev.ino, enc('null'))!.rdev, 0x103);
    const empty = sb.lookup(1, enc('empty'))!;
    assert.equal(empty.size, 4096);
    assert.equal(empty.childCount, 0);
    const hl = sb.lookup(1, enc('hl'))!;
    const a = sb.lookup(hl.ino, enc('a'))!;
    const b = sb.lookup(hl.ino, enc('b'))!;
    const c = sb.lookup(sb.lookup(1, enc('other'))!.ino, enc('c'))!;
    assert.equal(a.ino, a.index);
    assert.equal(b.ino, a.ino);
    assert.equal(c.ino, a.ino);
    assert.notEqual(c.index, a.index);
    assert.equal(a.nlink, 3);
    assert.equal(s.inodesCount, s.inodeTableEntries - 2);
    assert.deepEqual(sb.prefetchInodes(), [a.ino, big.ino]);
    const xf = sb.lookup(sb.lookup(1, enc('xattrs'))!.ino, enc('f'))!;
    assert.deepEqual(sb.listXattrs(xf.ino).map((k) => Buffer.from(k).toString()), ['user.b', 'user.a', 'security.capability']);
    assert.deepEqual(sb.getXattr(xf.ino, enc('security.capability')), new Uint8Array(20).fill(7));
    // blocks = ceil((size + align(pairs, 8)) / 512): pairs 12+11+44 = 67 → 72; dir 4096 + 16.
    assert.equal(xf.blocks, 1);
    assert.equal(sb.lookup(sb.lookup(1, enc('xattrs'))!.ino, enc('d'))!.blocks, 9);
    const long = sb.lookup(sb.lookup(1, enc('links'))!.ino, enc('long'))!;
    assert.equal(long.size, 1000);
    assert.equal(long.blocks, 2);
    assert.equal(Buffer.from(sb.readlink(long.ino)).toString(), 'x'.repeat(1000));
    const multi = sb.lookup(1, enc('multi'))!;
    assert.equal(sb.fileChunks(multi.ino).length, 5);
    assert.equal(sb.blobs[1]!.readaheadSize, 10);
  });

  it('omits the extended blob table only for legacy blobs and drops the internal bit', () => {
    const model = synthetic(false);
    for (const b of model.blobs) b.features = BlobFeatures._V5_NO_EXT_BLOB_TABLE;
    const sb = openRafsV5(encodeBootstrapV5(model));
    assert.equal(sb.superBlock.extendedBlobTableEntries, 0);
    assert.equal(sb.blobs[0]!.chunkCount, 0);
    assert.equal(sb.blobs[0]!.features, BlobFeatures._V5_NO_EXT_BLOB_TABLE);
    model.blobs[0]!.features = BlobFeatures._V5_NO_EXT_BLOB_TABLE | BlobFeatures.CAP_TAR_TOC;
    model.blobs[1]!.features = 0;
    const sb2 = openRafsV5(encodeBootstrapV5(model));
    assert.equal(sb2.superBlock.extendedBlobTableEntries, 2);
    assert.equal(sb2.blobs[0]!.features, BlobFeatures.CAP_TAR_TOC);
  });

  it('rejects models it cannot encode', () => {
    const m = synthetic(true);
    m.root.children[0]!.children.reverse();
    assert.throws(() => encodeBootstrapV5(m), /not strictly sorted/);
    const m2 = synthetic(true);
    m2.root.children.find((n) => Buffer.from(n.name).toString() === 'multi')!.chunks.pop();
    assert.throws(() => encodeBootstrapV5(m2), /has 4 chunks, expected 5/);
    const m3 = synthetic(true);
    m3.root.children.push(file(new Uint8Array(257).fill(0x7a), 0));
    assert.throws(() => encodeBootstrapV5(m3), /257 bytes/);
  });
});
