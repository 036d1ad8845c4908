import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../util/errors.js';
import { LocalFsBackend } from '../backend/localfs.js';
import { RecordingBackend, makeTestBlob, type TestBlob } from '../test-support.js';
import { isChunkReady } from './blob-cache.js';
import { FileCache, type FileCacheOptions } from './file-cache.js';
import { testDir } from '../../../test/helpers/tmp.js';

const backends: RecordingBackend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const SIZES = [65536, 65536, 30000, 65536, 4096];

function setup(sizes = SIZES, withCi = false): { t: TestBlob; work: string; be: RecordingBackend; blobs: string } {
  const root = testDir('nydus-filecache-');
  const blobs = join(root, 'blobs');
  const t = makeTestBlob(blobs, sizes, { withCi });
  const be = new RecordingBackend(new LocalFsBackend({ dir: blobs }));
  backends.push(be);
  return { t, work: join(root, 'cache'), be, blobs };
}

function cache(work: string, be: RecordingBackend, o: Partial<FileCacheOptions> = {}): FileCache {
  return new FileCache({ workDir: work, backend: be, validate: true, ...o });
}

test('FileCache: cold read fetches with one merged request, restart serves from disk with no backend reads', async () => {
  const { t, work, be } = setup();
  const fc = cache(work, be);
  const got = await fc.readChunks(t.blob, t.chunks);
  assert.deepEqual(got.map((b) => Buffer.from(b)), t.datas.map((d) => Buffer.from(d)));
  assert.equal(be.requests.length, 1, 'contiguous chunks < 1 MiB: one backend read');
  assert.equal(fc.metrics.misses, 5);
  await fc.close();

  const dataPath = join(work, `${t.blob.blobId}.blob.data`);
  assert.equal(statSync(dataPath).size, t.blob.uncompressedSize);
  const fc2 = cache(work, be);
  await fc2.open(t.blob);
  for (let i = 0; i < 5; i++) assert.ok(fc2.isReady(t.blob, i));
  const again = await fc2.readChunks(t.blob, [t.chunks[4]!, t.chunks[2]!]);
  assert.deepEqual(again.map((b) => Buffer.from(b)), [t.datas[4], t.datas[2]].map((d) => Buffer.from(d!)));
  assert.equal(be.requests.length, 1, 'no backend read after restart');
  assert.equal(fc2.metrics.hits, 2);
  await fc2.close();
});

test('FileCache: chunk_map file has the exact upstream layout', async () => {
  const { t, work, be } = setup([4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096]);
  const fc = cache(work, be);
  await fc.readChunks(t.blob, [t.chunks[0]!, t.chunks[2]!, t.chunks[9]!]);
  await fc.close();
  const file = readFileSync(join(work, `${t.blob.blobId}.blob.data.chunk_map`));
  assert.equal(file.length, 4096 + 2);
  assert.deepEqual([...file.subarray(0, 16)], [0x50, 0x41, 0x4d, 0x42, 1, 0, 0, 0, 0x50, 0x41, 0x4d, 0x43, 0, 0, 0, 0]);
  assert.ok(file.subarray(16, 4096).every((b) => b === 0), 'reserved bytes zero');
  assert.deepEqual([...file.subarray(4096)], [0b1010_0000, 0b0100_0000], 'MSB first: chunks 0, 2, 9');

  const fc2 = cache(work, be);
  await fc2.readChunks(t.blob, t.chunks);
  await fc2.close();
  const full = readFileSync(join(work, `${t.blob.blobId}.blob.data.chunk_map`));
  assert.deepEqual([...full.subarray(12, 16)], [0x50, 0x41, 0x4d, 0x4d], 'all_ready = "PAMM" once complete');
  assert.deepEqual([...full.subarray(4096)], [0xff, 0b1100_0000]);
});

test('FileCache: a chunk_map of the wrong size is discarded', async () => {
  const { t, work, be } = setup();
  const fc = cache(work, be);
  await fc.readChunks(t.blob, t.chunks);
  await fc.close();
  const mapPath = join(work, `${t.blob.blobId}.blob.data.chunk_map`);
  writeFileSync(mapPath, Buffer.concat([readFileSync(mapPath), Buffer.from([0xff])]));
  const fc2 = cache(work, be);
  await fc2.open(t.blob);
  assert.equal(fc2.isReady(t.blob, 0), false);
  assert.equal(statSync(mapPath).size, 4097);
  await fc2.close();
});

test('FileCache: a corrupted chunk fails digest validation, is never marked ready, neighbours are fine', async () => {
  const { t, work, be } = setup();
  // Chunk 1 is random data stored raw: flip one byte of it in the blob.
  assert.equal(t.chunks[1]!.flags & 1, 0);
  const bytes = Buffer.from(t.bytes);
  bytes[t.chunks[1]!.compressedOffset + 100]! ^= 0xff;
  writeFileSync(t.path, bytes);
  const fc = cache(work, be);
  await assert.rejects(fc.readChunks(t.blob, t.chunks.slice(0, 3)), (e: unknown) => {
    assert.ok(e instanceof FormatError);
    assert.equal(e.code, 'ERR_DIGEST_MISMATCH');
    assert.ok(e.message.includes(`chunk 1 of blob "${t.blob.blobId}"`), e.message);
    return true;
  });
  assert.equal(fc.metrics.digestFailures, 1);
  assert.equal(fc.isReady(t.blob, 1), false);
  assert.ok(fc.isReady(t.blob, 0) && fc.isReady(t.blob, 2));
  const ok = await fc.readChunks(t.blob, [t.chunks[0]!, t.chunks[2]!]);
  assert.deepEqual(ok.map((b) => Buffer.from(b)), [t.datas[0], t.datas[2]].map((d) => Buffer.from(d!)));
  await assert.rejects(fc.readChunks(t.blob, [t.chunks[1]!]), /ERR_DIGEST_MISMATCH|digest/);
  await fc.close();
  const fc2 = cache(work, be);
  await fc2.open(t.blob);
  assert.equal(fc2.isReady(t.blob, 1), false, 'still not ready after restart');
  await fc2.close();
});

test('FileCache: concurrent readers of one missing chunk cause one backend read', async () => {
  const { t, work, be } = setup();
  be.delayMs = 50;
  const fc = cache(work, be);
  const all = await Promise.all(Array.from({ length: 10 }, () => fc.readChunks(t.blob, [t.chunks[3]!])));
  for (const [d] of all) assert.deepEqual(Buffer.from(d!), Buffer.from(t.datas[3]!));
  assert.equal(be.requests.length, 1);
  assert.equal(fc.metrics.misses, 1);
  assert.equal(fc.metrics.inflightJoins, 9);
  // A wider read overlapping the in-flight chunk fetches only what is not in flight.
  const [a, b] = await Promise.all([fc.readChunks(t.blob, [t.chunks[0]!]), fc.readChunks(t.blob, [t.chunks[0]!, t.chunks[1]!])]);
  assert.deepEqual(Buffer.from(a[0]!), Buffer.from(b[0]!));
  assert.equal(be.requests.length, 3);
  await fc.close();
});

test('FileCache: crash between data write and bitmap persist leaves the chunk not ready', async () => {
  const { t, work, be } = setup();
  const fc = cache(work, be, {
    beforeMarkReady: () => {
      throw new Error('simulated crash');
    },
  });
  const [d] = await fc.readChunks(t.blob, [t.chunks[2]!]);
  assert.deepEqual(Buffer.from(d!), Buffer.from(t.datas[2]!), 'the reader still gets its data');
  await fc.close(); // waits for the batched sync, which "crashes" before persisting the bit
  assert.equal(fc.metrics.cacheWriteErrors, 1);
  const fc2 = cache(work, be);
  await fc2.open(t.blob);
  assert.equal(fc2.isReady(t.blob, 2), false);
  await fc2.readChunks(t.blob, [t.chunks[2]!]);
  assert.equal(be.requests.length, 2, 'fetched again after the "crash"');
  await fc2.close();
});

test('FileCache: view() exposes a SharedArrayBuffer bitmap and the data path for worker reads', async () => {
  const { t, work, be } = setup();
  const fc = cache(work, be);
  await fc.open(t.blob);
  const v = fc.view(t.blob)!;
  assert.ok(v.bitmap.buffer instanceof SharedArrayBuffer);
  assert.equal(isChunkReady(v.bitmap, 3), false);
  await fc.readChunks(t.blob, [t.chunks[3]!]);
  assert.equal(isChunkReady(v.bitmap, 3), true);
  // What a worker does on a warm read: check the bit, pread the cache file.
  const fd = openSync(v.dataPath, 'r');
  const buf = Buffer.alloc(t.chunks[3]!.uncompressedSize);
  readSync(fd, buf, 0, buf.length, t.chunks[3]!.uncompressedOffset);
  closeSync(fd);
  assert.deepEqual(buf, Buffer.from(t.datas[3]!));
  await fc.close();
});

test('FileCache: with blob meta, user reads are amplified and .blob.meta is cached', async () => {
  const { t, work, be } = setup([4096, 8192, 4096, 4096], true);
  const fc = cache(work, be, { validate: false, useBlobMeta: true });
  const [d] = await fc.readChunks(t.blob, [t.chunks[0]!]);
  assert.deepEqual(Buffer.from(d!), Buffer.from(t.datas[0]!));
  assert.equal(be.requests.length, 2, 'blob meta + one amplified data read');
  await fc.close();
  const metaFile = join(work, `${t.blob.blobId}.blob.meta`);
  assert.ok(existsSync(metaFile));
  assert.equal(statSync(metaFile).size, 4096 + 4096);
  const fc2 = cache(work, be, { validate: false, useBlobMeta: true });
  await fc2.open(t.blob);
  for (let i = 0; i < 4; i++) assert.ok(fc2.isReady(t.blob, i), `chunk ${i} ready from amplification`);
  const rest = await fc2.readChunks(t.blob, t.chunks.slice(1));
  assert.deepEqual(rest.map((b) => Buffer.from(b)), t.datas.slice(1).map((x) => Buffer.from(x)));
  assert.equal(be.requests.length, 2);
  await fc2.close();
});

test('FileCache: a bootstrap record disagreeing with the blob CI is refused', async () => {
  const { t, work, be } = setup([4096, 8192], true);
  const fc = cache(work, be, { useBlobMeta: true });
  await assert.rejects(fc.readChunks(t.blob, [{ ...t.chunks[1]!, compressedSize: t.chunks[1]!.compressedSize - 1 }]), /blob CI says/);
  assert.equal(fc.isReady(t.blob, 1), false);
  await fc.close();
});

test('FileCache: a corrupt blob meta fails the read cleanly (no stuck in-flight entries)', async () => {
  const { t, work, be } = setup([4096, 8192], true);
  const bytes = Buffer.from(t.bytes);
  bytes[t.blob.metaCiOffset + t.blob.metaCiCompressedSize]! ^= 0xff; // first magic byte of the CI header
  writeFileSync(t.path, bytes);
  const fc = cache(work, be, { useBlobMeta: true });
  for (let i = 0; i < 2; i++) await assert.rejects(fc.readChunks(t.blob, [t.chunks[0]!]), (e: unknown) => e instanceof FormatError && e.code === 'ERR_FORMAT_BAD_MAGIC');
  assert.equal(fc.isReady(t.blob, 0), false);
  await fc.close();
});

test('FileCache: a .blob.data of the wrong size resets the blob cache', async () => {
  const { t, work, be } = setup();
  const fc = cache(work, be);
  await fc.readChunks(t.blob, t.chunks);
  await fc.close();
  const dataPath = join(work, `${t.blob.blobId}.blob.data`);
  writeFileSync(dataPath, 'short');
  const fc2 = cache(work, be);
  await fc2.open(t.blob);
  assert.equal(statSync(dataPath).size, t.blob.uncompressedSize);
  assert.equal(fc2.readyCount(t.blob), 0);
  const got = await fc2.readChunks(t.blob, [t.chunks[1]!]);
  assert.deepEqual(Buffer.from(got[0]!), Buffer.from(t.datas[1]!));
  await fc2.close();
});
