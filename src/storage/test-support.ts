// Test support for storage tests (not used by production code): a generated blob laid out as
// nydus-image does (§3.4: packed compressed offsets, 4 KiB aligned uncompressed offsets, optional
// CI array + header at the end, §7.2/§7.3) and a counting/delaying backend wrapper.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { align } from '../util/bytes.js';
import { emptyBlobInfo, type BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import { compressChunk } from '../format/compress.js';
import { BlobChunkFlags, BlobFeatures, type Compressor, type Digester } from '../format/constants.js';
import { digest } from '../format/digest.js';
import { encodeBlobMetaHeader, encodeCiArray, type CiEntry } from '../format/blob/index.js';
import type { BlobBackend, BackendMetrics } from './backend/backend.js';

export interface TestBlob {
  blob: BlobInfo;
  chunks: ChunkInfo[];
  datas: Uint8Array[];
  path: string;
  bytes: Uint8Array;
}

/**
 * Writes `<dir>/<blob_id>`: `sizes.length` chunks; even chunks compressible, odd ones random
 * (stored raw, COMPRESSED clear). With `withCi`, the CI v1 array + 4 KiB header follow the data.
 */
export function makeTestBlob(dir: string, sizes: number[], o: { compressor?: Compressor; digester?: Digester; withCi?: boolean; blobIndex?: number } = {}): TestBlob {
  const compressor = o.compressor ?? 'zstd';
  const digester = o.digester ?? 'blake3';
  const datas: Uint8Array[] = [];
  const parts: Uint8Array[] = [];
  const chunks: ChunkInfo[] = [];
  let coff = 0;
  let uoff = 0;
  sizes.forEach((size, i) => {
    const data = i % 2 === 0 ? new Uint8Array(size).map((_, k) => (k * 7 + i) % 13) : new Uint8Array(randomBytes(size));
    const c = compressChunk(data, compressor);
    datas.push(data);
    parts.push(c.data);
    chunks.push({
      digest: digest(data, digester),
      blobIndex: o.blobIndex ?? 0,
      flags: c.compressed ? BlobChunkFlags.COMPRESSED : 0,
      compressedSize: c.data.length,
      uncompressedSize: size,
      compressedOffset: coff,
      uncompressedOffset: uoff,
      fileOffset: 0,
      index: i,
      crc32: 0,
    });
    coff += c.data.length;
    uoff = align(uoff + size, 4096);
  });
  const features = BlobFeatures.ALIGNED;
  const ciParts: Uint8Array[] = [];
  let ci: { offset: number; size: number } | undefined;
  if (o.withCi) {
    const entries: CiEntry[] = chunks.map((c) => ({ compressedOffset: c.compressedOffset, compressedSize: c.compressedSize, uncompressedOffset: c.uncompressedOffset, uncompressedSize: c.uncompressedSize, compressed: (c.flags & 1) !== 0, flags: c.flags & 1, data: 0n }));
    const arr = encodeCiArray(entries, false);
    const header = encodeBlobMetaHeader({ features, ciCompressor: 'none', ciEntries: chunks.length, ciOffset: coff, ciCompressedSize: arr.length, ciUncompressedSize: arr.length, ciZranOffset: 0, ciZranSize: 0, ciZranCount: 0 });
    ciParts.push(arr, header);
    ci = { offset: coff, size: arr.length };
  }
  const bytes = new Uint8Array(Buffer.concat([...parts, ...ciParts]));
  const blobId = createHash('sha256').update(bytes).digest('hex');
  const blob: BlobInfo = {
    ...emptyBlobInfo(blobId, o.blobIndex ?? 0, 0x10000, compressor, digester),
    chunkCount: chunks.length,
    features,
    compressedSize: bytes.length,
    uncompressedSize: uoff,
    ...(ci ? { metaCiCompressor: 'none' as const, metaCiOffset: ci.offset, metaCiCompressedSize: ci.size, metaCiUncompressedSize: ci.size } : {}),
  };
  mkdirSync(dir, { recursive: true });
  const path = join(dir, blobId);
  writeFileSync(path, bytes);
  return { blob, chunks, datas, path, bytes };
}

/** Wraps a backend: records every request, optionally delays it. */
export class RecordingBackend implements BlobBackend {
  readonly type: string;
  readonly requests: Array<{ blobId: string; offset: number; length: number }> = [];
  delayMs = 0;
  /** When set, reads wait for it after being recorded (tests hold a request in flight). */
  gate: Promise<void> | undefined;
  readonly #inner: BlobBackend;

  constructor(inner: BlobBackend) {
    this.#inner = inner;
    this.type = inner.type;
  }

  get metrics(): BackendMetrics {
    return this.#inner.metrics;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.requests.push({ blobId, offset, length });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.gate) await this.gate;
    return this.#inner.read(blobId, offset, length, signal);
  }

  blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    return this.#inner.blobSize(blobId, signal);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
