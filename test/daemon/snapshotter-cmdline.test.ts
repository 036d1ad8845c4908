// Issue 18, acceptance 3: nydusd started with the argument list nydus-snapshotter uses
//   nydusd fuse --config C --bootstrap B --mountpoint M --apisock S --log-level L --log-file F
//          --log-rotation-size N --supervisor SUP --id ID --thread-num T
// mounts, writes its log to F (not stderr) and rotates F at N MiB into upstream-named compressed files.
// The config is the JSON nydus-snapshotter generates for a registry image (fixture), pointed at a real
// docker-registry that does not hold the image's blob: reads fail fast (404 → EIO) and each failure is
// logged at the snapshotter's default level (info), which is how the test produces log volume.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { apiCall } from '../../src/api/client.js';
import { BIN, FIXTURE_V5_SHA256, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { hasDockerRegistry, startRegistry } from '../helpers/registry.js';
import { fuseMountsUnder, fuseUsable, killAndClean, startNydusd } from './nydusd-proc.js';

const root = mkdtempSync(join(tmpdir(), 'nydusd-snapcmd-'));
after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

const GENERATED = join(REPO_ROOT, 'test/fixtures/upstream-configs/nydus-snapshotter/generated/registry-image-prefetch-off.json');

describe('nydusd as nydus-snapshotter runs it', { skip: fuseUsable() ?? (hasDockerRegistry() ? undefined : 'docker-registry not installed') }, () => {
  it('-V prints one version line from package.json', () => {
    const r = spawnSync(process.execPath, [BIN('nydusd'), '-V'], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout, `nydusd ${pkg.version} (nydus-ts)\n`);
  });

  it('mounts with the exact argument list, logs to --log-file and rotates it', { timeout: 300_000 }, async () => {
    const reg = await startRegistry();
    const id = 'Xm7c9sKjT3mYqL2b0R1aZw';
    // nydus-snapshotter's layout: <root>/config/<id>/config.json, <root>/socket/<id>/api.sock, <root>/logs/<id>/nydusd.log
    const cfgDir = join(root, 'config', id);
    const sockDir = join(root, 'socket', id);
    const logDir = join(root, 'logs', id);
    const mnt = join(root, 'mnt', id);
    for (const d of [cfgDir, sockDir, logDir, mnt, join(root, 'cache')]) mkdirSync(d, { recursive: true });
    // Supplement: the image's registry host and the snapshotter's cache dir, as it writes them.
    const cfg = JSON.parse(readFileSync(GENERATED, 'utf8')) as { device: { backend: { config: Record<string, unknown> }; cache: { config: Record<string, unknown> } } };
    cfg.device.backend.config.host = reg.host;
    cfg.device.cache.config.work_dir = join(root, 'cache');
    const config = join(cfgDir, 'config.json');
    writeFileSync(config, JSON.stringify(cfg));
    const apisock = join(sockDir, 'api.sock');
    const logFile = join(logDir, 'nydusd.log');
    const args = [
      BIN('nydusd'), 'fuse', '--config', config, '--bootstrap', FIXTURE_V5_SHA256, '--mountpoint', mnt, '--apisock', apisock,
      '--log-level', 'info', '--log-file', logFile, '--log-rotation-size', '1', '--supervisor', join(root, 'supervisor', 'supervisor.sock'),
      '--id', id, '--thread-num', '4',
    ];
    const d = await startNydusd({ dir: root, mnt, bootstrap: FIXTURE_V5_SHA256, config, rawArgs: args.slice(1) });
    try {
      assert.ok(readdirSync(d.mnt).includes('normal-file-test'), 'the image is mounted');
      const info = await apiCall(apisock, 'GET', '/api/v1/daemon');
      assert.equal(info.status, 200);
      assert.equal((info.body as { id?: string }).id, id, '--id reaches the daemon');
      await until('the mount line in the log file', () => existsSync(logFile) && /mounted at |supervisor: mounted /.test(readFileSync(logFile, 'utf8')), 10_000);
      assert.equal(d.stderr(), '', 'with --log-file nothing is logged to stderr');
      const log = readFileSync(logFile, 'utf8');
      assert.match(log, /ignoring unknown key "device\.backend\.config\.readahead"/, 'the config warning is in the file');

      // Reads of chunks the registry does not have fail with EIO and are logged: read (O_DIRECT, so
      // the page cache cannot answer) until the file passes 1 MiB and a rotated file appears.
      const file = join(d.mnt, 'normal-file-test/test.sh');
      const buf = Buffer.alloc(4096);
      let reads = 0;
      let eio = 0;
      const rotated = (): string[] => readdirSync(logDir).filter((n) => /^nydusd_r\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.restart-\d{4})?\.log\.gz$/.test(n));
      await until('a rotated log file', () => {
        for (let i = 0; i < 50; i++) {
          const fd = openSync(file, constants.O_RDONLY | constants.O_DIRECT);
          try {
            readSync(fd, buf, 0, buf.length, 0);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EIO') throw e;
            eio++;
          } finally {
            closeSync(fd);
          }
          reads++;
        }
        return rotated().length > 0;
      }, 240_000, 0);
      assert.ok(eio > 0 && eio === reads, `every read failed with EIO (${eio}/${reads}): the registry has no blob`);
      const [first] = rotated();
      const old = gunzipSync(readFileSync(join(logDir, first!))).toString('utf8');
      assert.ok(old.length <= 1024 * 1024, `rotated at 1 MiB (got ${old.length} bytes)`);
      assert.ok(old.length > 1024 * 1024 - 4096, 'the rotated file was full');
      assert.match(old, /mounted at |supervisor: mounted /, 'the rotated file holds the start of the log');
      assert.match(old, /WARN .*read failed/);
      // Logging continues into a fresh file at the same path.
      await until('new lines in the fresh log file', () => {
        const fd = openSync(file, constants.O_RDONLY | constants.O_DIRECT);
        try {
          readSync(fd, buf, 0, buf.length, 0);
        } catch {
          /* EIO, logged */
        } finally {
          closeSync(fd);
        }
        return statSync(logFile).size > 0;
      }, 30_000);
      assert.ok(statSync(logFile).size < 1024 * 1024);
    } finally {
      await killAndClean(d);
      await reg.close();
    }
  });
});
