import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S_IFCHR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK, isReg, type TreeNode } from '../../format/image-model.js';
import { scanDirectory } from './dir.js';
import { applySingleLayerWhiteouts } from './whiteout.js';
import { readXattrs } from './xattrs.js';

const names = (n: TreeNode): string[] => n.children.map((c) => Buffer.from(c.name).toString('latin1'));
const child = (n: TreeNode, name: string): TreeNode => {
  const c = n.children.find((x) => Buffer.from(x.name).toString('latin1') === name);
  assert.ok(c, `missing ${name}`);
  return c;
};
const root = process.getuid?.() === 0;

test('readXattrs() does not follow symlinks and keeps only allowed prefixes, sorted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-xa-'));
  try {
    const f = join(dir, 'f');
    writeFileSync(f, 'x');
    symlinkSync('f', join(dir, 'l'));
    try {
      execFileSync('setfattr', ['-n', 'user.b', '-v', '2', f]);
      execFileSync('setfattr', ['-n', 'user.a', '-v', '1', f]);
    } catch {
      t.skip('setfattr unavailable or xattrs unsupported here');
      return;
    }
    assert.deepEqual(readXattrs(Buffer.from(f)).map(([k, v]) => `${Buffer.from(k)}=${Buffer.from(v)}`), ['user.a=1', 'user.b=2']);
    assert.deepEqual(readXattrs(Buffer.from(join(dir, 'l'))), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('scanDirectory() records every file type, raw names, hardlinks and nsec mtimes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-dir-'));
  try {
    const s = join(dir, 'src');
    mkdirSync(join(s, 'sub/deeper'), { recursive: true });
    writeFileSync(join(s, 'sub/deeper/file'), 'abc');
    writeFileSync(join(s, 'empty'), '');
    writeFileSync(join(s, 'a'), 'A');
    linkSync(join(s, 'a'), join(s, 'a-link'));
    symlinkSync('x'.repeat(300), join(s, 'long-symlink'));
    const raw = Buffer.concat([Buffer.from(join(s, 'bad-')), Buffer.from([0xff, 0xfe])]);
    writeFileSync(raw, 'non-utf8 name');
    execFileSync('mkfifo', [join(s, 'fifo')]);
    if (root) execFileSync('mknod', [join(s, 'chr'), 'c', '1', '7']);
    const src = await scanDirectory(s, { explicitUidGid: true });
    const r = src.root;
    const expected = ['a', 'a-link', 'bad-\xff\xfe', ...(root ? ['chr'] : []), 'empty', 'fifo', 'long-symlink', 'sub'];
    assert.deepEqual(names(r), expected);
    const a = child(r, 'a');
    assert.ok(a.hardlinkKey && a.hardlinkKey === child(r, 'a-link').hardlinkKey);
    assert.equal(a.chunks, child(r, 'a-link').chunks);
    assert.equal(child(r, 'empty').hardlinkKey, undefined);
    const ls = child(r, 'long-symlink');
    assert.equal(ls.mode & S_IFMT, S_IFLNK);
    assert.equal(ls.size, 300);
    assert.equal(child(r, 'fifo').mode & S_IFMT, S_IFIFO);
    if (root) {
      const c = child(r, 'chr');
      assert.equal(c.mode & S_IFMT, S_IFCHR);
      assert.equal(c.rdev, 0x107);
    }
    const st = lstatSync(join(s, 'a'), { bigint: true });
    assert.equal(a.mtime, Number(st.mtimeNs / 1_000_000_000n));
    assert.equal(a.mtimeNsec, Number(st.mtimeNs % 1_000_000_000n));
    assert.equal(a.uid, Number(st.uid));
    const bad = child(r, 'bad-\xff\xfe');
    assert.ok(isReg(bad.mode));
    assert.deepEqual(src.paths.get(bad), raw);
    assert.deepEqual(names(child(child(r, 'sub'), 'deeper')), ['file']);
    const rep = await scanDirectory(s, { explicitUidGid: false });
    assert.equal(child(rep.root, 'a').uid, 0);
    void S_IFSOCK;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('scanDirectory() of a missing path or a file gives one-line errors', async () => {
  await assert.rejects(scanDirectory('/nonexistent/nydus-src', { explicitUidGid: true }), /cannot read source directory \/nonexistent\/nydus-src: ENOENT/);
  await assert.rejects(scanDirectory('/etc/hostname', { explicitUidGid: true }), /is not a directory/);
});

test('applySingleLayerWhiteouts() drops OCI markers for dir builds and keeps them for tar builds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-wh-'));
  try {
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd/.wh.gone'), '');
    writeFileSync(join(dir, 'd/.wh..wh..opq'), '');
    writeFileSync(join(dir, 'd/kept'), '');
    const a = await scanDirectory(dir, { explicitUidGid: true });
    applySingleLayerWhiteouts(a.root, 'oci', true);
    assert.deepEqual(names(child(a.root, 'd')), ['kept']);
    const b = await scanDirectory(dir, { explicitUidGid: true });
    applySingleLayerWhiteouts(b.root, 'oci', false);
    assert.deepEqual(names(child(b.root, 'd')), ['.wh..wh..opq', '.wh.gone', 'kept']);
    const c = await scanDirectory(dir, { explicitUidGid: true });
    applySingleLayerWhiteouts(c.root, 'none', true);
    assert.equal(child(c.root, 'd').children.length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
