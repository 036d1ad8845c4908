// Issue 11 "Cache quota and GC", acceptance 3: with cache_size_limit a quarter of the image, reading
// the whole image twice through nydusd (4 concurrent readers, the kernel page cache dropped between
// passes) returns the right bytes, and the blob cache on disk never exceeds the limit by more than
// one chunk per reader. Then `nydusctl cache` shows the usage and `nydusctl cache --gc` removes the
// cache of a blob no mount uses.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openBootstrap } from '../../src/rafs/index.js';
import { pattern } from '../helpers/data.js';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';
import { backendMetrics, fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = testDir('nydus-cache-limit-');
after(() => assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts'));

const CHUNK = 1 << 20;
const READERS = 4;

const allocated = (dir: string): number => readdirSync(dir).filter((n) => n.endsWith('.blob.data')).reduce((s, n) => s + statSync(join(dir, n)).blocks * 512, 0);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** sha256sum of files in a child process (the test's event loop keeps sampling meanwhile). */
function hashFiles(files: string[]): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const p = spawn('sha256sum', files, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`sha256sum: ${err}`));
      resolve(new Map(out.trim().split('\n').map((l) => [l.slice(66), l.slice(0, 64)] as [string, string])));
    });
  });
}

describe('cache_size_limit through nydusd', { skip: fuseUsable() }, () => {
  it('a quarter of the image: two full reads, right bytes, disk use within limit + one chunk per reader', { timeout: 180_000 }, async (t) => {
    const src = join(root, 'src');
    mkdirSync(src);
    const want = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const b = pattern(CHUNK + i * 37_000, 100 + i);
      writeFileSync(join(src, `f${i}`), b);
      want.set(`f${i}`, sha(b));
    }
    const blobs = join(root, 'blobs');
    mkdirSync(blobs);
    const boot = join(root, 'boot');
    const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--fs-version', '6', '-B', boot, '-D', blobs, src], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    const image = openBootstrap(readFileSync(boot), 'boot').blobs[0]!.uncompressedSize;
    const limit = Math.floor(image / 4);
    const work = join(root, 'cache');
    // A blob of an image that is no longer mounted, left in work_dir by an earlier run.
    mkdirSync(work);
    writeFileSync(join(work, `${'e'.repeat(64)}.blob.data`), pattern(CHUNK, 7));
    const dir = join(root, 'd');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const cfg = localfsConfig(blobs, work);
    (cfg.device as { cache: { config: Record<string, unknown> } }).cache.config.cache_size_limit = limit;
    const d = await startNydusd({ dir, mnt, bootstrap: boot, config: cfg, apisock: true });
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, allocated(work))), 5);
    try {
      const names = [...want.keys()];
      for (let pass = 0; pass < 2; pass++) {
        for (const n of names) spawnSync('dd', [`if=${join(d.mnt, n)}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
        const before = (await backendMetrics(d)).read_amount_total;
        const parts = Array.from({ length: READERS }, (_, r) => names.filter((_, k) => k % READERS === r).map((n) => join(d.mnt, n)));
        const got = await Promise.all(parts.map(hashFiles));
        for (const m of got) for (const [p, h] of m) assert.equal(h, want.get(p.split('/').pop()!), `${p} pass ${pass}`);
        const fetched = (await backendMetrics(d)).read_amount_total - before;
        assert.ok(fetched > limit, `pass ${pass}: ${fetched} bytes fetched, the cache could not hold the image`);
        peak = Math.max(peak, allocated(work));
      }
      clearInterval(timer);
      assert.ok(!readdirSync(work).some((n) => n.startsWith('e'.repeat(64))), 'the unused blob was evicted first');
      t.diagnostic(`image ${image} B, limit ${limit} B, peak on disk ${peak} B`);
      assert.ok(peak <= limit + READERS * CHUNK, `peak ${peak} > limit ${limit} + ${READERS} chunks`);
      // nydusctl cache: usage, then GC removes the stale blob but keeps the mounted one.
      writeFileSync(join(work, `${'e'.repeat(64)}.blob.data`), pattern(CHUNK, 8));
      writeFileSync(join(work, `${'e'.repeat(64)}.blob.data.chunk_map`), pattern(4097, 9));
      const show = spawnSync(process.execPath, [BIN('nydusctl'), '--sock', d.apisock!, 'cache'], { encoding: 'utf8' });
      assert.equal(show.status, 0, show.stderr);
      assert.match(show.stdout, new RegExp(`Limit\\s+${limit}`));
      assert.match(show.stdout, /e{64}/);
      const gc = spawnSync(process.execPath, [BIN('nydusctl'), '--sock', d.apisock!, 'cache', '--gc'], { encoding: 'utf8' });
      assert.equal(gc.status, 0, gc.stderr);
      assert.match(gc.stdout, /removed 1 blob/);
      const left = readdirSync(work);
      assert.ok(!left.some((n) => n.startsWith('e'.repeat(64))), `stale blob still there: ${left.join(', ')}`);
      assert.ok(left.some((n) => n.endsWith('.blob.data')), 'the mounted blob stays');
      for (const [n, h] of await hashFiles(names.map((n) => join(d.mnt, n)))) assert.equal(h, want.get(n.split('/').pop()!));
    } finally {
      clearInterval(timer);
      await killAndClean(d);
    }
    // Restart over the same work_dir: the usage left behind counts, the limit still holds.
    const d2 = await startNydusd({ dir, mnt, bootstrap: boot, config: cfg, apisock: true });
    let peak2 = allocated(work);
    const timer2 = setInterval(() => (peak2 = Math.max(peak2, allocated(work))), 5);
    try {
      const got = await hashFiles([...want.keys()].map((n) => join(d2.mnt, n)));
      for (const [p, h] of got) assert.equal(h, want.get(p.split('/').pop()!), `${p} after restart`);
    } finally {
      clearInterval(timer2);
      await killAndClean(d2);
    }
    t.diagnostic(`after restart: peak on disk ${peak2} B`);
    assert.ok(peak2 <= limit + CHUNK, `after restart: peak ${peak2} > limit ${limit} + 1 chunk`);
  });
});
