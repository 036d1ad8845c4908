// Offline access to the chunks of an image's blobs stored as local files (nydus-image check/unpack):
// a single `--blob FILE` or a `--blob-dir` holding blobs named by their ids.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { blobMetaRange } from '../format/blob/index.js';
import { decodeZranIndex, groupByZranContext, inflateZranContext, isZranBlob, separateMetaBlobId, zranContextRange, type ZranIndex } from '../format/zran/context.js';
import type { BlobInfo } from '../format/blob-info.js';
import { chunkName, isChunkCompressed, isDigestKeyed, type ChunkInfo } from '../format/chunk-info.js';
import { decompress } from '../format/compress.js';
import { digest } from '../format/digest.js';
import { FormatError, NydusError } from '../util/errors.js';
import { hex } from '../util/bytes.js';

export interface LocalBlobSource {
  /** One blob file used for every blob index (upstream `-b/--blob`). */
  blobPath?: string;
  /** Directory of blobs named by blob id (upstream `-D/--blob-dir`). */
  blobDir?: string;
}

export class LocalBlobs {
  readonly #blobs: readonly BlobInfo[];
  readonly #src: LocalBlobSource;
  readonly #fds = new Map<number, { fd: number; size: number; path: string }>();
  readonly #zran = new Map<number, ZranIndex>();
  #lastCtx: { blob: number; k: number; out: Uint8Array } | undefined;

  constructor(blobs: readonly BlobInfo[], src: LocalBlobSource) {
    this.#blobs = blobs;
    this.#src = src;
  }

  #open(blobIndex: number): { fd: number; size: number; path: string } {
    let f = this.#fds.get(blobIndex);
    if (f) return f;
    const blob = this.#blobs[blobIndex];
    if (!blob) throw new FormatError('ERR_FORMAT_INVALID', 'chunk info', `blob index ${blobIndex} is not in the blob table (${this.#blobs.length} blobs)`);
    const path = this.#src.blobPath ?? join(this.#src.blobDir ?? '.', blob.blobId);
    if (!existsSync(path)) throw new NydusError('ERR_BACKEND_NOT_FOUND', `blob ${blob.blobId} not found at ${path}`);
    const fd = openSync(path, 'r');
    f = { fd, size: fstatSync(fd).size, path };
    this.#fds.set(blobIndex, f);
    return f;
  }

  #readAt(f: { fd: number; size: number; path: string }, offset: number, size: number, what: string): Buffer {
    if (offset + size > f.size) throw new FormatError('ERR_FORMAT_TRUNCATED', what, `${size} bytes at ${offset} lie beyond the end of ${f.path} (${f.size} bytes)`);
    const b = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(f.fd, b, got, size - got, offset + got);
      if (n === 0) throw new FormatError('ERR_FORMAT_TRUNCATED', what, `short read of ${f.path}`);
      got += n;
    }
    return b;
  }

  /** The zran index of a `*-ref` blob: its ref blob sits next to the layer (or in --blob-dir). */
  #zranIndex(blob: BlobInfo): ZranIndex {
    let z = this.#zran.get(blob.blobIndex);
    if (z) return z;
    const id = separateMetaBlobId(blob);
    const dir = this.#src.blobDir ?? (this.#src.blobPath ? dirname(this.#src.blobPath) : '.');
    const path = join(dir, id);
    if (!existsSync(path)) throw new NydusError('ERR_BACKEND_NOT_FOUND', `blob meta ${id} of zran blob ${blob.blobId} not found at ${path}`);
    const fd = openSync(path, 'r');
    try {
      const range = blobMetaRange(blob)!;
      z = decodeZranIndex(this.#readAt({ fd, size: fstatSync(fd).size, path }, range.offset, range.size, `blob meta ${id}`), blob);
    } finally {
      closeSync(fd);
    }
    this.#zran.set(blob.blobIndex, z);
    return z;
  }

  /** A zran chunk: inflate its context from the original layer (the last context is kept). */
  #readZranChunk(blob: BlobInfo, c: ChunkInfo): Uint8Array {
    const idx = this.#zranIndex(blob);
    const g = groupByZranContext(idx, [c.index], blob);
    const [k, [m]] = [...g][0]! as [number, { chunk: number; offset: number; size: number }[]];
    if (this.#lastCtx?.blob !== blob.blobIndex || this.#lastCtx.k !== k) {
      const ctx = idx.contexts[k]!;
      const range = zranContextRange(ctx);
      const bytes = this.#readAt(this.#open(c.blobIndex), range.offset, range.size, `zran context ${k} of blob ${blob.blobId}`);
      this.#lastCtx = { blob: blob.blobIndex, k, out: inflateZranContext(ctx, bytes, `zran context ${k} of blob ${blob.blobId}`) };
    }
    if (m!.size !== c.uncompressedSize) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `chunk ${c.index}: CI size ${m!.size} differs from the bootstrap's ${c.uncompressedSize}`);
    return this.#lastCtx.out.slice(m!.offset, m!.offset + m!.size);
  }

  /** Reads, decompresses and (optionally) verifies one chunk; returns its uncompressed bytes. */
  readChunk(c: ChunkInfo, verify = false): Uint8Array {
    const blob = this.#blobs[c.blobIndex];
    if (blob && isZranBlob(blob)) {
      const data = this.#readZranChunk(blob, c);
      if (verify) this.#verify(blob, c, data);
      return data;
    }
    const f = this.#open(c.blobIndex);
    const name = blob ? chunkName(blob, c) : `chunk ${c.index}`;
    if (c.compressedOffset + c.compressedSize > f.size) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', `blob ${blob?.blobId ?? c.blobIndex}`, `${name} (${c.compressedSize} bytes at ${c.compressedOffset}) lies beyond the end of ${f.path} (${f.size} bytes)`);
    }
    const stored = Buffer.allocUnsafe(c.compressedSize);
    let got = 0;
    while (got < stored.length) {
      const n = readSync(f.fd, stored, got, stored.length - got, c.compressedOffset + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== stored.length) throw new FormatError('ERR_FORMAT_TRUNCATED', `blob ${blob?.blobId}`, `short read of ${name}`);
    const compressor = blob?.compressor ?? 'none';
    let data: Uint8Array = stored;
    if (isChunkCompressed(c)) {
      try {
        data = decompress(stored, compressor, c.uncompressedSize);
      } catch (e) {
        throw new FormatError('ERR_COMPRESSION', `blob ${blob?.blobId}`, `${name} at compressed offset ${c.compressedOffset}: ${(e as Error).message}`, undefined, { cause: e });
      }
    }
    if (!isChunkCompressed(c) && data.length !== c.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob?.blobId}`, `${name} is stored raw but its sizes differ (${c.compressedSize} vs ${c.uncompressedSize})`);
    }
    if (verify) this.#verify(blob, c, data);
    return data;
  }

  #verify(blob: BlobInfo | undefined, c: ChunkInfo, data: Uint8Array): void {
    const d = digest(data, blob?.digester ?? 'blake3');
    if (Buffer.compare(Buffer.from(d), Buffer.from(c.digest)) !== 0) {
      const name = blob ? chunkName(blob, c) : `chunk ${c.index}`;
      throw new FormatError('ERR_DIGEST_MISMATCH', `blob ${blob?.blobId}`, `${blob && isDigestKeyed(blob) ? name : `${name} at compressed offset ${c.compressedOffset}`}: digest ${hex(d)} != recorded ${hex(c.digest)}`);
    }
  }

  close(): void {
    for (const f of this.#fds.values()) closeSync(f.fd);
    this.#fds.clear();
  }
}
