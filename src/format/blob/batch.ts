// Batch chunks (`nydus-image create --batch-size`): small chunks are concatenated uncompressed and
// compressed together as one "batch"; each chunk's CI v2 entry carries CHUNK_V2_FLAG_BATCH, the
// batch's compressed offset (compressed size 0) and in `data` the batch index (high 32 bits) and
// its uncompressed offset inside the batch (low 32 bits). The blob meta holds, right after the CI
// array, one BatchInflateContext per batch, located by the header's ci_zran_offset/size/count.
// Upstream: storage/src/meta/batch.rs (BatchInflateContext, BatchContextGenerator),
// storage/src/meta/chunk_info_v2.rs (set_batch_index, set_uncompressed_offset_in_batch_buf).
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { decompress } from '../compress.js';
import { BlobFeatures, type Compressor } from '../constants.js';
import { CHUNK_V2_FLAG_BATCH, CHUNK_V2_FLAG_COMPRESSED, type CiEntry } from './ci-entry.js';
import type { BlobMetaHeader } from './meta-header.js';

/** sizeof(BatchInflateContext): compressed_size u32, uncompressed_batch_size u32, 4 × u64 reserved. */
export const BATCH_INFLATE_CONTEXT_SIZE = 40;

export interface BatchInflateContext {
  /** Bytes of the whole batch in the blob (equal to uncompressedBatchSize: stored raw). */
  compressedSize: number;
  /** Bytes of the concatenated chunks (not 4 KiB aligned). */
  uncompressedBatchSize: number;
}

export function decodeBatchInflateContext(buf: Uint8Array, offset = 0): BatchInflateContext {
  const r = new Reader(buf, offset, BATCH_INFLATE_CONTEXT_SIZE, 'BatchInflateContext');
  return { compressedSize: r.u32(0), uncompressedBatchSize: r.u32(4) };
}

export function encodeBatchInflateContext(c: BatchInflateContext, out: Uint8Array = new Uint8Array(BATCH_INFLATE_CONTEXT_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + BATCH_INFLATE_CONTEXT_SIZE);
  const w = new Writer(out, offset);
  w.u32(0, c.compressedSize);
  w.u32(4, c.uncompressedBatchSize);
  return out;
}

export function encodeBatchContexts(ctxs: readonly BatchInflateContext[]): Uint8Array {
  const out = new Uint8Array(ctxs.length * BATCH_INFLATE_CONTEXT_SIZE);
  ctxs.forEach((c, i) => encodeBatchInflateContext(c, out, i * BATCH_INFLATE_CONTEXT_SIZE));
  return out;
}

/**
 * The batch context table of a BATCH blob from its uncompressed CI data (`ciData` = CI array +
 * contexts) and header; [] for other blobs. Each context must describe a batch that fits 32 bits
 * and is no bigger compressed than uncompressed (upstream validate()).
 */
export function decodeBatchContexts(ciData: Uint8Array, header: BlobMetaHeader): BatchInflateContext[] {
  if (!(header.features & BlobFeatures.BATCH)) return [];
  const { ciZranOffset: off, ciZranCount: n } = header;
  const size = n * BATCH_INFLATE_CONTEXT_SIZE;
  if (off + size > ciData.length || (header.ciZranSize !== 0 && header.ciZranSize < size)) {
    throw new FormatError('ERR_FORMAT_INVALID', 'blob meta header', `batch context table (${n} × ${BATCH_INFLATE_CONTEXT_SIZE} bytes at ${off}, ci_zran_size ${header.ciZranSize}) does not fit the ${ciData.length} bytes of CI data`);
  }
  const out: BatchInflateContext[] = new Array<BatchInflateContext>(n);
  for (let i = 0; i < n; i++) {
    const c = decodeBatchInflateContext(ciData, off + i * BATCH_INFLATE_CONTEXT_SIZE);
    if (c.compressedSize === 0 || c.compressedSize > c.uncompressedBatchSize) {
      throw new FormatError('ERR_FORMAT_INVALID', 'BatchInflateContext', `batch ${i}: compressed size ${c.compressedSize} vs uncompressed ${c.uncompressedBatchSize}`);
    }
    out[i] = c;
  }
  return out;
}

/** Where a batch chunk's bytes are: the whole batch to fetch and inflate, then the slice. */
export interface BatchRef {
  index: number;
  /** Blob offset and stored size of the whole batch. */
  compressedOffset: number;
  compressedSize: number;
  uncompressedBatchSize: number;
  /** The chunk's bytes are [offsetInBatch, offsetInBatch + uncompressedSize) of the inflated batch. */
  offsetInBatch: number;
}

export function isBatchCi(e: CiEntry): boolean {
  return (e.flags & CHUNK_V2_FLAG_BATCH) !== 0;
}

/** CI v2 `data` word of a batch chunk (upstream set_batch_index + set_uncompressed_offset_in_batch_buf). */
export function batchCiData(batchIndex: number, offsetInBatch: number): bigint {
  return (BigInt(batchIndex >>> 0) << 32n) | BigInt(offsetInBatch >>> 0);
}

/** A batch chunk's CI v2 entry as the builder writes it (upstream BatchContextGenerator::generate_chunk_info). */
export function batchCiEntry(batchOffset: number, uncompressedOffset: number, uncompressedSize: number, batchIndex: number, offsetInBatch: number): CiEntry {
  return {
    compressedOffset: batchOffset,
    compressedSize: 0,
    uncompressedOffset,
    uncompressedSize,
    compressed: true,
    flags: CHUNK_V2_FLAG_BATCH | CHUNK_V2_FLAG_COMPRESSED,
    data: batchCiData(batchIndex, offsetInBatch),
  };
}

/**
 * The batch a CI entry points into, checked against the context table (upstream
 * BlobChunkInfoV2Ondisk::validate for batch chunks); undefined for a non-batch entry.
 */
export function batchRefOf(e: CiEntry, ctxs: readonly BatchInflateContext[], what: string): BatchRef | undefined {
  if (!isBatchCi(e)) return undefined;
  const index = Number(e.data >> 32n);
  const offsetInBatch = Number(e.data & 0xffff_ffffn);
  const c = ctxs[index];
  if (!c) throw new FormatError('ERR_FORMAT_INVALID', what, `batch index ${index} is too big, the blob has ${ctxs.length} batches`);
  if (offsetInBatch + e.uncompressedSize > c.uncompressedBatchSize) {
    throw new FormatError('ERR_FORMAT_INVALID', what, `range ${offsetInBatch}+${e.uncompressedSize} in batch ${index} exceeds its ${c.uncompressedBatchSize} bytes`);
  }
  return { index, compressedOffset: e.compressedOffset, compressedSize: c.compressedSize, uncompressedBatchSize: c.uncompressedBatchSize, offsetInBatch };
}

/** Batches are stored raw when compression would not shrink them (sizes equal, as CI v1 marks raw chunks). */
export function isBatchStoredRaw(b: Pick<BatchRef, 'compressedSize' | 'uncompressedBatchSize'>): boolean {
  return b.compressedSize === b.uncompressedBatchSize;
}

/**
 * Inflates a whole batch read from the blob (`stored` = its compressedSize bytes) with the blob's
 * compressor; raw batches are returned as they are. Throws ERR_COMPRESSION naming `what`.
 */
export function inflateBatch(stored: Uint8Array, ref: BatchRef, compressor: Compressor, what: string): Uint8Array {
  if (stored.length !== ref.compressedSize) throw new FormatError('ERR_FORMAT_TRUNCATED', what, `batch ${ref.index}: got ${stored.length} of its ${ref.compressedSize} bytes at ${ref.compressedOffset}`);
  if (isBatchStoredRaw(ref)) return stored;
  try {
    return decompress(stored, compressor, ref.uncompressedBatchSize);
  } catch (e) {
    throw new FormatError('ERR_COMPRESSION', what, `batch ${ref.index} at compressed offset ${ref.compressedOffset}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
}

/** One chunk's bytes out of its inflated batch. */
export function sliceBatch(batch: Uint8Array, ref: BatchRef, uncompressedSize: number): Uint8Array {
  return batch.subarray(ref.offsetInBatch, ref.offsetInBatch + uncompressedSize);
}
