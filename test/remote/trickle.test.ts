// Issue 11 defect 3: a backend that trickles its body (one byte per 100 ms, so the idle timeout never
// fires) must not hold a read: the whole-request deadline (storage/backend/http.ts
// wholeRequestDeadlineMs) fails it, the read gets EIO within a bound, the failed fetch leaves the
// in-flight map (the same file reads once the server recovers), and SIGTERM does not wait for a
// trickling fetch. Real nydusd, registry backend against test/helpers/http-faults.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { wholeRequestDeadlineMs } from '../../src/storage/backend/http.js';
import { startFaultServer, type Fault } from '../helpers/http-faults.js';
import { buildImage, hashTree, mountsUnder, nydusdSkip, Nydusd, readHash, registryBackend, v1Config, waitFor, type Built } from './harness.js';
import { makeSmallTree } from './tree.js';

const skip = nydusdSkip();
const TIMEOUT_S = 1;
const RETRIES = 1;
// Each attempt ends by the deadline (a merged read is at most 1 MiB here); the kernel may ask twice.
const DEADLINE_MS = wholeRequestDeadlineMs({ connectTimeoutMs: TIMEOUT_S * 1000, timeoutMs: TIMEOUT_S * 1000 }, 1 << 20);
const EIO_BOUND_MS = 2 * (RETRIES + 1) * DEADLINE_MS + 3000;

describe('trickling backend through nydusd', { skip }, () => {
  let root = '';
  let img: Built;
  let blob: Buffer;
  let want: Map<string, string>;

  before(() => {
    root = mkdtempSync('/tmp/remote-trickle-');
    makeSmallTree(join(root, 'src'));
    img = buildImage(join(root, 'src'), join(root, 'img'));
    blob = readFileSync(img.blobPath);
    want = hashTree(join(root, 'src'));
  });
  after(() => {
    for (const m of mountsUnder(root)) assert.fail(`leaked mount ${m}`);
    rmSync(root, { recursive: true, force: true });
  });

  const trickles = (k = 50): Fault[] => Array.from({ length: k }, () => ({ kind: 'trickle', everyMs: 100 }) as Fault);

  it('EIO within the deadline bound, then data once the server recovers; SIGTERM does not wait', { timeout: 180_000 }, async () => {
    const origin = await startFaultServer({ [img.blobId]: blob });
    const dir = join(root, 'm');
    const d = new Nydusd(dir, join(dir, 'mnt'));
    try {
      const cfg = { ...v1Config({ backend: registryBackend(`127.0.0.1:${origin.port}`, 'trickle', { timeout: TIMEOUT_S, connect_timeout: TIMEOUT_S, retry_limit: RETRIES }), workDir: join(dir, 'cache') }), amplify_io: 0 };
      await d.start(cfg, img.boot);
      const files = [...want.keys()].filter((k) => k.startsWith('many/f') && want.get(k) !== 'f:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      const warm = files[0]!;
      const r0 = await readHash(join(d.mnt, warm), 30_000);
      assert.equal(`f:${r0.hash}`, want.get(warm), r0.err);

      const victim = files[5]!;
      origin.faults.push(...trickles());
      const r = await readHash(join(d.mnt, victim), EIO_BOUND_MS * 3);
      assert.ok(!r.timedOut, 'read hung on a trickling backend');
      assert.equal(r.hash, undefined, 'EIO expected');
      assert.match(r.err, /Input\/output error/);
      assert.ok(r.ms < EIO_BOUND_MS, `EIO after ${Math.round(r.ms)} ms (bound ${EIO_BOUND_MS})`);

      // Recovered: the same chunks are fetched anew (nothing stale left in flight).
      origin.faults.length = 0;
      const ok = await readHash(join(d.mnt, victim), 30_000);
      assert.equal(`f:${ok.hash}`, want.get(victim), `after recovery: ${ok.err}`);

      // SIGTERM while a fetch trickles: the daemon exits well before the retries would end.
      origin.faults.push(...trickles());
      const n0 = origin.requests.length;
      const pending = readHash(join(d.mnt, files[9]!), 60_000);
      await waitFor('the trickling request to reach the server', 10_000, () => origin.requests.length > n0);
      const t0 = performance.now();
      await d.stop();
      const stopMs = performance.now() - t0;
      assert.ok(stopMs < DEADLINE_MS * (RETRIES + 1), `SIGTERM took ${Math.round(stopMs)} ms with a trickling fetch`);
      const p = await pending;
      assert.ok(!p.timedOut, 'the reader was released');
    } finally {
      await d.stop();
      await origin.close();
    }
  });
});
