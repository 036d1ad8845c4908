import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { normaliseConfig } from '../config/daemon-config.js';
import { LocalFsBackend } from './backend/localfs.js';
import { openMountStorage } from './blob-cache-manager.js';
import { FileCache } from './cache/file-cache.js';
import { NoCache } from './cache/no-cache.js';
import { UserIoGate } from './io-gate.js';
import { Prefetcher, TokenBucket } from './prefetch.js';
import { RecordingBackend, makeTestBlob } from './test-support.js';
import { testDir } from '../../test/helpers/tmp.js';
import { until } from '../../test/helpers/poll.js';

const backends: RecordingBackend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

function setup(n = 16, size = 16384) {
  const root = testDir('nydus-prefetch-');
  const t = makeTestBlob(join(root, 'blobs'), Array.from({ length: n }, () => size));
  const be = new RecordingBackend(new LocalFsBackend({ dir: join(root, 'blobs') }));
  backends.push(be);
  return { root, t, be, work: join(root, 'cache') };
}

/** Virtual time: only sleeps advance it, so pacing is measured exactly whatever the machine load. */
function virtualClock(): { now: () => number; sleep: (ms: number) => Promise<void>; sleeps: number[] } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

test('TokenBucket paces takes to the rate; 0 means unlimited', async () => {
  const c0 = virtualClock();
  const unlimited = new TokenBucket(0, c0);
  for (let i = 0; i < 100; i++) await unlimited.take(1 << 30);
  assert.deepEqual(c0.sleeps, [], 'unlimited never waits');
  const c = virtualClock();
  const b = new TokenBucket(1_000_000, c);
  await Promise.all([b.take(100_000), b.take(100_000), b.take(100_000)]);
  // Starts empty: each 100 kB at 1 MB/s costs 100 ms, served in order.
  assert.deepEqual(c.sleeps.map((ms) => Math.round(ms)), [100, 100, 100]);
  assert.equal(Math.round(c.now()), 300);
  // A second's worth of refill at most: after a long idle period, 1 MB is free, the next byte is not.
  await c.sleep(10_000);
  c.sleeps.length = 0;
  await b.take(1_000_000);
  assert.deepEqual(c.sleeps, []);
  await b.take(1000);
  assert.deepEqual(c.sleeps.map((ms) => Math.round(ms)), [1]);
});

test('Prefetcher fills the cache in merged requests with several workers', async () => {
  const { t, be, work } = setup(16);
  const fc = new FileCache({ workDir: work, backend: be, validate: true });
  const compressedPerRequest = t.chunks.slice(0, 4).reduce((n, c) => n + c.compressedSize, 0);
  const p = new Prefetcher(fc, { threads: 3, mergeSize: compressedPerRequest });
  p.add([{ blob: t.blob, chunks: t.chunks }]);
  await p.whenDone();
  assert.equal(p.progress.doneChunks, 16);
  assert.equal(p.progress.failedChunks, 0);
  assert.equal(p.progress.running, false);
  assert.ok(be.requests.length <= 5 && be.requests.length >= 4, `${be.requests.length} requests`);
  for (let i = 0; i < 16; i++) assert.ok(fc.isReady(t.blob, i));
  assert.equal(fc.metrics.prefetchChunks, 16);
  assert.equal(fc.metrics.prefetchBytes, 16 * 16384);
  assert.equal(fc.metrics.misses, 0, 'prefetch does not count as user misses');
  // Running again skips what is cached.
  p.add([{ blob: t.blob, chunks: t.chunks }]);
  await p.whenDone();
  assert.equal(p.progress.skippedChunks, 16);
  await fc.close();
});

test('Prefetcher respects bandwidth_rate', async () => {
  const { t, be, work } = setup(8);
  const total = t.chunks.reduce((n, c) => n + c.compressedSize, 0);
  const rate = Math.ceil(total / 0.4); // whole blob in ~400 ms
  const fc = new FileCache({ workDir: work, backend: be });
  const clock = virtualClock();
  const p = new Prefetcher(fc, { threads: 4, mergeSize: t.chunks[0]!.compressedSize, bandwidthLimit: rate, clock });
  p.add([{ blob: t.blob, chunks: t.chunks }]);
  await p.whenDone();
  // Every backend byte went through the bucket: 400 ms of virtual time for the whole blob.
  assert.ok(clock.now() >= 399 && clock.now() <= 401, `paced for ${clock.now()} ms, expected 400`);
  assert.equal(clock.sleeps.length, 8, 'one wait per merged request');
  assert.equal(p.progress.doneChunks, 8);
  await fc.close();
});

test('Prefetcher yields while user reads are in flight, and can be stopped', async () => {
  const { t, be, work } = setup(8);
  const io = new UserIoGate();
  const fc = new FileCache({ workDir: work, backend: be, io });
  const p = new Prefetcher(fc, { threads: 2, mergeSize: 1, io });
  io.begin(); // a user read is in flight
  p.add([{ blob: t.blob, chunks: t.chunks }]);
  // Both workers are parked on the gate (not merely slow): nothing was requested.
  await until('both prefetch workers to wait on the user-read gate', () => io.waiting === 2);
  assert.equal(be.requests.length, 0, 'no prefetch request while the user read runs');
  // A real user read goes straight through meanwhile.
  await fc.readChunks(t.blob, [t.chunks[5]!]);
  assert.equal(be.requests.length, 1);
  io.end();
  await p.whenDone();
  assert.equal(p.progress.doneChunks, 7);
  assert.equal(p.progress.skippedChunks, 1, 'chunk 5 was already read by the user');

  // Stop while the first request is held in flight: it may finish, nothing else is requested.
  const s = setup(16);
  let release!: () => void;
  s.be.gate = new Promise<void>((r) => (release = r));
  const fc2 = new FileCache({ workDir: s.work, backend: s.be });
  const p2 = new Prefetcher(fc2, { threads: 1, mergeSize: 1 });
  p2.add([{ blob: s.t.blob, chunks: s.t.chunks }]);
  await until('the first prefetch request to be in flight', () => s.be.requests.length === 1);
  const stopping = p2.stop();
  release();
  await stopping;
  assert.equal(p2.progress.running, false);
  assert.ok(p2.progress.doneChunks <= 1, `stopped early (${p2.progress.doneChunks} done)`);
  assert.equal(s.be.requests.length, 1, 'no request after stop');
  p2.add([{ blob: s.t.blob, chunks: s.t.chunks }]);
  assert.equal(p2.progress.running, false, 'a stopped prefetcher starts no workers');
  assert.equal(s.be.requests.length, 1);
  await fc.close();
  await fc2.close();
});

test('NoCache without kept chunks reads from the backend every time', async () => {
  const { t, be } = setup(4);
  const nc = new NoCache({ backend: be, validate: true, keepChunks: 0 });
  for (let i = 0; i < 2; i++) {
    const got = await nc.readChunks(t.blob, t.chunks);
    assert.deepEqual(got.map((b) => Buffer.from(b)), t.datas.map((d) => Buffer.from(d)));
  }
  assert.equal(be.requests.length, 2);
  assert.equal(nc.view(t.blob), undefined);
  assert.equal(nc.isReady(t.blob, 0), false);
  await assert.rejects(nc.readChunks(t.blob, [{ ...t.chunks[1]!, digest: new Uint8Array(32) }]), /chunk 1 of blob/);
  assert.equal(nc.metrics.digestFailures, 1);
});

test('NoCache: one fetch per chunk for concurrent readers, the last chunks kept, bad chunks never kept', async () => {
  const { t, be } = setup(4);
  const nc = new NoCache({ backend: be, validate: true, keepChunks: 2 });
  // Page-sized readers of one chunk arriving together: one backend read, one decode.
  const all = await Promise.all(Array.from({ length: 8 }, () => nc.readChunks(t.blob, [t.chunks[1]!])));
  for (const [d] of all) assert.deepEqual(Buffer.from(d!), Buffer.from(t.datas[1]!));
  assert.equal(be.requests.length, 1);
  assert.equal(nc.metrics.inflightJoins, 7);
  // Kept: read again without the backend.
  assert.deepEqual(Buffer.from((await nc.readChunks(t.blob, [t.chunks[1]!]))[0]!), Buffer.from(t.datas[1]!));
  assert.equal(be.requests.length, 1);
  // A record with another digest for the same place is not served the kept bytes: fetched and refused.
  await assert.rejects(nc.readChunks(t.blob, [{ ...t.chunks[1]!, digest: new Uint8Array(32) }]), /chunk 1 of blob/);
  assert.equal(be.requests.length, 2);
  await assert.rejects(nc.readChunks(t.blob, [{ ...t.chunks[2]!, digest: new Uint8Array(32) }]), /chunk 2 of blob/);
  assert.equal(be.requests.length, 3);
  await nc.readChunks(t.blob, [t.chunks[2]!]);
  assert.equal(be.requests.length, 4, 'the failed chunk was not kept');
  // LRU of 2: chunk 1 and 2 are kept; 0 and 3 push them out.
  await nc.readChunks(t.blob, [t.chunks[0]!, t.chunks[3]!]);
  const n = be.requests.length;
  await nc.readChunks(t.blob, [t.chunks[1]!]);
  assert.equal(be.requests.length, n + 1);
});

test('openMountStorage() from a v2 config: reads across blobs, cache views, prefetch, metrics', async () => {
  const root = testDir('nydus-mount-');
  const blobsDir = join(root, 'blobs');
  const a = makeTestBlob(blobsDir, [8192, 8192], { blobIndex: 0 });
  const b = makeTestBlob(blobsDir, [4096, 4096, 4096], { blobIndex: 1 });
  const cfg = normaliseConfig(
    { version: 2, backend: { type: 'localfs', localfs: { dir: blobsDir } }, cache: { type: 'blobcache', filecache: { work_dir: join(root, 'cache') } }, rafs: { validate: true, prefetch: { enable: true, threads: 2 } } },
    'test',
  );
  const m = await openMountStorage([a.blob, b.blob], cfg);
  const views = m.cacheViews();
  assert.equal(views.length, 2);
  assert.ok(views[0]!.dataPath.endsWith(`${a.blob.blobId}.blob.data`));
  const got = await m.readChunks([b.chunks[2]!, a.chunks[0]!, b.chunks[0]!]);
  assert.deepEqual(got.map((x) => Buffer.from(x)), [b.datas[2], a.datas[0], b.datas[0]].map((d) => Buffer.from(d!)));
  m.prefetch([...a.chunks, ...b.chunks]);
  await m.prefetcher!.whenDone();
  const met = m.metrics();
  assert.equal(met.blobcache.readyChunks, 5);
  assert.equal(met.blobcache.totalChunks, 5);
  assert.equal(met.blobcache.misses, 3);
  assert.equal(met.backend.type, 'localfs');
  await assert.rejects(m.readChunks([{ ...a.chunks[0]!, blobIndex: 7 }]), /blob index 7/);
  await m.close();
});
