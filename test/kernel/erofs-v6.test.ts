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
import { isDevice, isDir, isReg, isSymlink, type TreeNode } from '../../src/builder/tree.js';
import { buildSyntheticImage, pathBytes } from './synthetic-model.js';
import { erofsMountUnavailable, withErofsMount } from './erofs-mount.js';
import { FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../helpers/paths.js';
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

test('kernel EROFS mounts the upstream 2.2 fixture with a .blob.data derived through our reader', { skip }, async () => {
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
        assert.deepEqual(readFileSync(join(mnt, name)), Buffer.from(content), name);
        assert.equal(lstatSync(join(mnt, name)).ino, rs.lookup(rs.rootIno, Buffer.from(name))!.ino);
      }
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
