// Acceptance (1): the upstream fixtures mount through nydusd (localfs backend, blobcache) and
// match upstream's own expectations: the two v5 "repeatable" bootstraps against their `.result`
// files (tree -J structure + md5 of every regular file, as upstream's smoke test records them),
// and the v6 2.2 bootstrap against `nydus-image unpack` of the same image.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, FIXTURE_V5_BLAKE3, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256, FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT, FIXTURES } from '../helpers/paths.js';
import { flattenTreeJ, parseResultFile, treeReport, type FlatEntry, type TreeJEntry } from '../helpers/result-tree.js';
import { assertStoredChunkDigests } from '../helpers/stored-digests.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = mkdtempSync(join(tmpdir(), 'nydusd-fixtures-'));
after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

/** Walks a mounted tree with lstat (no symlink following): path → tree -J style entry. */
function walk(mnt: string): { flat: Map<string, FlatEntry>; md5: Map<string, string> } {
  const flat = new Map<string, FlatEntry>([['/', { type: 'directory' }]]);
  const md5 = new Map<string, string>();
  const rec = (rel: string): void => {
    for (const name of readdirSync(join(mnt, rel))) {
      const p = `${rel}/${name}`;
      const st = lstatSync(join(mnt, p));
      if (st.isDirectory()) {
        flat.set(p, { type: 'directory' });
        rec(p);
      } else if (st.isSymbolicLink()) flat.set(p, { type: 'link', target: readlinkSync(join(mnt, p)) });
      else {
        flat.set(p, { type: 'file' });
        if (st.isFile()) md5.set(p, createHash('md5').update(readFileSync(join(mnt, p))).digest('hex'));
      }
    }
  };
  rec('');
  return { flat, md5 };
}

describe('upstream fixtures through nydusd', { skip: fuseUsable() }, () => {
  for (const boot of [FIXTURE_V5_SHA256, FIXTURE_V5_BLAKE3]) {
    const name = boot.split('/').pop()!;
    it(`v5 ${name} matches ${name}.result (tree + md5)`, { timeout: 60_000 }, async () => {
      const dir = join(root, name);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt, { recursive: true });
      const expected = parseResultFile(readFileSync(`${boot}.result`, 'utf8'));
      const d = await startNydusd({ dir, mnt, bootstrap: boot, config: localfsConfig(FIXTURE_V5_BLOB_DIR, join(dir, 'cache'), { digest_validate: true }) });
      try {
        const got = walk(d.mnt);
        assert.deepEqual(new Map([...got.flat].sort()), new Map([...flattenTreeJ(expected.root)].sort()), 'tree structure and link targets');
        assert.deepEqual(treeReport(got.flat), expected.report);
        assert.deepEqual(new Map([...got.md5].sort()), new Map([...expected.md5].sort()), 'md5 of every regular file');
        // The same through the real `tree -J` the .result files were made with.
        const t = spawnSync('tree', ['-J', d.mnt], { encoding: 'utf8', timeout: 20_000 });
        if (t.status === 0) {
          const parsed = JSON.parse(t.stdout) as Array<TreeJEntry & { directories?: number; files?: number }>;
          const top = parsed.find((e) => e.type === 'directory')!;
          assert.deepEqual(new Map([...flattenTreeJ({ ...top, name: '' })].sort()), new Map([...flattenTreeJ(expected.root)].sort()), 'tree -J of the mount');
          // (tree's own report is not compared: it resolves absolute links such as root-1 -> "////"
          // against the host root, so its directory count depends on where the mount sits.)
        }
        // Hardlinks share one inode on the mount.
        assert.equal(lstatSync(join(d.mnt, 'hardlink-test/foo')).ino, lstatSync(join(d.mnt, 'hardlink-test/test.sh')).ino);
      } finally {
        await killAndClean(d);
      }
      const cacheFiles = readdirSync(join(dir, 'cache')).sort();
      assert.ok(cacheFiles.some((f) => f.endsWith('.blob.data.chunk_map')), `blobcache files: ${cacheFiles.join(', ')}`);
    });
  }

  it('v6 2.2 fixture: both files match the chunk digests upstream stored (and nydus-image unpack)', { timeout: 60_000 }, async () => {
    const dir = join(root, 'v6');
    const mnt = join(dir, 'mnt');
    const unpacked = join(dir, 'unpacked');
    mkdirSync(mnt, { recursive: true });
    mkdirSync(unpacked);
    const u = spawnSync(process.execPath, [BIN('nydus-image'), 'unpack', '--bootstrap', FIXTURE_V6_22_BOOT, '--blob', FIXTURE_V6_22_BLOB, '--output', join(dir, 'v6.tar')], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    assert.equal(spawnSync('tar', ['-xf', join(dir, 'v6.tar'), '-C', unpacked]).status, 0);
    const files = readdirSync(unpacked).sort();
    assert.deepEqual(files, ['lib.rs', 'sync_io.rs']);
    const d = await startNydusd({ dir, mnt, bootstrap: FIXTURE_V6_22_BOOT, config: localfsConfig(join(FIXTURES, 'blobs'), join(dir, 'cache'), { digest_validate: true }) });
    try {
      assert.deepEqual(readdirSync(d.mnt).sort(), files);
      const sb = openBootstrap(new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT)));
      for (const f of files) {
        const want = readFileSync(join(unpacked, f));
        const got = readFileSync(join(d.mnt, f));
        // The independent oracle: upstream's builder hashed the original bytes of every chunk.
        assertStoredChunkDigests(sb, sb.lookup(sb.rootIno, Buffer.from(f))!.ino, got, `mounted ${f}`);
        assert.ok(want.length > 10_000, `${f} has content`);
        assert.ok(got.equals(want), `${f}: mount bytes differ from unpack`);
        assert.equal(lstatSync(join(d.mnt, f)).size, want.length);
      }
    } finally {
      await killAndClean(d);
    }
  });
});
