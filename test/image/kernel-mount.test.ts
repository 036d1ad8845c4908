// A v6 `--compressor none` image built by the CLI from a tree with every file type mounts in the
// kernel both ways — bootstrap + `export --blob-data-dir` device (mount -o device=) and the flat
// `export --block` disk — and the mount equals the source; fsck.erofs accepts the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { erofsMountUnavailable, withErofsMount } from '../kernel/erofs-mount.js';
import { asObject, cli, describe, hardlinkGroups, makeFullTree } from './tree-helpers.js';

test('CLI v6 none image mounts via device= and as an export --block disk, equal to the source', async (t) => {
  const skip = erofsMountUnavailable();
  if (skip) return t.skip(skip);
  const d = mkdtempSync(join(tmpdir(), 'nydus-kmount-'));
  try {
    const src = join(d, 'src');
    mkdirSync(src);
    makeFullTree(src);
    const want = describe(src, { dirNlink: true });
    const wantLinks = hardlinkGroups(src);
    assert.deepEqual(wantLinks, [['/dir/hl-b', '/dir/sub/hl-c', '/hl-a']]);
    assert.ok(readdirSync(join(src, 'big')).length >= 300);
    const wantObj = asObject(want);
    // No sockets vanish, xattrs of all three namespaces are present in the source description.
    assert.equal(want.get('/sock')?.type, 'socket');
    assert.ok(want.get('/empty')?.xattrs?.['security.s'] && want.get('/hl-a')?.xattrs?.['trusted.t']);

    for (const chunkSize of ['0x1000', '0x100000']) {
      const w = join(d, chunkSize);
      mkdirSync(w);
      const boot = join(w, 'boot');
      const blobDir = join(w, 'blobs');
      mkdirSync(blobDir);
      const c = cli(['create', '--fs-version', '6', '--compressor', 'none', '--chunk-size', chunkSize, '-B', boot, '-D', blobDir, '--log-level', 'warn', src]);
      assert.equal(c.code, 0, c.stderr);

      const ex = cli(['export', '--block', boot, '-D', blobDir, '--blob-data-dir', w]);
      assert.equal(ex.code, 0, ex.stderr);
      const devices = ex.stdout.trim().split('\n');
      assert.equal(devices.length, 1);
      assert.equal(statSync(devices[0]!).size % 512, 0);
      const fsck = spawnSync('fsck.erofs', [`--device=${devices[0]}`, boot], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(fsck.status, 0, `fsck.erofs: ${fsck.stdout}${fsck.stderr}`);
      await withErofsMount(boot, devices, (mnt) => {
        assert.deepEqual(asObject(describe(mnt, { dirNlink: true })), wantObj, `${chunkSize}: device= mount`);
        assert.deepEqual(hardlinkGroups(mnt), wantLinks);
      });

      const disk = join(w, 'disk');
      const bl = cli(['export', '--block', boot, '-D', blobDir, '-O', disk]);
      assert.equal(bl.code, 0, bl.stderr);
      // fsck.erofs (erofs-utils 1.x here) insists on --device= for an image with a device table even
      // when every device has a mapped_blkaddr (the flat disk); the kernel mounts it alone, which is
      // what --block promises, so the disk is checked by mounting it.
      await withErofsMount(disk, [], (mnt) => {
        assert.deepEqual(asObject(describe(mnt, { dirNlink: true })), wantObj, `${chunkSize}: --block disk mount`);
        assert.deepEqual(hardlinkGroups(mnt), wantLinks);
      });
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
