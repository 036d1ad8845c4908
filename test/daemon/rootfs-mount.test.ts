// Acceptance (2): our own images of a root-filesystem-like tree (v5 and v6, each compressor) mount
// through nydusd and reproduce the source exactly: sha256 of every file, mode, uid/gid, ns mtime,
// nlink and inode sharing of hardlinks, symlink targets, device numbers, fifos, sockets, xattrs
// (getfattr with "enable_xattr": true), sparse files; statfs is sane; and `chroot MOUNT /bin/sh`
// runs the copied host binaries from the mount (the "Debian rootfs" check without a mirror).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/paths.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';
import { buildRootfsTree, snapshot, xattrDump } from './rootfs-tree.js';

const FUSE_SUPER_MAGIC = 0x65735546;
const root = mkdtempSync(join(tmpdir(), 'nydusd-rootfs-'));
const src = join(root, 'src');
let srcSnap: ReturnType<typeof snapshot>;
let srcXattrs: Map<string, string[]>;

after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

describe('rootfs-like images through nydusd match their source', { skip: fuseUsable() }, () => {
  before(() => {
    mkdirSync(src, { mode: 0o755 });
    buildRootfsTree(src);
    srcSnap = snapshot(src);
    srcXattrs = xattrDump(src);
    // The source really has what we test for (a broken builder of the tree would make this vacuous).
    const types = new Set([...srcSnap.entries.values()].map((e) => e.type));
    assert.deepEqual([...types].sort(), ['blk', 'chr', 'dir', 'fifo', 'file', 'link', 'sock']);
    assert.ok(srcSnap.linkGroups.some((g) => g.length === 3), 'a 3-name hardlink group');
    assert.ok(srcXattrs.size >= 3, 'xattrs on the source');
  });

  for (const fsVersion of ['5', '6'] as const) {
    for (const compressor of ['none', 'lz4_block', 'zstd'] as const) {
      it(`v${fsVersion} ${compressor}`, { timeout: 60_000 }, async () => {
        const dir = join(root, `v${fsVersion}-${compressor}`);
        const blobs = join(dir, 'blobs');
        const mnt = join(dir, 'mnt');
        mkdirSync(mnt, { recursive: true });
        mkdirSync(blobs);
        const boot = join(dir, 'image.boot');
        const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '-t', 'dir-rafs', '--fs-version', fsVersion, '--compressor', compressor, '-B', boot, '-D', blobs, src], { encoding: 'utf8' });
        assert.equal(c.status, 0, c.stderr);
        const d = await startNydusd({ dir, mnt, bootstrap: boot, config: localfsConfig(blobs, join(dir, 'cache'), { digest_validate: true }) });
        try {
          const got = snapshot(d.mnt);
          // Entry by entry first, so a failure names the path.
          for (const [p, want] of srcSnap.entries) {
            const e = got.entries.get(p);
            if (p === '.') {
              // The mount root reports the source root's attributes except its nlink/mtime may be the builder's.
              assert.equal(e?.mode, want.mode, 'root mode');
              continue;
            }
            assert.deepEqual(e, want, `entry ${JSON.stringify(p)}`);
          }
          assert.deepEqual([...got.entries.keys()], [...srcSnap.entries.keys()], 'same set of paths');
          assert.deepEqual(got.linkGroups, srcSnap.linkGroups, 'hardlinks share inodes exactly as in the source');
          assert.deepEqual(xattrDump(d.mnt), srcXattrs, 'getfattr -d -m - of every path');

          const sf = statfsSync(d.mnt);
          assert.equal(sf.type, FUSE_SUPER_MAGIC);
          assert.equal(sf.bsize, 4096);
          assert.ok(sf.blocks > 0 && sf.bfree === 0 && sf.bavail === 0, `statfs blocks ${sf.blocks} free ${sf.bfree}`);
          assert.ok(sf.files >= srcSnap.entries.size, `statfs files ${sf.files} < ${srcSnap.entries.size} entries`);

          const ch = spawnSync('chroot', [d.mnt, '/bin/sh', '-c', 'ls /; cat /etc/os-release'], { encoding: 'utf8', timeout: 20_000 });
          assert.equal(ch.status, 0, `chroot: ${ch.stderr}`);
          const osRelease = readFileSync('/etc/os-release', 'utf8');
          assert.ok(ch.stdout.endsWith(osRelease), `chroot output: ${ch.stdout}`);
          for (const top of ['bin', 'dev', 'etc', 'srv', 'usr']) assert.match(ch.stdout, new RegExp(`^${top}$`, 'm'));
        } finally {
          await killAndClean(d);
        }
      });
    }
  }
});
