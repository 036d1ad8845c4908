import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { ChunkInfo } from '../format/chunk-info.js';
import { FormatError } from '../util/errors.js';
import { LocalFsBackend } from './backend/localfs.js';
import { checkChunkAgainstCi, loadBlobMetaFromBackend, planMergedReads, readChunksFromBackend } from './blob-io.js';
import { RecordingBackend, makeTestBlob } from './test-support.js';
import { testDir } from '../../test/helpers/tmp.js';

function ck(index: number, compressedOffset: number, compressedSize: number): ChunkInfo {
  return { digest: new Uint8Array(32), blobIndex: 0, flags: 0, compressedSize, uncompressedSize: compressedSize, compressedOffset, uncompressedOffset: 0, fileOffset: 0, index, crc32: 0 };
}
const plan = (cs: ChunkInfo[], merge: number, gap = 0): Array<[number, number, number[]]> => planMergedReads(cs, merge, gap).map((r) => [r.offset, r.length, r.chunks.map((c) => c.index)]);

test('planMergedReads() merges adjacent chunks up to the merge size', () => {
  const cs = [ck(0, 0, 100), ck(1, 100, 100), ck(2, 200, 100), ck(3, 300, 100)];
  assert.deepEqual(plan(cs, 1 << 20), [[0, 400, [0, 1, 2, 3]]]);
  assert.deepEqual(plan(cs, 250), [[0, 200, [0, 1]], [200, 200, [2, 3]]]);
  assert.deepEqual(plan(cs, 100), [[0, 100, [0]], [100, 100, [1]], [200, 100, [2]], [300, 100, [3]]]);
});

test('planMergedReads() splits at gaps unless within maxGap, sorts, drops duplicates, isolates oversize chunks', () => {
  const cs = [ck(2, 300, 50), ck(0, 0, 100), ck(1, 100, 100), ck(1, 100, 100)];
  assert.deepEqual(plan(cs, 1 << 20), [[0, 200, [0, 1]], [300, 50, [2]]]);
  assert.deepEqual(plan(cs, 1 << 20, 100), [[0, 350, [0, 1, 2]]]);
  assert.deepEqual(plan([ck(0, 0, 10), ck(1, 10, 5000), ck(2, 5010, 10)], 1000), [[0, 10, [0]], [10, 5000, [1]], [5010, 10, [2]]]);
  assert.deepEqual(plan([], 1000), []);
});

// Both digesters: a reader that always hashed with blake3 must fail the sha256 case.
for (const digester of ['blake3', 'sha256'] as const) {
  test(`readChunksFromBackend() decompresses, merges and verifies (${digester})`, async () => {
    const dir = testDir('nydus-blobio-');
    const t = makeTestBlob(dir, [65536, 65536, 20000, 4096], { digester });
    assert.equal(t.blob.digester, digester);
    assert.ok(t.chunks.some((c) => c.flags & 1) && t.chunks.some((c) => !(c.flags & 1)), 'both compressed and raw chunks');
    const be = new RecordingBackend(new LocalFsBackend({ dir }));
    const got = await readChunksFromBackend(be, t.blob, [t.chunks[3]!, t.chunks[0]!, t.chunks[1]!], 1 << 20, { validate: true });
    assert.deepEqual(got, [t.datas[3], t.datas[0], t.datas[1]].map((d) => Buffer.from(d!)));
    assert.equal(be.requests.length, 2, 'chunks 0+1 merged, 3 alone');
  });

  test(`readChunksFromBackend() reports a digest mismatch naming blob and chunk; a truncated blob too (${digester})`, async () => {
    const dir = testDir('nydus-blobio-');
    const t = makeTestBlob(dir, [8192, 8192], { digester });
    const bad = { ...t.chunks[1]!, digest: new Uint8Array(32).fill(1) };
    await assert.rejects(readChunksFromBackend(new LocalFsBackend({ dir }), t.blob, [t.chunks[0]!, bad], 1 << 20, { validate: true }), (e: unknown) => {
      assert.ok(e instanceof FormatError);
      assert.equal(e.code, 'ERR_DIGEST_MISMATCH');
      assert.match(e.message, new RegExp(`chunk 1 of blob "${t.blob.blobId}"`));
      return true;
    });
    // Without validation the same record reads fine.
    await readChunksFromBackend(new LocalFsBackend({ dir }), t.blob, [bad], 1 << 20);
    writeFileSync(t.path, t.bytes.subarray(0, t.chunks[1]!.compressedOffset + 10));
    await assert.rejects(readChunksFromBackend(new LocalFsBackend({ dir }), t.blob, [t.chunks[1]!], 1 << 20), (e: unknown) => e instanceof FormatError && e.code === 'ERR_FORMAT_TRUNCATED' && /chunk 1 of blob/.test(e.message));
  });
}

test('loadBlobMetaFromBackend() reads the CI array; checkChunkAgainstCi() catches disagreeing records', async () => {
  const dir = testDir('nydus-blobio-');
  const t = makeTestBlob(dir, [4096, 10000, 4096], { withCi: true });
  const be = new LocalFsBackend({ dir });
  const meta = await loadBlobMetaFromBackend(be, t.blob);
  assert.ok(meta);
  assert.equal(meta.chunks.length, 3);
  assert.equal(meta.headerBytes.length, 4096);
  for (const c of t.chunks) checkChunkAgainstCi(t.blob, c, meta.chunks);
  assert.throws(() => checkChunkAgainstCi(t.blob, { ...t.chunks[1]!, compressedOffset: 1 }, meta.chunks), /chunk 1 of blob .*blob CI says/);
  const noCi = makeTestBlob(dir, [4096]);
  assert.equal(await loadBlobMetaFromBackend(be, noCi.blob), undefined);
});
