// Issue 5: prefetch order and priority through a real nydusd over the registry backend, counted at
// the origin (http-faults records every Range and byte served):
//  - --prefetch-files fetches exactly the listed files (nothing else) when prefetch_all is off
//  - the bootstrap prefetch table (--prefetch-policy fs at build time) does the same without a list
//  - with prefetch_all and a bandwidth limit, the listed files are fetched first
//  - a user read of an uncached file completes quickly while the limited prefetch is still running
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openBootstrap } from '../../src/rafs/index.js';
import { startFaultServer, type FaultServer } from '../helpers/http-faults.js';
import { buildImage, hashTree, mountsUnder, nydusdSkip, Nydusd, readHash, registryBackend, v1Config, waitFor, type Built } from './harness.js';
import { makeBulk } from './tree.js';

const skip = nydusdSkip();
const MiB = 1 << 20;
const HOT = '/m-hot';

interface Range {
  off: number;
  end: number;
}

/** Compressed [off, end) of every chunk of the regular files under `dir` in the image. */
function chunkRanges(boot: string, dir: string): Range[] {
  const sb = openBootstrap(readFileSync(boot));
  let ino = sb.rootIno;
  for (const part of dir.split('/').filter(Boolean)) ino = sb.lookup(ino, Buffer.from(part))!.ino;
  const out: Range[] = [];
  sb.readdir(ino, 0, (e) => {
    if (e.name.length && e.name[0] !== 0x2e) for (const c of sb.fileChunks(e.ino)) out.push({ off: c.compressedOffset, end: c.compressedOffset + c.compressedSize });
    return true;
  });
  return out;
}

function requested(origin: FaultServer): Range[] {
  return origin.requests
    .map((r) => /^bytes=(\d+)-(\d+)$/.exec(String(r.headers.range ?? '')))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ off: Number(m[1]), end: Number(m[2]) + 1 }));
}

const covered = (chunks: Range[], got: Range[]): boolean => chunks.every((c) => got.some((g) => g.off <= c.off && c.end <= g.end));
const sum = (rs: Range[]): number => rs.reduce((n, r) => n + r.end - r.off, 0);

describe('prefetch through nydusd: listed files first, user reads first', { skip }, () => {
  let root = '';
  let plain: Built;
  let tabled: Built;
  let want: Map<string, string>;
  let n = 0;

  before(() => {
    root = mkdtempSync('/tmp/remote-prefetch-');
    const src = join(root, 'src');
    makeBulk(join(src, 'a-bulk'), 30, MiB, 'a');
    makeBulk(join(src, 'm-hot'), 3, MiB, 'hot');
    makeBulk(join(src, 'z-bulk'), 30, MiB, 'z');
    plain = buildImage(src, join(root, 'plain'));
    tabled = buildImage(src, join(root, 'tabled'), { prefetch: [HOT] });
    want = hashTree(src);
  });
  after(() => {
    for (const m of mountsUnder(root)) assert.fail(`leaked mount ${m}`);
    rmSync(root, { recursive: true, force: true });
  });

  async function withMount(img: Built, prefetch: Parameters<typeof v1Config>[0]['prefetch'], files: string[] | undefined, body: (d: Nydusd, origin: FaultServer) => Promise<void>): Promise<void> {
    const origin = await startFaultServer({ [img.blobId]: readFileSync(img.blobPath) });
    const dir = join(root, `m${n++}`);
    const d = new Nydusd(dir, join(dir, 'mnt'));
    try {
      await d.start(v1Config({ backend: registryBackend(`127.0.0.1:${origin.port}`, 'r'), workDir: join(dir, 'cache'), prefetch }), img.boot, files ? { prefetchFiles: files } : {});
      await body(d, origin);
    } finally {
      await d.stop();
      await origin.close();
    }
  }

  async function onlyHotFetched(img: Built, d: Nydusd, origin: FaultServer): Promise<void> {
    const hot = chunkRanges(img.boot, HOT);
    const bc = await waitFor('prefetch to finish', 30_000, async () => {
      const m = await d.blobcache();
      return m.prefetch && !(m.prefetch as { running: boolean }).running && m.ready_chunks >= hot.length ? m : undefined;
    });
    assert.equal(bc.ready_chunks, hot.length, 'exactly the listed files are cached');
    assert.ok(covered(hot, requested(origin)), 'every chunk of the listed files was requested');
    // Everything requested at all: the hot chunks plus at most the blob meta.
    assert.ok(origin.bytesServed <= sum(hot) + 256 * 1024, `served ${origin.bytesServed} for ${sum(hot)} bytes of listed files`);
    const r = await readHash(join(d.mnt, 'm-hot/f0001'));
    assert.equal(`f:${r.hash}`, want.get('m-hot/f0001'), `read of a prefetched file: ${r.err.trim()}`);
  }

  it('--prefetch-files fetches only the listed files (prefetch_all off)', { timeout: 60_000 }, async () => {
    await withMount(plain, { enable: true, threads_count: 2, prefetch_all: false }, [HOT], (d, o) => onlyHotFetched(plain, d, o));
  });

  it('the bootstrap prefetch table (--prefetch-policy fs) fetches only its files', { timeout: 60_000 }, async () => {
    await withMount(tabled, { enable: true, threads_count: 2, prefetch_all: false }, undefined, (d, o) => onlyHotFetched(tabled, d, o));
  });

  it('prefetch_all with a bandwidth limit: listed files first; a user read overtakes the prefetch', { timeout: 60_000 }, async () => {
    const hot = chunkRanges(plain.boot, HOT);
    const first = Math.min(...hot.map((r) => r.off));
    assert.ok(first > 20 * MiB, 'precondition: the listed files sit in the middle of the blob');
    // 16 MiB/s is the floor upstream (and we) apply to a non-zero bandwidth_rate: ~4 s for 63 MiB.
    await withMount(plain, { enable: true, threads_count: 2, merging_size: MiB, prefetch_all: true, bandwidth_rate: 16 * MiB }, [HOT], async (d, origin) => {
      const servedAtHot = await waitFor('listed files to be requested', 30_000, () => (covered(hot, requested(origin)) ? origin.bytesServed : undefined), 10);
      assert.ok(servedAtHot <= sum(hot) + 3 * MiB, `listed files complete after ${servedAtHot} bytes (listed: ${sum(hot)}): not fetched first`);

      // User read of a file at the end of the blob while prefetch is still throttling along.
      const before = await d.blobcache();
      assert.equal(before.data_all_ready, false, 'prefetch still running');
      const r = await readHash(join(d.mnt, 'z-bulk/f0029'), 30_000);
      assert.equal(`f:${r.hash}`, want.get('z-bulk/f0029'));
      const afterRead = await d.blobcache();
      // Ordering (not a wall-clock bound): the read of the blob's last file did not wait for the prefetch.
      assert.equal(afterRead.data_all_ready, false, `the user read (${Math.round(r.ms)} ms) finished before the prefetch did`);

      // And the prefetch still completes.
      await waitFor('data_all_ready', 30_000, async () => (await d.blobcache()).data_all_ready, 100);
    });
  });
});
