// Offline access to the chunks of an image's blobs stored as local files (nydus-image check/unpack):
// a single `--blob FILE` or a `--blob-dir` holding blobs named by their ids.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
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

  /** Reads, decompresses and (optionally) verifies one chunk; returns its uncompressed bytes. */
  readChunk(c: ChunkInfo, verify = false): Uint8Array {
    const blob = this.#blobs[c.blobIndex];
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
    if (verify) {
      const d = digest(data, blob?.digester ?? 'blake3');
      if (Buffer.compare(Buffer.from(d), Buffer.from(c.digest)) !== 0) {
        throw new FormatError('ERR_DIGEST_MISMATCH', `blob ${blob?.blobId}`, `${blob && isDigestKeyed(blob) ? name : `${name} at compressed offset ${c.compressedOffset}`}: digest ${hex(d)} != recorded ${hex(c.digest)}`);
      }
    }
    return data;
  }

  close(): void {
    for (const f of this.#fds.values()) closeSync(f.fd);
    this.#fds.clear();
  }
}
