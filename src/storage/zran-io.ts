// Reading chunks of a zran (`*-ref`) blob straight from the original gzip layer: per zran
// context, fetch its compressed range, inflate from its checkpoint (bit position + window), cut
// the chunks out and verify each digest (always: gzip data carries no per-chunk check). The CI and
// contexts come from the ref blob named by blob_meta_digest (upstream storage/src/meta/mod.rs,
// BlobCompressionContextInfo with ZRAN; utils/src/compress/zlib_random.rs ZranDecoder).
import type { BlobInfo } from '../format/blob-info.js';
import { blobMetaRange } from '../format/blob/index.js';
import { chunkKey, type ChunkInfo } from '../format/chunk-info.js';
import { decodeZranIndex, groupByZranContext, inflateZranContext, separateMetaBlobId, zranContextRange, type ZranIndex } from '../format/zran/context.js';
import { FormatError } from '../util/errors.js';
import type { BlobBackend } from './backend/backend.js';
import { chunkLabel, verifyChunk, type ChunkResult, type FetchOptions, type MergedRead } from './blob-io.js';

// One ref blob meta read per backend and blob: the file cache's CI load and the zran index share it.
const metaReads = new WeakMap<BlobBackend, Map<string, Promise<Uint8Array>>>();
const indexes = new WeakMap<BlobBackend, Map<string, Promise<ZranIndex>>>();

function once<T>(maps: WeakMap<BlobBackend, Map<string, Promise<T>>>, backend: BlobBackend, key: string, load: () => Promise<T>): Promise<T> {
  let m = maps.get(backend);
  if (!m) maps.set(backend, (m = new Map()));
  let p = m.get(key);
  if (!p) {
    p = load();
    const mm = m;
    // A failed load is retried by the next read.
    p.catch(() => mm.delete(key));
    m.set(key, p);
  }
  return p;
}

/** The blob meta range (`blobMetaRange`) of a SEPARATE blob, from the blob its blob_meta_digest names. */
export function readSeparateBlobMeta(backend: BlobBackend, blob: BlobInfo, signal?: AbortSignal): Promise<Uint8Array> {
  return once(metaReads, backend, `${blob.blobId}/${separateMetaBlobId(blob)}`, async () => {
    const range = blobMetaRange(blob);
    if (!range) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, 'separate blob without blob meta');
    return backend.read(separateMetaBlobId(blob), range.offset, range.size, signal);
  });
}

/** The CI + contexts of a zran blob, read once per backend from its ref (meta) blob. */
export function zranIndexFor(backend: BlobBackend, blob: BlobInfo, signal?: AbortSignal): Promise<ZranIndex> {
  return once(indexes, backend, `${blob.blobId}/${separateMetaBlobId(blob)}`, async () => decodeZranIndex(await readSeparateBlobMeta(backend, blob, signal), blob));
}

/** fetchMergedRead for zran blobs: the read's chunks, grouped by context. */
export async function fetchZranRead(backend: BlobBackend, blob: BlobInfo, read: MergedRead, opts: FetchOptions = {}): Promise<ChunkResult[]> {
  let idx: ZranIndex;
  try {
    idx = await zranIndexFor(backend, blob, opts.signal);
  } catch (e) {
    return read.chunks.map((chunk) => ({ chunk, error: e as Error }));
  }
  const results = new Map<ChunkInfo, ChunkResult>();
  let groups: Map<number, { chunk: number; offset: number; size: number }[]>;
  try {
    groups = groupByZranContext(idx, read.chunks.map((c) => c.index), blob);
  } catch (e) {
    return read.chunks.map((chunk) => ({ chunk, error: e as Error }));
  }
  const byIndex = new Map<number, ChunkInfo[]>();
  for (const c of read.chunks) {
    const l = byIndex.get(c.index);
    if (l) l.push(c);
    else byIndex.set(c.index, [c]);
  }
  await Promise.all(
    [...groups].map(async ([k, members]) => {
      const ctx = idx.contexts[k]!;
      const chunksOf = members.flatMap((m) => byIndex.get(m.chunk) ?? []);
      let out: Uint8Array;
      try {
        const range = zranContextRange(ctx);
        const bytes = await backend.read(blob.blobId, range.offset, range.size, opts.signal);
        opts.onBackendRead?.(bytes.length);
        const need = Math.max(...members.map((m) => m.offset + m.size));
        out = inflateZranContext(ctx, bytes, `zran context ${k} of blob "${blob.blobId}"`, need);
      } catch (e) {
        for (const c of chunksOf) results.set(c, { chunk: c, error: e as Error });
        return;
      }
      for (const m of members) {
        for (const c of byIndex.get(m.chunk) ?? []) {
          try {
            if (m.size !== c.uncompressedSize) throw new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, c), `CI size ${m.size} differs from the bootstrap's ${c.uncompressedSize}`);
            const data = out.slice(m.offset, m.offset + m.size);
            verifyChunk(blob, c, data);
            results.set(c, { chunk: c, data });
          } catch (e) {
            results.set(c, { chunk: c, error: e as Error });
          }
        }
      }
    }),
  );
  return read.chunks.map((c) => results.get(c) ?? { chunk: c, error: new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, c), `not decoded (${String(chunkKey(blob, c))})`) });
}
