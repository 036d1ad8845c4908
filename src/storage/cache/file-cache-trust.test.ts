// Issue 11 defect 1 and issue 18: cached bytes are re-validated, one bootstrap cannot poison the
// cache another reads, v5 blobs without the extended blob table are keyed by digest and place, and
// a chunk record that would need an impossible read fails cleanly (11.2).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readSync, closeSync, writeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobFeatures } from '../../format/constants.js';
import type { ChunkInfo } from '../../format/chunk-info.js';
import { LocalFsBackend } from '../backend/localfs.js';
import { RecordingBackend, makeTestBlob, type TestBlob } from '../test-support.js';
import { FileCache, type FileCacheOptions } from './file-cache.js';
import { NoCache } from './no-cache.js';
import { testDir } from '../../../test/helpers/tmp.js';

const backends: RecordingBackend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

function setup(sizes: number[], withCi = false): { t: TestBlob; work: string; be: RecordingBackend } {
  const root = testDir('nydus-fc-trust-');
  const blobs = join(root, 'blobs');
  const t = makeTestBlob(blobs, sizes, { withCi });
  const be = new RecordingBackend(new LocalFsBackend({ dir: blobs }));
  backends.push(be);
  return { t, work: join(root, 'cache'), be };
}

const cache = (work: string, be: RecordingBackend, o: Partial<FileCacheOptions> = {}): FileCache => new FileCache({ workDir: work, backend: be, ...o });
const bufs = (xs: Uint8Array[]): Buffer[] => xs.map((x) => Buffer.from(x));

function flipCached(work: string, t: TestBlob, c: ChunkInfo): void {
  const fd = openSync(join(work, `${t.blob.blobId}.blob.data`), 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, c.uncompressedOffset + 7);
  b[0]! ^= 0x5a;
  writeSync(fd, b, 0, 1, c.uncompressedOffset + 7);
  closeSync(fd);
}

test('validation on (v6 with blob meta): a flipped byte in .blob.data is re-fetched, never served', async () => {
  const { t, work, be } = setup([65536, 65536, 4096], true);
  const fc = cache(work, be, { validate: true, useBlobMeta: true });
  await fc.readChunks(t.blob, t.chunks);
  await fc.close();
  const before = be.requests.length;
  flipCached(work, t, t.chunks[1]!);
  const fc2 = cache(work, be, { validate: true, useBlobMeta: true });
  await fc2.open(t.blob);
  assert.ok(fc2.isReady(t.blob, 1), 'persisted as ready');
  assert.equal(fc2.view(t.blob)!.verify, true, 'workers verify too');
  assert.deepEqual(bufs(await fc2.readChunks(t.blob, t.chunks)), bufs(t.datas));
  assert.equal(fc2.metrics.cacheRevalidationFailures, 1);
  assert.ok(be.requests.length > before, 're-fetched from the backend');
  // Repaired in place: a third instance serves it from the cache.
  await fc2.close();
  const n = be.requests.length;
  const fc3 = cache(work, be, { validate: true, useBlobMeta: true });
  assert.deepEqual(bufs(await fc3.readChunks(t.blob, [t.chunks[1]!])), bufs([t.datas[1]!]));
  assert.equal(be.requests.length, n);
  await fc3.close();
});

test('validation off, v6 with blob meta: warm reads are not re-hashed (the blob vouches for places)', async () => {
  const { t, work, be } = setup([65536, 4096], true);
  const fc = cache(work, be, { validate: false, useBlobMeta: true });
  await fc.readChunks(t.blob, t.chunks);
  assert.equal(fc.view(t.blob)!.verify, false);
  await fc.close();
});

test('v5-style blob (no blob meta): a forged record cannot poison the chunk another bootstrap reads', async () => {
  const { t, work, be } = setup([65536, 65536, 65536]);
  // The forged bootstrap's record for chunk 1 carries chunk 0's stored range and digest.
  const c0 = t.chunks[0]!;
  const forged: ChunkInfo = { ...t.chunks[1]!, compressedOffset: c0.compressedOffset, compressedSize: c0.compressedSize, flags: c0.flags, digest: c0.digest, crc32: c0.crc32 };
  const evil = cache(work, be, { validate: false });
  assert.deepEqual(bufs(await evil.readChunks(t.blob, [forged])), bufs([t.datas[0]!]), 'the forged image gets what its record names');
  await evil.close();
  // The genuine image, later or concurrently, with validation off, reads chunk 1 right.
  const genuine = cache(work, be, { validate: false });
  assert.deepEqual(bufs(await genuine.readChunks(t.blob, [t.chunks[1]!])), bufs([t.datas[1]!]));
  assert.equal(genuine.view(t.blob)!.verify, true);
  // Both live at once in one process: still right bytes for each.
  const evil2 = cache(work, be, { validate: false });
  await evil2.readChunks(t.blob, [forged]);
  await evil2.close();
  assert.deepEqual(bufs(await genuine.readChunks(t.blob, [t.chunks[1]!])), bufs([t.datas[1]!]));
  await genuine.close();
});

test('v5 without extended blob table: chunks all index 0 are keyed by digest and place', async () => {
  const { t, work, be } = setup([65536, 30000, 65536, 4096]);
  const blob = { ...t.blob, features: BlobFeatures._V5_NO_EXT_BLOB_TABLE, chunkCount: 0, uncompressedSize: 0 };
  const chunks = t.chunks.map((c) => ({ ...c, index: 0 }));
  const fc = cache(work, be, { validate: false });
  assert.deepEqual(bufs(await fc.readChunks(blob, chunks)), bufs(t.datas));
  assert.equal(be.requests.length, 1, 'still one merged request');
  assert.equal(fc.view(blob), undefined, 'no bitmap for workers: the main thread serves these');
  for (const c of chunks) assert.ok(fc.isReady(blob, c));
  const n = be.requests.length;
  assert.deepEqual(bufs(await fc.readChunks(blob, [chunks[3]!, chunks[0]!, chunks[2]!])), bufs([t.datas[3]!, t.datas[0]!, t.datas[2]!]));
  assert.equal(be.requests.length, n, 'served from the cache');
  // Concurrent readers of different chunks do not join each other's fetch.
  const fc2 = cache(work, be, { validate: false });
  const got = await Promise.all(chunks.map((c) => fc2.readChunks(blob, [c])));
  assert.deepEqual(got.map((g) => Buffer.from(g[0]!)), bufs(t.datas));
  await fc2.close();
  await fc.close();
  assert.ok(readFileSync(join(work, `${blob.blobId}.blob.data`)).length >= 65536 * 2);
  const nc = new NoCache({ backend: be });
  assert.deepEqual(bufs(await nc.readChunks(blob, chunks)), bufs(t.datas), 'dummycache too');
});

test('a chunk record with compressed size >= 2^31 fails the read cleanly (11.2)', async () => {
  const { t, work, be } = setup([65536, 4096]);
  const huge: ChunkInfo = { ...t.chunks[1]!, compressedSize: 2 ** 31 };
  const fc = cache(work, be, { validate: true });
  await assert.rejects(fc.readChunks(t.blob, [huge]), (e: Error & { code?: string }) => e.code === 'ERR_FORMAT_INVALID' && /compressed size/.test(e.message));
  await assert.rejects(fc.readChunks(t.blob, [{ ...t.chunks[0]!, uncompressedSize: 0 }]), /uncompressed size/);
  assert.deepEqual(bufs(await fc.readChunks(t.blob, t.chunks)), bufs(t.datas), 'the cache still works');
  await fc.close();
  await assert.rejects(new NoCache({ backend: be }).readChunks(t.blob, [huge]), /compressed size/);
  assert.ok(be.requests.every((r) => r.length < 2 ** 31));
});
