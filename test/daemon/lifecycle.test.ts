// Acceptance (4) and the command line: signals never leave a mount that hangs `ls`; config errors
// are one line naming the key or file, with a non-zero exit and no stack trace; and the seed 002
// walkthrough (nydusify's nydus-image create line, then its nydusd line verbatim) works.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isFuseMounted } from '../../src/fuse/mount.js';
import { BIN, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256 } from '../helpers/paths.js';
import { cleanMount, exitedWithin, fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = mkdtempSync(join(tmpdir(), 'nydusd-life-'));
after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

function timedLs(dir: string): { code: number | null; ms: number; err: string } {
  const t = Date.now();
  // A hang runs into the 30 s kill; callers bound an answer generously (10 s) for a loaded machine.
  const r = spawnSync('ls', [dir], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, ms: Date.now() - t, err: r.stderr ?? '' };
}

function fresh(name: string): { dir: string; mnt: string } {
  const dir = join(root, name);
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  return { dir, mnt };
}

const fixtureConfig = (dir: string): Record<string, unknown> => localfsConfig(FIXTURE_V5_BLOB_DIR, join(dir, 'cache'));

describe('nydusd signals', { skip: fuseUsable() }, () => {
  it('SIGTERM: clean unmount, exit code 0', { timeout: 30_000 }, async () => {
    const { dir, mnt } = fresh('term');
    const d = await startNydusd({ dir, mnt, bootstrap: FIXTURE_V5_SHA256, config: fixtureConfig(dir) });
    try {
      assert.ok(readdirSync(d.mnt).includes('hardlink-test'));
      d.proc.kill('SIGTERM');
      assert.ok(await exitedWithin(d, 10_000), 'exits after SIGTERM');
      assert.deepEqual(await d.exited, { code: 0, signal: null });
      assert.equal(isFuseMounted(d.mnt), false, 'unmounted by the daemon itself');
      const ls = timedLs(d.mnt);
      assert.equal(ls.code, 0, ls.err);
    } finally {
      await killAndClean(d);
    }
  });

  it('SIGTERM with a file held open on the mount: still exits and leaves nothing that hangs', { timeout: 30_000 }, async () => {
    const { dir, mnt } = fresh('term-busy');
    const d = await startNydusd({ dir, mnt, bootstrap: FIXTURE_V5_SHA256, config: fixtureConfig(dir) });
    let fd: number | undefined;
    try {
      fd = openSync(join(d.mnt, 'normal-file-test/test.sh'), 'r');
      assert.ok(readSync(fd, Buffer.alloc(16)) > 0);
      d.proc.kill('SIGTERM');
      assert.ok(await exitedWithin(d, 10_000), 'exits after SIGTERM despite the busy mount');
      const ls = timedLs(d.mnt);
      assert.ok(ls.ms < 10_000, `ls took ${ls.ms} ms`);
      assert.equal(isFuseMounted(d.mnt), false, 'a busy mount is detached (lazy) rather than left behind');
      t_ignore(() => readSync(fd!, Buffer.alloc(16))); // the open file may now fail; it must not hang
    } finally {
      if (fd !== undefined) t_ignore(() => closeSync(fd!));
      await killAndClean(d);
    }
  });

  it('SIGKILL: ls fails fast with ENOTCONN and the mount can be cleaned', { timeout: 30_000 }, async () => {
    const { dir, mnt } = fresh('kill');
    const d = await startNydusd({ dir, mnt, bootstrap: FIXTURE_V5_SHA256, config: fixtureConfig(dir) });
    try {
      assert.ok(readFileSync(join(d.mnt, 'hardlink-test/foo')).length > 0);
      d.proc.kill('SIGKILL');
      assert.ok(await exitedWithin(d, 10_000));
      assert.equal((await d.exited).signal, 'SIGKILL');
      const ls = timedLs(d.mnt);
      assert.ok(ls.ms < 10_000, `ls on the dead mount took ${ls.ms} ms`);
      assert.notEqual(ls.code, 0);
      assert.match(ls.err, /Transport endpoint is not connected/);
      await cleanMount(d.mnt, d.connId);
      assert.equal(isFuseMounted(d.mnt), false);
      assert.equal(timedLs(d.mnt).code, 0);
    } finally {
      await killAndClean(d);
    }
  });
});

function t_ignore(f: () => unknown): void {
  try {
    f();
  } catch {
    /* expected: EIO/ENOTCONN after the daemon is gone */
  }
}

describe('nydusd config errors', { skip: fuseUsable() }, () => {
  const cases: Array<{ name: string; config: string | undefined; expect: RegExp }> = [
    { name: 'invalid value', config: JSON.stringify({ ...localfsConfig(FIXTURE_V5_BLOB_DIR, '/tmp'), fs_prefetch: { enable: true, threads_count: 0 } }), expect: /fs_prefetch\.threads_count/ },
    { name: 'wrong type', config: JSON.stringify({ ...localfsConfig(FIXTURE_V5_BLOB_DIR, '/tmp'), digest_validate: 'yes' }), expect: /digest_validate/ },
    { name: 'invalid JSON', config: '{"device": {', expect: /nydusd\.json/ },
    { name: 'missing config file', config: undefined, expect: /nydusd\.json/ },
    { name: 'missing blob dir', config: JSON.stringify(localfsConfig('/nonexistent/nydus-blobs', '/tmp/nydus-cache-unused')), expect: /\/nonexistent\/nydus-blobs/ },
  ];
  for (const c of cases) {
    it(`${c.name}: one line naming it, non-zero exit, no stack, no mount`, { timeout: 30_000 }, async () => {
      const { dir, mnt } = fresh(`cfg-${c.name.replace(/ /g, '-')}`);
      const cfg = join(dir, 'nydusd.json');
      if (c.config !== undefined) writeFileSync(cfg, c.config);
      try {
        const r = spawnSync(process.execPath, [BIN('nydusd'), '--config', cfg, '--mountpoint', mnt, '--bootstrap', FIXTURE_V5_SHA256], { encoding: 'utf8', timeout: 15_000 });
        assert.equal(r.signal, null, `nydusd did not exit by itself (it ran until killed): ${r.stderr}`);
        assert.notEqual(r.status, 0);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
        assert.match(lines[0]!, c.expect);
        assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
        assert.equal(isFuseMounted(mnt), false);
      } finally {
        await cleanMount(mnt, undefined);
      }
    });
  }
});

describe('seed 002 walkthrough verbatim', { skip: fuseUsable() }, () => {
  it('nydus-image create (nydusify line) + nydusd --config nydusd-config.localfs.json ...', { timeout: 60_000 }, async () => {
    const cwd = join(root, '01-basic');
    const o = join(cwd, 'origin-root-dir');
    mkdirSync(join(o, 'dir_1/subdir_a'), { recursive: true });
    mkdirSync(join(o, 'dir_1/subdir_b'));
    mkdirSync(join(o, 'dir_2'));
    writeFileSync(join(o, 'dir_1/subdir_a/file_a'), 'file_a\n');
    writeFileSync(join(o, 'dir_2/file_b'), 'file_b\n');
    writeFileSync(join(o, 'file_c'), 'file_c\n');
    symlinkSync('file_c', join(o, 'file_c_ln'));
    mkdirSync(join(cwd, 'image-store'));
    const create = '--bootstrap image-store/image-basic-01.meta --log-level warn --whiteout-spec oci --output-json image-store/output.json --blob image-store/image-basic-01.blob --fs-version 6 --compressor zstd --chunk-size 0x100000 origin-root-dir';
    const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', ...create.split(' ')], { cwd, encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    const blobId = (JSON.parse(readFileSync(join(cwd, 'image-store/output.json'), 'utf8')) as { blobs: string[] }).blobs[0]!;
    renameSync(join(cwd, 'image-store/image-basic-01.blob'), join(cwd, 'image-store', blobId));
    mkdirSync(join(cwd, 'mnt-local'));
    // The config exactly as the seed's heredoc writes it (relative dirs, resolved against the cwd).
    writeFileSync(join(cwd, 'nydusd-config.localfs.json'), `{
  "device": {
    "backend": {
      "type": "localfs",
      "config": {
        "dir": "image-store"
      }
    },
    "cache": {
      "type": "blobcache",
      "config": {
        "work_dir": "cache"
      }
    }
  },
  "mode": "direct",
  "digest_validate": false,
  "iostats_files": false,
  "enable_xattr": true
}
`);
    const argv = 'nydusd --config nydusd-config.localfs.json --mountpoint mnt-local --bootstrap image-store/image-basic-01.meta --log-level info'.split(' ').slice(1);
    const d = await startNydusd({ dir: cwd, cwd, mnt: 'mnt-local', bootstrap: '', config: 'unused', rawArgs: argv });
    try {
      const tree = spawnSync('tree', ['mnt-local/'], { cwd, encoding: 'utf8' });
      if (tree.status === 0) {
        // tree draws its indent with no-break spaces; the seed shows them as spaces.
        assert.equal(tree.stdout.replace(/\u00a0/g, ' ').split('\n').slice(0, 9).join('\n'), [
          'mnt-local/', '├── dir_1', '│   ├── subdir_a', '│   │   └── file_a', '│   └── subdir_b', '├── dir_2', '│   └── file_b', '├── file_c', '└── file_c_ln -> file_c',
        ].join('\n'));
      }
      for (const [f, want] of [['dir_1/subdir_a/file_a', 'file_a\n'], ['dir_2/file_b', 'file_b\n'], ['file_c', 'file_c\n'], ['file_c_ln', 'file_c\n']] as const) {
        assert.equal(readFileSync(join(cwd, 'mnt-local', f), 'utf8'), want);
      }
      const cache = readdirSync(join(cwd, 'cache')).sort();
      assert.deepEqual(cache, [`${blobId}.blob.data`, `${blobId}.blob.data.chunk_map`, `${blobId}.blob.meta`]);
      assert.ok(existsSync(join(cwd, 'cache', `${blobId}.blob.data`)));
    } finally {
      await killAndClean(d);
    }
  });
});
