// Acceptance on the complete upstream fixtures: `check` with the blob passes, and `unpack` → `tar -xpf`
// reproduces the tree and every md5 of the upstream `.result` (tree -J semantics: a symlink to a
// directory counts as a directory), with hardlinks written as tar link entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { BIN, FIXTURE_V5_BLAKE3, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256, FIXTURE_V6_22_BOOT, FIXTURES } from '../helpers/paths.js';
import { assertStoredChunkDigests } from '../helpers/stored-digests.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { flattenTreeJ, parseResultFile, treeReport, type FlatEntry } from '../helpers/result-tree.js';

function nydusImage(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The extracted directory as tree -J would flatten it (links keep their raw target). */
function flattenDisk(root: string): Map<string, FlatEntry> {
  const out = new Map<string, FlatEntry>([['/', { type: 'directory' }]]);
  const walk = (dir: string, prefix: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      const key = `${prefix}/${n}`;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(key, { type: 'link', target: readlinkSync(p) });
      else if (st.isDirectory()) {
        out.set(key, { type: 'directory' });
        walk(p, key);
      } else out.set(key, { type: 'file' });
    }
  };
  walk(root, '');
  return out;
}

/** `tar -tv` lines of the hard link entries: "path link to target". */
function tarLinks(tarPath: string): string[] {
  const r = spawnSync('tar', ['-tvf', tarPath], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.startsWith('h'));
}

for (const boot of [FIXTURE_V5_SHA256, FIXTURE_V5_BLAKE3]) {
  test(`${basename(boot)}: check -D passes; unpack + tar -xpf matches the .result tree and md5s`, () => {
    const d = mkdtempSync(join(tmpdir(), 'nydus-fixture-unpack-'));
    try {
      const c = nydusImage(['check', boot, '-D', FIXTURE_V5_BLOB_DIR]);
      assert.equal(c.status, 0, c.stderr);
      assert.match(c.stdout, /verified 23 chunks/);
      const tarPath = join(d, 'out.tar');
      const u = nydusImage(['unpack', boot, '-D', FIXTURE_V5_BLOB_DIR, '--output', tarPath]);
      assert.equal(u.status, 0, u.stderr);
      const x = join(d, 'x');
      mkdirSync(x);
      const t = spawnSync('tar', ['-xpf', tarPath, '-C', x], { encoding: 'utf8' });
      assert.equal(t.status, 0, t.stderr);

      const want = parseResultFile(readFileSync(`${boot}.result`, 'utf8'));
      const wantFlat = flattenTreeJ(want.root);
      const got = flattenDisk(x);
      assert.deepEqual(new Map([...got].sort()), new Map([...wantFlat].sort()));
      // The report line: tree counts a symlink to a directory as a directory.
      assert.deepEqual(treeReport(got), want.report);
      assert.ok(want.md5.size >= 20);
      for (const [path, md5] of want.md5) {
        assert.equal(createHash('md5').update(readFileSync(join(x, path))).digest('hex'), md5, path);
      }
      // hardlink-test/foo, hardlink-test/test.sh and normal-file-test/test.sh are one inode: the
      // first name is a file entry, the others tar link entries, and one inode after extraction.
      const links = tarLinks(tarPath);
      assert.equal(links.length, 2, links.join('\n'));
      for (const l of links) assert.match(l, / link to hardlink-test\/foo$/);
      const names = ['hardlink-test/foo', 'hardlink-test/test.sh', 'normal-file-test/test.sh'].map((p) => lstatSync(join(x, p)));
      assert.deepEqual(new Set(names.map((s) => s.ino)).size, 1);
      assert.equal(names[0]!.nlink, 3);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
}

test('rafs-v6-2.2 fixture: check -D passes and unpack + tar -xpf gives both files', () => {
  const d = mkdtempSync(join(tmpdir(), 'nydus-fixture-unpack-'));
  try {
    const c = nydusImage(['check', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs')]);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /verified 2 chunks/);
    const tarPath = join(d, 'out.tar');
    assert.equal(nydusImage(['unpack', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs'), '--output', tarPath]).status, 0);
    const x = join(d, 'x');
    mkdirSync(x);
    assert.equal(spawnSync('tar', ['-xpf', tarPath, '-C', x]).status, 0);
    assert.deepEqual(new Map([...flattenDisk(x)].sort()), new Map([['/', { type: 'directory' }], ['/lib.rs', { type: 'file' }], ['/sync_io.rs', { type: 'file' }]]));
    assert.equal(lstatSync(join(x, 'lib.rs')).size, 16931);
    assert.equal(lstatSync(join(x, 'sync_io.rs')).size, 13400);
    // The bytes, judged by the chunk digests upstream's builder stored (not by our reader).
    const sb = openBootstrap(new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT)));
    for (const f of ['lib.rs', 'sync_io.rs']) assertStoredChunkDigests(sb, sb.lookup(sb.rootIno, Buffer.from(f))!.ino, readFileSync(join(x, f)), `unpacked ${f}`);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
