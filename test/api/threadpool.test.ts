// Regression test (fixed in bin/nydusd.js, now CommonJS so it sizes the pool first): nydusd started the
// normal way (no UV_THREADPOOL_SIZE in the environment) must serve cold reads. bin/nydusd.js sets
// UV_THREADPOOL_SIZE=16 from inside an ES module, but the ESM loader has already started libuv's
// pool with 4 threads by then; FUSE workers in async-read mode each park one pool thread in read(2)
// on /dev/fuse, so with 4 workers the main thread's backend/cache I/O queues behind them and a cold
// read hangs until some other FUSE request arrives. Every read here needs the backend (dummycache).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { curl, makeWorkspace, skipReason, startDaemon, stopDaemon, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();

describe('nydusd with the default libuv pool', { skip }, () => {
  it('cold reads complete without UV_THREADPOOL_SIZE in the environment', { timeout: 900_000 }, async () => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('pool', 1);
      const ws = w;
      const cfg = join(ws.root, 'nocache.json');
      writeFileSync(cfg, JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: ws.blobs } }, cache: { type: 'dummycache' } }, mode: 'direct' }));
      d = await startDaemon(ws, { config: cfg, sizePool: false });
      const img = ws.images[0]!;
      const r = await curl(ws.sock, 'POST', '/api/v1/mount?mountpoint=/m', { data: JSON.stringify({ source: img.bootstrap, fs_type: 'rafs', config: cfg }) });
      assert.equal(r.status, 204, r.text);
      for (let i = 0; i < 8; i++) {
        for (const rel of ['dir/sub/multi.bin', 'dir/one-chunk.bin']) {
          // A separate process with SIGKILL after 60 s (a starved pool hangs forever; 60 s leaves room
          // for a loaded machine): a read stuck in FUSE is killable, ours is not.
          const c = spawnSync('timeout', ['-s', 'KILL', '60', 'sha256sum', join(ws.mnt, 'm', rel)], { encoding: 'utf8', timeout: 90_000 });
          assert.equal(c.status, 0, `round ${i}: cold read of ${rel} did not complete within 60 s (status ${c.status})`);
          // Drop the page cache for the next round so the read reaches the daemon again.
          spawnSync('sh', ['-c', 'echo 1 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
        }
      }
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
