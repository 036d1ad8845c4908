// Batch chunk structures against upstream's own test vectors (storage/src/meta/batch.rs
// test_batch_inflate_context, chunk_info_v2.rs test_new_chunk_on_disk) plus decode checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../util/errors.js';
import { compressChunk } from '../compress.js';
import { BlobFeatures } from '../constants.js';
import {
  BATCH_INFLATE_CONTEXT_SIZE, batchCiData, batchCiEntry, batchRefOf, decodeBatchContexts, decodeBatchInflateContext, decodeChunkInfoV2,
  encodeBatchContexts, encodeBatchInflateContext, encodeChunkInfoV2, inflateBatch, isBatchCi, sliceBatch, type BlobMetaHeader,
} from './index.js';

test('BatchInflateContext: 40 bytes, compressed_size then uncompressed_batch_size (upstream vector)', () => {
  const b = encodeBatchInflateContext({ compressedSize: 0x20, uncompressedBatchSize: 0x30 });
  const want = new Uint8Array(40);
  want[0] = 0x20;
  want[4] = 0x30;
  assert.equal(BATCH_INFLATE_CONTEXT_SIZE, 40);
  assert.deepEqual(b, want);
  assert.deepEqual(decodeBatchInflateContext(b), { compressedSize: 0x20, uncompressedBatchSize: 0x30 });
});

test('CI v2 batch entry: data = index << 32 | offset in batch (upstream vector 137438953520)', () => {
  assert.equal(batchCiData(0x20, 0x30), 137438953520n);
  const e = batchCiEntry(0x1234, 0x5000, 0x100, 0x20, 0x30);
  const bytes = encodeChunkInfoV2(e);
  const d = decodeChunkInfoV2(bytes);
  assert.ok(isBatchCi(d));
  assert.equal(d.flags, 0x05); // COMPRESSED | BATCH
  assert.deepEqual([d.compressedOffset, d.compressedSize, d.uncompressedOffset, d.uncompressedSize, d.data], [0x1234, 0, 0x5000, 0x100, 137438953520n]);
  // uncomp_info high byte = flags, as upstream's (flags << 56).
  assert.equal(bytes[7], 0x05);
});

function header(ciArrayLen: number, count: number, features = BlobFeatures.BATCH | BlobFeatures.CHUNK_INFO_V2): BlobMetaHeader {
  return { features, ciCompressor: 'none', ciEntries: 1, ciOffset: 0, ciCompressedSize: 0, ciUncompressedSize: 0, ciZranOffset: ciArrayLen, ciZranSize: count * 40, ciZranCount: count };
}

test('decodeBatchContexts reads the table after the CI array; batchRefOf validates like upstream', () => {
  const ci = encodeChunkInfoV2(batchCiEntry(4096, 0, 10, 1, 5));
  const ctx = encodeBatchContexts([{ compressedSize: 7, uncompressedBatchSize: 9 }, { compressedSize: 12, uncompressedBatchSize: 20 }]);
  const data = new Uint8Array([...ci, ...ctx]);
  const ctxs = decodeBatchContexts(data, header(ci.length, 2));
  assert.deepEqual(ctxs, [{ compressedSize: 7, uncompressedBatchSize: 9 }, { compressedSize: 12, uncompressedBatchSize: 20 }]);
  assert.deepEqual(decodeBatchContexts(data, header(ci.length, 2, BlobFeatures.CHUNK_INFO_V2)), [], 'no BATCH feature, no table');
  const e = decodeChunkInfoV2(ci);
  assert.deepEqual(batchRefOf(e, ctxs, 'c'), { index: 1, compressedOffset: 4096, compressedSize: 12, uncompressedBatchSize: 20, offsetInBatch: 5 });
  assert.throws(() => batchRefOf(e, ctxs.slice(0, 1), 'c'), (x: unknown) => x instanceof FormatError && /batch index 1 is too big/.test(x.message));
  assert.throws(() => batchRefOf({ ...e, uncompressedSize: 16 }, ctxs, 'c'), /exceeds its 20 bytes/);
  assert.throws(() => decodeBatchContexts(data, header(ci.length, 3)), /does not fit/);
  const bad = encodeBatchContexts([{ compressedSize: 30, uncompressedBatchSize: 20 }]);
  assert.throws(() => decodeBatchContexts(new Uint8Array([...ci, ...bad]), header(ci.length, 1)), /compressed size 30/);
});

test('inflateBatch: compressed and raw (equal sizes) batches; slices', () => {
  const raw = new TextEncoder().encode('hello hello hello hello hello hello world');
  const z = compressChunk(raw, 'zstd');
  assert.ok(z.compressed);
  const ref = { index: 0, compressedOffset: 0, compressedSize: z.data.length, uncompressedBatchSize: raw.length, offsetInBatch: 36 };
  assert.equal(new TextDecoder().decode(sliceBatch(inflateBatch(z.data, ref, 'zstd', 'b'), ref, 5)), 'world');
  const rawRef = { ...ref, compressedSize: raw.length };
  assert.equal(inflateBatch(raw, rawRef, 'zstd', 'b'), raw);
  assert.throws(() => inflateBatch(z.data.subarray(1), ref, 'zstd', 'b'), /got/);
  const broken = z.data.slice();
  broken[broken.length >> 1]! ^= 0xff;
  assert.throws(() => {
    const out = inflateBatch(broken, ref, 'zstd', 'b');
    if (Buffer.compare(out, raw) !== 0) throw new FormatError('ERR_COMPRESSION', 'b', 'batch inflated to other bytes');
  }, FormatError);
});
