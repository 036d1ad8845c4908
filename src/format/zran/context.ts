// Decoding one zran context (upstream ZranDecoder::uncompress): the context's compressed bytes,
// primed with the top ctx_bits bits of the byte before them, inflated from its dictionary.
import { FormatError } from '../../util/errors.js';
import type { BlobInfo } from '../blob-info.js';
import { decodeBlobMeta, type BlobMeta } from '../blob/blob-meta.js';
import type { CiEntry } from '../blob/ci-entry.js';
import { ciZranIndex, ciZranOffset, isZranCi, zranContextsOf, type ZranContext } from '../blob/zran.js';
import { BlobFeatures } from '../constants.js';
import { Inflater } from './inflate.js';

/** Range of the gzip stream a context needs: one byte earlier when the block starts mid-byte. */
export function zranContextRange(c: ZranContext): { offset: number; size: number } {
  const back = c.ctxBits ? 1 : 0;
  return { offset: c.inOffset - back, size: c.inLen + back };
}

/**
 * Inflates the first `need` bytes (default all `outLen`) of a context from `bytes`, the range
 * `zranContextRange(c)`. A context may run on into the next gzip member; it is followed.
 */
export function inflateZranContext(c: ZranContext, bytes: Uint8Array, name: string, need = c.outLen): Uint8Array {
  const range = zranContextRange(c);
  if (bytes.length < range.size) throw new FormatError('ERR_FORMAT_TRUNCATED', name, `got ${bytes.length} bytes of the context's ${range.size}`);
  if (need > c.outLen) throw new FormatError('ERR_FORMAT_INVALID', name, `asked for ${need} bytes of a context of ${c.outLen}`);
  let given = false;
  const inf = new Inflater({
    gzip: false,
    name,
    startBit: c.ctxBits ? 8 - c.ctxBits : 0,
    window: c.dict,
    fill: () => (given ? null : ((given = true), bytes.subarray(0, range.size))),
  });
  inf.step(need);
  if (inf.produced < need) throw new FormatError('ERR_FORMAT_TRUNCATED', name, `context yields ${inf.produced} bytes, ${need} expected`);
  return inf.view(0, need).slice();
}

/** What reading zran chunks needs from a ref blob's meta: CI entries and the contexts. */
export interface ZranIndex {
  ci: CiEntry[];
  contexts: ZranContext[];
}

/** Parses the blob meta bytes (`blobMetaRange(blob)` of the ref blob) of a ZRAN blob. */
export function decodeZranIndex(bytes: Uint8Array, blob: BlobInfo): ZranIndex {
  const meta = decodeBlobMeta(bytes, blob);
  return zranIndexFromMeta(meta, blob);
}

export function zranIndexFromMeta(meta: BlobMeta, blob: BlobInfo): ZranIndex {
  const contexts = zranContextsOf(meta.ciData, meta.header);
  meta.chunks.forEach((e, i) => {
    if (!isZranCi(e)) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `CI entry ${i} of a zran blob lacks the ZRAN flag`);
    const k = ciZranIndex(e);
    const c = contexts[k];
    if (!c) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `CI entry ${i} names zran context ${k} of ${contexts.length}`);
    if (ciZranOffset(e) + e.uncompressedSize > c.outLen) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `CI entry ${i} ends beyond its zran context ${k}`);
  });
  return { ci: meta.chunks, contexts };
}

/** Id of the blob holding a SEPARATE blob's meta: hex(blob_meta_digest) (upstream get_blob_meta_id). */
export function separateMetaBlobId(blob: BlobInfo): string {
  if (!(blob.features & BlobFeatures.SEPARATE) || blob.blobMetaDigest.every((b) => b === 0)) return blob.blobId;
  return Buffer.from(blob.blobMetaDigest).toString('hex');
}

export function isZranBlob(blob: { features: number }): boolean {
  return (blob.features & BlobFeatures.ZRAN) !== 0;
}

/** Groups chunk indexes by zran context: context index → [chunk index, offset in context]. */
export function groupByZranContext(idx: ZranIndex, chunkIndexes: readonly number[], blob: BlobInfo): Map<number, { chunk: number; offset: number; size: number }[]> {
  const out = new Map<number, { chunk: number; offset: number; size: number }[]>();
  for (const i of chunkIndexes) {
    const e = idx.ci[i];
    if (!e) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `chunk ${i} is beyond the ${idx.ci.length} CI entries`);
    const k = ciZranIndex(e);
    let g = out.get(k);
    if (!g) out.set(k, (g = []));
    g.push({ chunk: i, offset: ciZranOffset(e), size: e.uncompressedSize });
  }
  return out;
}
