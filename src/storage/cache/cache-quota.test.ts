// cache_size_limit: LRU blob eviction keeps work_dir within the limit (plus in-flight chunks),
// never serves evicted bytes, survives restarts, and GC removes blobs no open cache uses.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFsBackend } from '../backend/localfs.js';
import { RecordingBackend, makeTestBlob } from '../test-support.js';
import { CacheQuota, STATE_SEQ } from './cache-quota.js';
import { FileCache } from './file-cache.js';
import { testDir } from '../../../test/helpers/tmp.js';

const backends: RecordingBackend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const allocated = (dir: string): number => readdirSync(dir).filter((n) => n.endsWith('.blob.data')).reduce((s, n) => s + statSync(join(dir, n)).blocks * 512, 0);

test('cache_size_limit: a quarter of the blob, read twice with 4 readers: right bytes, bounded usage', async () => {
  const root = testDir('nydus-quota-');
  const sizes = Array.from({ length: 32 }, () => 65536);
  const t = makeTestBlob(join(root, 'blobs'), sizes);
  const be = new RecordingBackend(new LocalFsBackend({ dir: join(root, 'blobs') }));
  backends.push(be);
  const work = join(root, 'cache');
  const limit = t.blob.uncompressedSize / 4;
  const fc = new FileCache({ workDir: work, backend: be, sizeLimit: limit });
  let peak = 0;
  const READERS = 4;
  for (let pass = 0; pass < 2; pass++) {
    await Promise.all(
      Array.from({ length: READERS }, async (_, r) => {
        for (let i = r; i < t.chunks.length; i += READERS) {
          const [d] = await fc.readChunks(t.blob, [t.chunks[i]!]);
          assert.ok(Buffer.from(d!).equals(Buffer.from(t.datas[i]!)), `chunk ${i} pass ${pass}`);
          peak = Math.max(peak, allocated(work), fc.quota.usage);
        }
      }),
    );
  }
  assert.ok(peak <= limit + READERS * 65536, `peak ${peak} > limit ${limit} + ${READERS} chunks`);
  assert.ok(fc.quota.usage <= limit);
  assert.ok(Atomics.load(fc.view(t.blob)!.state!, STATE_SEQ) >= 2, 'evictions happened');
  // What is ready is right (no bit over evicted bytes), also after a restart.
  await fc.close();
  const fc2 = new FileCache({ workDir: work, backend: be, sizeLimit: limit });
  await fc2.open(t.blob);
  const n = be.requests.length;
  const ready = t.chunks.filter((c) => fc2.isReady(t.blob, c));
  assert.ok(ready.length > 0 && ready.length < t.chunks.length, `${ready.length} ready after restart`);
  const got = await fc2.readChunks(t.blob, ready);
  got.forEach((d, k) => assert.ok(Buffer.from(d).equals(Buffer.from(t.datas[ready[k]!.index]!))));
  assert.equal(be.requests.length, n, 'ready chunks served from the cache after restart');
  await fc2.close();
});

test('GC removes blobs no open cache uses and keeps those in use', async () => {
  const root = testDir('nydus-quota-gc-');
  const a = makeTestBlob(join(root, 'blobs'), [65536, 65536]);
  const b = makeTestBlob(join(root, 'blobs'), [65536, 65536, 4096]);
  const be = new RecordingBackend(new LocalFsBackend({ dir: join(root, 'blobs') }));
  backends.push(be);
  const work = join(root, 'cache');
  const fa = new FileCache({ workDir: work, backend: be });
  await fa.readChunks(a.blob, a.chunks);
  await fa.close();
  const fb = new FileCache({ workDir: work, backend: be });
  await fb.readChunks(b.blob, b.chunks);
  const q = CacheQuota.of(work);
  assert.equal(q, fb.quota);
  const before = await q.report();
  assert.deepEqual(before.blobs.map((x) => [x.blobId, x.inUse]).sort(), [[a.blob.blobId, false], [b.blob.blobId, true]].sort());
  assert.ok(before.usage >= 4 * 65536);
  const r = await q.gc();
  assert.deepEqual(r.removed, [a.blob.blobId]);
  assert.ok(r.freed >= 2 * 65536);
  assert.equal(existsSync(join(work, `${a.blob.blobId}.blob.data`)), false, 'unused blob removed');
  assert.equal(existsSync(join(work, `${a.blob.blobId}.blob.data.chunk_map`)), false);
  assert.ok(existsSync(join(work, `${b.blob.blobId}.blob.data`)), 'blob in use kept');
  const got = await fb.readChunks(b.blob, b.chunks);
  got.forEach((d, i) => assert.ok(Buffer.from(d).equals(Buffer.from(b.datas[i]!))));
  await fb.close();
});
