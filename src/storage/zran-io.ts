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

// One index load per backend and blob (the file cache also loads the CI; both are small).
const indexes = new WeakMap<BlobBackend, Map<string, Promise<ZranIndex>>>();

/** The CI + contexts of a zran blob, read once per backend from its ref (meta) blob. */
export function zranIndexFor(backend: BlobBackend, blob: BlobInfo, signal?: AbortSignal): Promise<ZranIndex> {
  let m = indexes.get(backend);
  if (!m) indexes.set(backend, (m = new Map()));
  const key = `${blob.blobId}/${separateMetaBlobId(blob)}`;
  let p = m.get(key);
  if (!p) {
    p = (async () => {
      const range = blobMetaRange(blob);
      if (!range) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, 'zran blob without blob meta');
      const bytes = await backend.read(separateMetaBlobId(blob), range.offset, range.size, signal);
      return decodeZranIndex(bytes, blob);
    })();
    const mm = m;
    p.catch(() => mm.delete(key));
    m.set(key, p);
  }
  return p;
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
