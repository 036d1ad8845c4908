// Chunk deduplication by digest (spec §3.4) and the blob table of a build. Lookups go to the chunk
// dict first, then to chunks of this build and of the parent bootstrap; a hit reuses the existing
// chunk's blob index, chunk index and offsets. Parent blobs keep their indexes; a chunk-dict blob
// joins the table when one of its chunks is first reused; this build's blob joins when its first
// chunk is written (upstream BlobManager / HashChunkDict).
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Digester } from '../format/constants.js';
import { NydusError } from '../util/errors.js';
import { isReg, type ImageModel, type TreeNode } from '../format/image-model.js';

export function digestKey(d: Uint8Array): string {
  return Buffer.from(d.buffer, d.byteOffset, Math.min(32, d.byteLength)).toString('latin1');
}

export class BlobTable {
  readonly blobs: BlobInfo[] = [];
  #byDictBlob = new Map<BlobInfo, number>();
  #own: number | undefined;

  /** Blobs of the parent bootstrap, at their original indexes (call first). */
  addParentBlobs(blobs: readonly BlobInfo[]): void {
    for (const b of blobs) this.blobs.push({ ...b, blobIndex: this.blobs.length });
  }

  /** Index of a chunk-dict blob, adding it to the table on first use. */
  dictBlobIndex(blob: BlobInfo): number {
    let i = this.#byDictBlob.get(blob);
    if (i === undefined) {
      const same = this.blobs.findIndex((b) => b.blobId === blob.blobId);
      i = same >= 0 ? same : this.blobs.push({ ...blob, blobIndex: this.blobs.length }) - 1;
      this.#byDictBlob.set(blob, i);
    }
    return i;
  }

  /** Index of the blob this build writes, reserved when its first chunk is stored. */
  ownBlobIndex(placeholder: () => BlobInfo): number {
    if (this.#own === undefined) {
      this.#own = this.blobs.length;
      this.blobs.push({ ...placeholder(), blobIndex: this.#own });
    }
    return this.#own;
  }

  get ownIndex(): number | undefined {
    return this.#own;
  }
}

function forEachChunk(n: TreeNode, fn: (c: ChunkInfo) => void): void {
  if (isReg(n.mode)) for (const c of n.chunks) fn(c);
  for (const c of n.children) forEachChunk(c, fn);
}

export class ChunkDedup {
  readonly table: BlobTable;
  readonly digester: Digester;
  #chunks = new Map<string, ChunkInfo>();
  #dict = new Map<string, { chunk: ChunkInfo; blob: BlobInfo }>();

  constructor(table: BlobTable, digester: Digester) {
    this.table = table;
    this.digester = digester;
  }

  /** Registers every chunk of a parent model (its blobs must be at the same indexes in the table). */
  addParent(model: ImageModel, name = 'parent bootstrap'): void {
    if (model.digester !== this.digester) throw new NydusError('ERR_BUILD', `${name}: digester ${model.digester} differs from --digester ${this.digester}`);
    forEachChunk(model.root, (c) => {
      const k = digestKey(c.digest);
      if (!this.#chunks.has(k)) this.#chunks.set(k, { ...c, fileOffset: 0 });
    });
  }

  /** Registers every chunk of a chunk-dict model; its blobs join the table lazily. */
  addDict(model: ImageModel, name = 'chunk dict'): void {
    if (model.digester !== this.digester) throw new NydusError('ERR_BUILD', `${name}: digester ${model.digester} differs from --digester ${this.digester}`);
    forEachChunk(model.root, (c) => {
      const blob = model.blobs[c.blobIndex];
      if (!blob) throw new NydusError('ERR_FORMAT_INVALID', `${name}: chunk refers to blob index ${c.blobIndex} beyond its blob table`);
      const k = digestKey(c.digest);
      if (!this.#dict.has(k)) this.#dict.set(k, { chunk: c, blob });
    });
  }

  /** The chunk to reuse for `digest` (fileOffset 0), or undefined. */
  lookup(digest: Uint8Array): ChunkInfo | undefined {
    const k = digestKey(digest);
    const d = this.#dict.get(k);
    if (d) {
      const c = { ...d.chunk, blobIndex: this.table.dictBlobIndex(d.blob), fileOffset: 0 };
      this.#dict.delete(k);
      this.#chunks.set(k, c);
      return c;
    }
    return this.#chunks.get(k);
  }

  add(chunk: ChunkInfo): void {
    const k = digestKey(chunk.digest);
    if (!this.#chunks.has(k)) this.#chunks.set(k, { ...chunk, fileOffset: 0 });
  }
}
