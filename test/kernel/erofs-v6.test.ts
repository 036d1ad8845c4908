// Real kernel EROFS mounts of bootstraps from our v6 writer (spec §10): contents, stat fields,
// symlinks, xattrs, hardlinks and device numbers must be what the model says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBootstrapV6 } from '../../src/builder/writer/v6.js';
import { openRafsV6 } from '../../src/rafs/v6.js';
import { S_IFDIR, S_IFREG, isDevice, isDir, isReg, isSymlink, type ImageModel, type TreeNode } from '../../src/format/image-model.js';
import { buildSyntheticImage, ChunkStore, pathBytes, prng, treeNode } from './synthetic-model.js';
import { erofsMountUnavailable, withErofsMount } from './erofs-mount.js';
import { FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../helpers/paths.js';
import { assertStoredChunkDigests } from '../helpers/stored-digests.js';
import { decompress } from '../../src/format/compress.js';

const xattr = createRequire(import.meta.url)('@napi-rs/xattr') as {
  listAttributesSync(p: string): string[];
  getAttributeSync(p: string, n: string): Buffer | null;
};
const skip = erofsMountUnavailable();

test('kernel EROFS mounts a writer image and shows the model', { skip }, async () => {
  const { model, data, contents } = buildSyntheticImage();
  const boot = encodeBootstrapV6(model);
  const rs = openRafsV6(boot);
  const tmp = mkdtempSync(join(tmpdir(), 'v6-kernel-'));
  try {
    writeFileSync(join(tmp, 'boot'), boot);
    writeFileSync(join(tmp, 'data'), data);
    await withErofsMount(join(tmp, 'boot'), [join(tmp, 'data')], (mnt) => {
      for (const [key, content] of contents) assert.deepEqual(readFileSync(pathBytes(mnt, key)), Buffer.from(content), `content of ${key}`);
      const linkIno = new Map<string, number>();
      const walk = (n: TreeNode, rel: Buffer, ino: number): void => {
        const p = Buffer.concat([Buffer.from(mnt), rel]);
        const st = lstatSync(p, { bigint: true });
        const where = rel.toString('latin1') || '/';
        assert.equal(Number(st.ino), ino, `${where} st_ino = nid`);
        assert.equal(Number(st.mode), n.mode, `${where} mode`);
        assert.equal(Number(st.uid), n.uid, `${where} uid`);
        assert.equal(Number(st.gid), n.gid, `${where} gid`);
        assert.equal(st.mtimeNs, BigInt(n.mtime) * 1_000_000_000n + BigInt(n.mtimeNsec), `${where} mtime`);
        if (isDevice(n.mode)) assert.equal(Number(st.rdev), n.rdev, `${where} rdev`);
        if (!isDir(n.mode)) assert.equal(Number(st.size), n.size, `${where} size`);
        if (isSymlink(n.mode)) assert.deepEqual(readlinkSync(p, { encoding: 'buffer' }), Buffer.from(n.symlink!), `${where} target`);
        if (n.xattrs.length > 0 && (isReg(n.mode) || isDir(n.mode))) {
          const ps = p.toString();
          assert.deepEqual(xattr.listAttributesSync(ps).sort(), n.xattrs.map(([k]) => Buffer.from(k).toString()).sort(), `${where} xattr names`);
          for (const [k, v] of n.xattrs) assert.deepEqual(xattr.getAttributeSync(ps, Buffer.from(k).toString()) ?? Buffer.alloc(0), Buffer.from(v), `${where} xattr value`);
        }
        if (n.hardlinkKey !== undefined) {
          const prev = linkIno.get(n.hardlinkKey);
          if (prev !== undefined) assert.equal(Number(st.ino), prev, `${where} hardlink shares st_ino`);
          linkIno.set(n.hardlinkKey, Number(st.ino));
          assert.equal(Number(st.nlink), 3, `${where} nlink`);
        } else if (isDir(n.mode)) {
          assert.equal(Number(st.nlink), 2 + n.children.filter((c) => isDir(c.mode)).length, `${where} nlink`);
          const names = readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare);
          assert.deepEqual(names, n.children.map((c) => Buffer.from(c.name)), `${where} entries`);
          for (const c of n.children) walk(c, Buffer.concat([rel, Buffer.from('/'), Buffer.from(c.name)]), rs.lookup(ino, c.name)!.ino);
        }
      };
      walk(model.root, Buffer.alloc(0), rs.rootIno);
      assert.equal(linkIno.size, 1);
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

// The .blob.data must be made by decompressing (through our reader); the kernel's bytes are then
// judged by the chunk digests upstream's builder stored, not by what our reader produced.
test('kernel EROFS mounts the upstream 2.2 fixture: file bytes match the stored chunk digests', { skip }, async () => {
  const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
  const blob = new Uint8Array(readFileSync(FIXTURE_V6_22_BLOB));
  const rs = openRafsV6(boot);
  const data = new Uint8Array(Math.ceil(rs.blobs[0]!.uncompressedSize / 4096) * 4096);
  const files = new Map<string, Uint8Array>();
  rs.readdir(rs.rootIno, 0, (e) => {
    const parts = rs.fileChunks(e.ino).map((c) => {
      const raw = decompress(blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize), rs.meta.compressor, c.uncompressedSize);
      data.set(raw, c.uncompressedOffset);
      return raw;
    });
    files.set(Buffer.from(e.name).toString(), Buffer.concat(parts));
    return true;
  });
  assert.equal(files.size, 2);
  const tmp = mkdtempSync(join(tmpdir(), 'v6-kernel-fx-'));
  try {
    writeFileSync(join(tmp, 'boot'), boot);
    writeFileSync(join(tmp, 'data'), data);
    await withErofsMount(join(tmp, 'boot'), [join(tmp, 'data')], (mnt) => {
      assert.deepEqual(readdirSync(mnt).sort(), ['lib.rs', 'sync_io.rs']);
      for (const [name, content] of files) {
        const got = readFileSync(join(mnt, name));
        assertStoredChunkDigests(rs, rs.lookup(rs.rootIno, Buffer.from(name))!.ino, got, `kernel ${name}`);
        assert.deepEqual(got, Buffer.from(content), name);
        assert.equal(lstatSync(join(mnt, name)).ino, rs.lookup(rs.rootIno, Buffer.from(name))!.ino);
      }
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('kernel EROFS reads files spread over 3 blobs with 24-bit chunk indexes (device id masking)', { skip }, async () => {
  // Blob 1 starts its chunk indexes at 0x12_0000 so the device_id high byte is non-zero; the
  // kernel masks it off (device_id & (roundup_pow_of_two(extra_devices + 1) - 1)).
  const stores = [new ChunkStore('blake3', 0), new ChunkStore('blake3', 1, 0x12_0000), new ChunkStore('blake3', 2, 0x1_0000)];
  const contents = new Map<string, Uint8Array>();
  const reg = (name: string, parts: Array<[number, Uint8Array]>): TreeNode => {
    const content = Buffer.concat(parts.map(([, b]) => b));
    contents.set(name, content);
    const chunks = parts.flatMap(([blob, b], i) => stores[blob]!.add(b).map((c) => ({ ...c, fileOffset: c.fileOffset + i * 4096 })));
    return treeNode(name, S_IFREG | 0o644, { size: content.length, chunks });
  };
  const chunk = (seed: number, n = 4096): Uint8Array => prng(seed, n);
  const root = treeNode('/', S_IFDIR | 0o755, {
    children: [
      reg('a', [[0, chunk(1)], [0, chunk(2)], [0, chunk(3, 100)]]),
      reg('b', [[1, chunk(4)], [1, chunk(5, 2000)]]),
      reg('c', [[2, chunk(6)], [0, chunk(7)], [1, chunk(8)], [2, chunk(9, 1)]]),
    ],
  });
  const model: ImageModel = {
    root,
    blobs: stores.map((s, i) => s.blobInfo(Buffer.from(prng(50 + i, 32)).toString('hex'))),
    chunkSize: 4096,
    compressor: 'none',
    digester: 'blake3',
    explicitUidGid: true,
    prefetchPaths: [],
  };
  const boot = encodeBootstrapV6(model);
  const rs = openRafsV6(boot);
  rs.validate();
  const c = rs.fileChunks(rs.lookup(rs.rootIno, Buffer.from('c'))!.ino);
  assert.deepEqual(c.map((x) => [x.blobIndex, x.index]), [[2, 0x1_0000], [0, 3], [1, 0x12_0002], [2, 0x1_0001]]);
  const tmp = mkdtempSync(join(tmpdir(), 'v6-kernel-mb-'));
  try {
    writeFileSync(join(tmp, 'boot'), boot);
    stores.forEach((s, i) => writeFileSync(join(tmp, `data${i}`), s.deviceData()));
    await withErofsMount(join(tmp, 'boot'), stores.map((_, i) => join(tmp, `data${i}`)), (mnt) => {
      for (const [name, content] of contents) assert.deepEqual(readFileSync(join(mnt, name)), Buffer.from(content), name);
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
