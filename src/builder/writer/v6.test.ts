// RAFS v6 writer: round trip through our reader, fsck.erofs, and a rebuild of the upstream 2.2
// fixture from its own decoded tree (must be byte-identical except the documented 2.2 quirks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { encodeBootstrapV6, V6Layout, type V6TailPlacement } from './v6.js';
import { openRafsV6, type RafsV6Super } from '../../rafs/v6.js';
import { buildSyntheticImage, pathBytes } from '../../../test/kernel/synthetic-model.js';
import { FIXTURE_V6_22_BOOT } from '../../../test/helpers/paths.js';
import { isDir, isReg, isSymlink, isDevice, type ImageModel, type TreeNode } from '../../format/image-model.js';
import { decodeErofsInode, decodeErofsSuperBlock } from '../../format/erofs/index.js';
import { decodeRafsV6SuperBlockExt } from '../../format/rafs-v6/index.js';
import { RafsSuperFlags } from '../../format/constants.js';
import type { ChunkInfo } from '../../format/chunk-info.js';

const norm = (c: ChunkInfo): ChunkInfo => ({ ...c, digest: Uint8Array.from(c.digest) });
const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Asserts the reader shows exactly `model` (names, attributes, links, xattrs, chunks). */
export function assertReaderMatchesModel(rs: RafsV6Super, model: ImageModel): void {
  const linkNames = new Map<string, number>();
  const count = (n: TreeNode): void => {
    if (n.hardlinkKey !== undefined) linkNames.set(n.hardlinkKey, (linkNames.get(n.hardlinkKey) ?? 0) + 1);
    n.children.forEach(count);
  };
  count(model.root);
  const linkIno = new Map<string, number>();
  const walk = (n: TreeNode, ino: number, parent: number, path: string): void => {
    const a = rs.getInode(ino);
    assert.equal(a.mode, n.mode, `${path} mode`);
    assert.equal(a.uid, n.uid, `${path} uid`);
    assert.equal(a.gid, n.gid, `${path} gid`);
    assert.equal(a.mtime, n.mtime, `${path} mtime`);
    assert.equal(a.mtimeNsec, n.mtimeNsec, `${path} mtime_nsec`);
    assert.equal(a.rdev, isDevice(n.mode) ? n.rdev : 0, `${path} rdev`);
    assert.deepEqual(rs.listXattrs(ino).map(str), n.xattrs.map(([k]) => str(k)), `${path} xattr names`);
    for (const [k, v] of n.xattrs) assert.deepEqual(Uint8Array.from(rs.getXattr(ino, k)!), Uint8Array.from(v), `${path} xattr ${str(k)}`);
    if (isDir(n.mode)) {
      assert.equal(a.nlink, 2 + n.children.filter((c) => isDir(c.mode)).length, `${path} nlink`);
      assert.equal(rs.parentOf(ino), parent, `${path} parent`);
      const seen: string[] = [];
      rs.readdir(ino, 0, (e) => (seen.push(str(e.name)), true));
      assert.deepEqual(seen, n.children.map((c) => str(c.name)), `${path} readdir`);
      for (const c of n.children) {
        const hit = rs.lookup(ino, c.name);
        assert.ok(hit, `${path}/${str(c.name)} lookup`);
        walk(c, hit.ino, ino, `${path}/${str(c.name)}`);
      }
      return;
    }
    assert.equal(rs.parentOf(ino) === parent || n.hardlinkKey !== undefined, true, `${path} parent`);
    assert.equal(a.size, n.size, `${path} size`);
    if (isSymlink(n.mode)) assert.equal(str(rs.readlink(ino)), str(n.symlink!), `${path} target`);
    if (isReg(n.mode)) {
      assert.deepEqual(rs.fileChunks(ino).map(norm), n.chunks.map(norm), `${path} chunks`);
      if (n.hardlinkKey !== undefined) {
        assert.equal(a.nlink, linkNames.get(n.hardlinkKey), `${path} nlink`);
        const prev = linkIno.get(n.hardlinkKey);
        if (prev !== undefined) assert.equal(ino, prev, `${path} shares the hardlink inode`);
        linkIno.set(n.hardlinkKey, ino);
        return;
      }
    }
    assert.equal(a.nlink, 1, `${path} nlink`);
  };
  walk(model.root, rs.rootIno, rs.rootIno, '');
}

test('encodeBootstrapV6: the reader returns exactly the synthetic model', () => {
  const { model } = buildSyntheticImage();
  const boot = encodeBootstrapV6(model);
  assert.equal(boot.length % 4096, 0);
  assert.deepEqual(encodeBootstrapV6(model), boot, 'deterministic');
  const rs = openRafsV6(boot);
  rs.validate();
  assertReaderMatchesModel(rs, model);
  assert.equal(rs.rootIno, 128);
  const sb = decodeErofsSuperBlock(boot);
  assert.equal(sb.metaBlkaddr, 2);
  assert.equal(decodeErofsInode(boot, 3 * 4096).ino, 1, 'root i_ino is 1 (nydus-image >= 2.3)');
  // inos counts every name: root + 19 root children + 300 + sub's 3 + deeper's 1.
  assert.equal(sb.inos, 1 + 19 + 300 + 3 + 1);
  const ext = decodeRafsV6SuperBlockExt(boot);
  assert.equal(ext.flags, RafsSuperFlags.COMPRESSION_NONE | RafsSuperFlags.HASH_SHA256 | RafsSuperFlags.EXPLICIT_UID_GID | RafsSuperFlags.HAS_XATTR | RafsSuperFlags.ENCRYPTION_NONE);
  const multi = rs.lookup(rs.rootIno, Buffer.from('multi'))!;
  const deeper = rs.lookup(rs.lookup(rs.rootIno, Buffer.from('sub'))!.ino, Buffer.from('deeper'))!;
  assert.deepEqual(rs.prefetchInodes(), [multi.ino, deeper.ino]);
  const big = rs.lookup(rs.rootIno, Buffer.from('big'))!;
  assert.ok(big.size > 3 * 4096, 'the 300-entry directory spans several blocks');
  // chunkbits: contiguous multi-chunk file gets one big chunk (2^14 ≥ 12411), others the fs size.
  assert.equal(decodeErofsInode(boot, 2 * 4096 + multi.ino * 32).u, 0x20 | (14 - 12));
  const mixed = rs.lookup(rs.rootIno, Buffer.from('mixed'))!;
  assert.equal(decodeErofsInode(boot, 2 * 4096 + mixed.ino * 32).u, 0x20 | 0);
  // readdir with an offset resumes at that position.
  const tail: string[] = [];
  rs.readdir(big.ino, 298, (e, next) => (tail.push(`${str(e.name)}@${next}`), true));
  assert.deepEqual(tail, ['entry-with-a-longish-name-298@299', 'entry-with-a-longish-name-299@300']);
});

test('encodeBootstrapV6: fsck.erofs accepts the image and extracts the right bytes', (t) => {
  if (spawnSync('fsck.erofs', ['-V']).error) return t.skip('fsck.erofs not installed');
  const { model, data, contents } = buildSyntheticImage();
  const dir = mkdtempSync(join(tmpdir(), 'v6-fsck-'));
  try {
    writeFileSync(join(dir, 'boot'), encodeBootstrapV6(model));
    writeFileSync(join(dir, 'data'), data);
    const r = spawnSync('fsck.erofs', [`--device=${join(dir, 'data')}`, `--extract=${join(dir, 'out')}`, join(dir, 'boot')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `fsck.erofs failed: ${r.stdout}${r.stderr}`);
    for (const [path, content] of contents) {
      assert.deepEqual(readFileSync(pathBytes(join(dir, 'out'), path)), Buffer.from(content), `extracted ${path}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encodeBootstrapV6: rebuilding the upstream 2.2 fixture reproduces its bytes', () => {
  const orig = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
  const rs = openRafsV6(orig);
  const toNode = (ino: number, name: Uint8Array): TreeNode => {
    const a = rs.getInode(ino);
    const n: TreeNode = { name, mode: a.mode, uid: a.uid, gid: a.gid, mtime: a.mtime, mtimeNsec: a.mtimeNsec, rdev: a.rdev, size: a.size, xattrs: [], children: [], chunks: [] };
    if (isDir(a.mode)) rs.readdir(ino, 0, (e) => (n.children.push(toNode(e.ino, Uint8Array.from(e.name))), true));
    else if (isReg(a.mode)) n.chunks = rs.fileChunks(ino);
    return n;
  };
  const model: ImageModel = {
    root: toNode(rs.rootIno, Buffer.from('/')),
    blobs: [...rs.blobs],
    chunkSize: rs.meta.chunkSize,
    compressor: rs.meta.compressor,
    digester: rs.meta.digester,
    explicitUidGid: true,
    prefetchPaths: [],
  };
  const out = encodeBootstrapV6(model);
  assert.equal(out.length, orig.length);
  // Known 2.2 differences (§13): ENCRYPTION_NONE flag absent, root i_ino 0, 2 MiB device mapping.
  const fixed = out.slice();
  fixed[1152 + 3] = orig[1152 + 3]!;
  fixed.set(orig.subarray(1408 + 68, 1408 + 72), 1408 + 68);
  fixed.set(orig.subarray(0x3000 + 20, 0x3000 + 24), 0x3000 + 20);
  for (let i = 0; i < orig.length; i++) if (fixed[i] !== orig[i]) assert.fail(`first difference at byte 0x${i.toString(16)}`);
  assert.equal(out[1152 + 3], 0x01, 'ENCRYPTION_NONE set');
});

test('encodeBootstrapV6: an image without blobs (meta_blkaddr 0) is valid', (t) => {
  const node = (name: string, mode: number, children: TreeNode[] = []): TreeNode => ({ name: Buffer.from(name), mode, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: [], children, chunks: [] });
  const model: ImageModel = {
    root: node('/', 0o40755, [node('a', 0o40700, [node('x', 0o100600)]), node('e', 0o100644)]),
    blobs: [],
    chunkSize: 0x100000,
    compressor: 'zstd',
    digester: 'blake3',
    explicitUidGid: false,
    prefetchPaths: ['/e'],
  };
  const boot = encodeBootstrapV6(model);
  const sb = decodeErofsSuperBlock(boot);
  assert.equal(sb.metaBlkaddr, 0);
  assert.equal(sb.rootNid, 128);
  assert.equal(sb.extraDevices, 0);
  const ext = decodeRafsV6SuperBlockExt(boot);
  assert.equal(ext.prefetchTableSize, 0, 'no prefetch table without blobs');
  assert.ok(ext.flags & RafsSuperFlags.INLINED_CHUNK_DIGEST, 'vacuously every blob has a digest array');
  assert.equal(ext.flags & RafsSuperFlags.EXPLICIT_UID_GID, 0);
  const rs = openRafsV6(boot);
  rs.validate();
  assertReaderMatchesModel(rs, model);
  if (spawnSync('fsck.erofs', ['-V']).error) return t.skip('fsck.erofs not installed');
  const dir = mkdtempSync(join(tmpdir(), 'v6-fsck-'));
  try {
    writeFileSync(join(dir, 'boot'), boot);
    const r = spawnSync('fsck.erofs', [join(dir, 'boot')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `fsck.erofs failed: ${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encodeBootstrapV6: model mistakes are ERR_BUILD errors', () => {
  const { model } = buildSyntheticImage();
  const bad = structuredClone(model);
  bad.root.children[0]!.size += 5000;
  assert.throws(() => encodeBootstrapV6(bad), /has 1 chunks, expected 2 for/);
  const unsorted = structuredClone(model);
  unsorted.root.children.reverse();
  assert.throws(() => encodeBootstrapV6(unsorted), (e: Error & { code?: string }) => e.code === 'ERR_BUILD' && /not sorted/.test(e.message));
});

test('V6Layout: slot allocator reproduces the upstream test_set_v6_offset sequence', () => {
  // 32-byte inodes starting at offset 0, as in upstream builder/src/core/v6.rs tests.
  const L = new V6Layout();
  L.offset = 0;
  assert.equal(L.alloc(32), 0);
  assert.equal(L.offset, 32);
  const dir = (dsize: number): V6TailPlacement => {
    const p = L.withTail(32, dsize);
    L.offset = Math.ceil(L.offset / 32) * 32;
    return p;
  };
  assert.deepEqual(dir(4064), { off: 4096, data: 8192, layout: 2 });
  assert.equal(L.offset, 8192);
  assert.deepEqual(dir(4096), { off: 32, data: 8192, layout: 0 });
  assert.equal(L.offset, 8192 + 4096);
  assert.deepEqual(dir(8160), { off: 8192 + 4096, data: 8192 + 4096 + 4096, layout: 2 });
  assert.equal(L.offset, 8192 + 4096 + 8192);
  assert.deepEqual(dir(8161), { off: 64, data: 8192 + 4096 + 8192, layout: 0 });
  assert.equal(L.offset, 8192 + 4096 + 8192 + 8192);
  assert.deepEqual(dir(4096 + 3968), { off: 96, data: 8192 + 4096 + 8192 + 8192, layout: 2 });
  assert.equal(L.offset, 8192 + 4096 + 8192 + 8192 + 4096);
  const p = dir(4096 + 2048);
  assert.equal(p.off, 8192 + 4096 + 8192 + 8192 + 4096);
  assert.equal(p.data, 8192 + 4096 + 8192 + 8192 + 4096 + 4096);
  assert.equal(L.offset, 8192 + 4096 + 8192 + 8192 + 4096 + 8192);
  assert.equal(dir(1985).off, 8192 + 4096 + 8192 + 8192 + 4096 + 8192);
  assert.equal(L.offset, 8192 + 4096 + 8192 + 8192 + 4096 + 8192 + 32 + 1985 + 31);
  assert.equal(dir(1984).off, 8192 + 4096 + 8192 + 8192 + 4096 + 2048 + 32);
  assert.equal(L.offset, 8192 + 4096 + 8192 + 8192 + 4096 + 8192 + 2048);
});

test('encodeBootstrapV6: prefetch rules drop covered, relative and empty-file patterns', () => {
  const { model } = buildSyntheticImage();
  model.prefetchPaths = ['/sub', '/sub/deeper/f', 'relative', '/empty', '/one', '/one'];
  const rs = openRafsV6(encodeBootstrapV6(model));
  const sub = rs.lookup(rs.rootIno, Buffer.from('sub'))!;
  const one = rs.lookup(rs.rootIno, Buffer.from('one'))!;
  assert.deepEqual(rs.prefetchInodes(), [sub.ino, one.ino]);
});
