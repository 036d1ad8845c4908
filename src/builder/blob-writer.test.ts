// BlobWriter: writes every v6 variant of §7.2 (and v5) and reads them back with the format/blob
// decoders: CI + header, ToC, tar headers, digest array, inline bootstrap, offsets, blob id (§7.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { hex } from '../util/bytes.js';
import type { BlobInfo } from '../format/blob-info.js';
import { compressChunk, decompress } from '../format/compress.js';
import { BlobChunkFlags, type Compressor } from '../format/constants.js';
import { crc32c, digest, sha256 } from '../format/digest.js';
import {
  TAR_HEADER_SIZE, blobMetaRange, decodeBlobMeta, decodeBlobToc, decodeChunkDigests, decodeTarHeader, tocEntryCompressor,
} from '../format/blob/index.js';
import { BlobWriter, INLINE_META_PLACEHOLDER_BLOB_ID, type BlobWriterOptions, type ChunkPlacement } from './blob-writer.js';

const CHUNK_SIZE = 0x10000;

/** Chunks of varied sizes: compressible text, incompressible random (stored raw), tiny. */
function sampleChunks(): Uint8Array[] {
  const text = Buffer.from('nydus chunk '.repeat(6000)).subarray(0, CHUNK_SIZE);
  return [text, randomBytes(5000), Buffer.from('x'), Buffer.from('abc'.repeat(7000)), randomBytes(CHUNK_SIZE)];
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nydus-blob-writer-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Written {
  file: Uint8Array;
  info: BlobInfo;
  placements: ChunkPlacement[];
  chunks: Uint8Array[];
  seen: BlobInfo | undefined;
}

async function writeBlob(dir: string | undefined, opts: Partial<BlobWriterOptions>, chunks = sampleChunks(), bootstrap?: Uint8Array): Promise<Written> {
  const path = dir ? join(dir, 'blob') : undefined;
  const o: BlobWriterOptions = { fsVersion: 6, compressor: 'zstd', digester: 'blake3', chunkSize: CHUNK_SIZE, alignedChunk: true, blobToc: false, inlineMeta: false, ...opts, ...(path ? { path } : {}) };
  const w = await BlobWriter.open(o);
  const placements: ChunkPlacement[] = [];
  for (const data of chunks) {
    const c = compressChunk(data, o.compressor);
    placements.push(await w.addChunk({ digest: digest(data, o.digester), uncompressedSize: data.length, stored: c.data, compressed: c.compressed, crc32: crc32c(data) }));
  }
  assert.equal(w.chunkCount, chunks.length);
  let seen: BlobInfo | undefined;
  const info = await w.finish(bootstrap ? (i) => ((seen = i), bootstrap) : undefined);
  const file = path && existsSync(path) ? new Uint8Array(await readFile(path)) : new Uint8Array(0);
  return { file, info, placements, chunks, seen };
}

/** Placement rules of §3.4 and data readable back through the decoded CI. */
function checkChunks(w: Written, aligned: boolean, compressor: Compressor): void {
  let coff = 0, uoff = 0;
  w.placements.forEach((p, i) => {
    const data = w.chunks[i]!;
    assert.equal(p.index, i);
    assert.equal(p.compressedOffset, coff);
    assert.equal(p.uncompressedOffset, uoff);
    assert.equal(p.flags & BlobChunkFlags.HAS_CRC32, BlobChunkFlags.HAS_CRC32);
    const compressed = (p.flags & BlobChunkFlags.COMPRESSED) !== 0;
    const stored = w.file.subarray(p.compressedOffset, p.compressedOffset + p.compressedSize);
    assert.deepEqual(Buffer.from(compressed ? decompress(stored, compressor, data.length) : stored), Buffer.from(data));
    coff += p.compressedSize;
    uoff = aligned ? Math.ceil((uoff + data.length) / 4096) * 4096 : uoff + data.length;
  });
  assert.equal(w.info.uncompressedSize, uoff);
  assert.equal(w.info.chunkCount, w.chunks.length);
}

function checkCi(w: Written): void {
  const range = blobMetaRange(w.info)!;
  const meta = decodeBlobMeta(w.file.subarray(range.offset, range.offset + range.size), w.info);
  assert.equal(meta.header.features, w.info.features);
  assert.deepEqual(
    meta.chunks.map((c) => [c.compressedOffset, c.compressedSize, c.uncompressedOffset, c.uncompressedSize, c.compressed]),
    w.placements.map((p, i) => [p.compressedOffset, p.compressedSize, p.uncompressedOffset, w.chunks[i]!.length, (p.flags & BlobChunkFlags.COMPRESSED) !== 0]),
  );
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('v6 default: [data][CI][header], ALIGNED|CAP_TAR_TOC, blob id = sha256(file)', async () => {
  await withTmp(async (dir) => {
    const w = await writeBlob(dir, {});
    checkChunks(w, true, 'zstd');
    checkCi(w);
    assert.equal(w.info.features, 0x4000_0001);
    assert.equal(w.info.compressedSize, w.file.length);
    assert.equal(w.info.metaCiOffset, w.placements.at(-1)!.compressedOffset + w.placements.at(-1)!.compressedSize);
    assert.equal(w.file.length, w.info.metaCiOffset + w.info.metaCiCompressedSize + 4096);
    assert.equal(w.info.metaCiUncompressedSize, 16 * 5);
    assert.equal(w.info.blobId, sha(w.file));
    assert.equal(w.info.blobTocSize, 0);
    // No path: same result, no file.
    const dry = await writeBlob(undefined, {}, w.chunks);
    assert.equal(dry.info.blobId, w.info.blobId);
    assert.equal(dry.info.compressedSize, w.info.compressedSize);
  });
});

test('v6 blob-toc (lz4_block): tar headers, digest array, ToC, blob id skips the digests', async () => {
  await withTmp(async (dir) => {
    const w = await writeBlob(dir, { blobToc: true, compressor: 'lz4_block' });
    const { file, info } = w;
    checkChunks(w, true, 'lz4_block');
    checkCi(w);
    assert.equal(info.features, 0x7000_0021);
    const dataSize = w.placements.at(-1)!.compressedOffset + w.placements.at(-1)!.compressedSize;
    assert.deepEqual(decodeTarHeader(file, dataSize), { name: 'image.blob', size: dataSize });
    assert.equal(info.metaCiOffset, dataSize + TAR_HEADER_SIZE);
    const metaEnd = info.metaCiOffset + info.metaCiCompressedSize + 4096;
    assert.deepEqual(decodeTarHeader(file, metaEnd), { name: 'blob.meta', size: info.metaCiCompressedSize + 4096 });
    const digOff = metaEnd + TAR_HEADER_SIZE;
    const digests = decodeChunkDigests(file.subarray(digOff, digOff + 32 * 5), 5);
    digests.forEach((d, i) => assert.equal(hex(d), hex(digest(w.chunks[i]!, 'blake3'))));
    assert.deepEqual(decodeTarHeader(file, digOff + 160), { name: 'blob.digest', size: 160 });

    const toc = decodeBlobToc(file.subarray(file.length - 4096));
    assert.equal(toc.tocSize, info.blobTocSize);
    assert.equal(hex(toc.tocDigest), hex(info.blobTocDigest));
    assert.equal(toc.offsetInTail + file.length - 4096, digOff + 160 + TAR_HEADER_SIZE);
    const rows = toc.entries.map((e) => [e.name, e.compressedOffset, e.compressedSize, e.uncompressedSize]);
    assert.deepEqual(rows, [
      ['image.blob', 0, dataSize, info.uncompressedSize],
      ['blob.meta', info.metaCiOffset, info.metaCiCompressedSize, info.metaCiUncompressedSize],
      ['blob.meta.header', info.metaCiOffset + info.metaCiCompressedSize, 4096, 4096],
      ['blob.digest', digOff, 160, 160],
    ]);
    const [raw, meta, , dig] = toc.entries;
    assert.equal(hex(raw!.uncompressedDigest), sha(file.subarray(0, dataSize + TAR_HEADER_SIZE)));
    assert.equal(tocEntryCompressor(meta!), info.metaCiCompressor);
    assert.equal(hex(dig!.uncompressedDigest), sha(file.subarray(digOff, digOff + 160)));
    // §7.8: the id is sha256 of everything but the digest payload.
    assert.equal(info.blobId, createHash('sha256').update(file.subarray(0, digOff)).update(file.subarray(digOff + 160)).digest('hex'));
    assert.notEqual(info.blobId, sha(file));
  });
});

test('v6 inline meta: bootstrap + image.boot header at the end, placeholder id inside', async () => {
  await withTmp(async (dir) => {
    const boot = randomBytes(3000);
    const w = await writeBlob(dir, { inlineMeta: true }, sampleChunks(), boot);
    const { file, info, seen } = w;
    checkChunks(w, true, 'zstd');
    checkCi(w);
    assert.equal(info.features, 0x5000_0003);
    const hdr = decodeTarHeader(file, file.length - TAR_HEADER_SIZE, 'image.boot');
    assert.equal(hdr.size, boot.length);
    const bootOff = file.length - TAR_HEADER_SIZE - boot.length;
    assert.deepEqual(Buffer.from(file.subarray(bootOff, bootOff + boot.length)), boot);
    assert.deepEqual(decodeTarHeader(file, bootOff - TAR_HEADER_SIZE).name, 'blob.meta');
    assert.equal(seen!.blobId, INLINE_META_PLACEHOLDER_BLOB_ID);
    assert.equal(seen!.compressedSize, bootOff);
    assert.equal(seen!.metaCiOffset, info.metaCiOffset);
    assert.equal(info.blobId, sha(file));
    assert.equal(info.compressedSize, file.length);
  });
});

test('v6 inline meta + blob-toc (nydusify layer): zstd bootstrap, 5 ToC entries, --blob-id kept', async () => {
  await withTmp(async (dir) => {
    const boot = new Uint8Array(Buffer.from('bootstrap '.repeat(2000)));
    const w = await writeBlob(dir, { inlineMeta: true, blobToc: true, blobId: 'my-blob' }, sampleChunks(), boot);
    const { file, info, seen } = w;
    checkChunks(w, true, 'zstd');
    checkCi(w);
    assert.equal(info.features, 0x7000_0023);
    assert.equal(info.blobId, 'my-blob');
    assert.equal(seen!.blobId, 'my-blob');
    const toc = decodeBlobToc(file.subarray(file.length - 4096));
    assert.deepEqual(toc.entries.map((e) => e.name), ['image.blob', 'blob.meta', 'blob.meta.header', 'blob.digest', 'image.boot']);
    const b = toc.entries[4]!;
    assert.equal(tocEntryCompressor(b), 'zstd');
    assert.equal(b.uncompressedSize, boot.length);
    assert.ok(b.compressedSize < boot.length);
    assert.deepEqual(Buffer.from(decompress(file.subarray(b.compressedOffset, b.compressedOffset + b.compressedSize), 'zstd', boot.length)), Buffer.from(boot));
    assert.equal(hex(b.uncompressedDigest), sha(boot));
    assert.deepEqual(decodeTarHeader(file, b.compressedOffset + b.compressedSize), { name: 'image.boot', size: b.compressedSize });
    assert.equal(seen!.compressedSize, b.compressedOffset);
    assert.equal(info.compressedSize, file.length);
  });
});

test('zero chunks: no blob file is left; with inline meta only the bootstrap (+ToC) is written', async () => {
  await withTmp(async (dir) => {
    const w = await writeBlob(dir, { blobToc: true }, []);
    assert.equal(existsSync(join(dir, 'blob')), false);
    assert.equal(w.info.chunkCount, 0);
    assert.equal(w.info.compressedSize, 0);
    const boot = randomBytes(100);
    const wi = await writeBlob(dir, { inlineMeta: true }, [], boot);
    assert.equal((await stat(join(dir, 'blob'))).size, boot.length + TAR_HEADER_SIZE);
    assert.deepEqual(decodeTarHeader(wi.file, boot.length, 'image.boot').size, boot.length);
    assert.equal(wi.info.metaCiUncompressedSize, 0);
    assert.equal(blobMetaRange(wi.info), undefined);
  });
});

test('v5: packed or --aligned-chunk offsets, no CI, blob id = sha256(file)', async () => {
  await withTmp(async (dir) => {
    const w = await writeBlob(dir, { fsVersion: 5, alignedChunk: false, compressor: 'gzip' });
    checkChunks(w, false, 'gzip');
    assert.equal(w.info.features, 0x4000_0000);
    assert.equal(w.file.length, w.placements.reduce((n, p) => n + p.compressedSize, 0));
    assert.equal(w.info.blobId, sha(w.file));
    assert.equal(w.info.metaCiUncompressedSize, 0);
    const a = await writeBlob(dir, { fsVersion: 5, alignedChunk: true, compressor: 'none' });
    checkChunks(a, true, 'none');
    await assert.rejects(BlobWriter.open({ fsVersion: 5, compressor: 'none', digester: 'sha256', chunkSize: CHUNK_SIZE, alignedChunk: false, blobToc: true, inlineMeta: false }), /blob-toc needs RAFS v6/);
  });
});

test('CI compressed with a different ciCompressor; many chunks span several write buffers', async () => {
  await withTmp(async (dir) => {
    const chunks = Array.from({ length: 200 }, (_, i) => randomBytes(i % 7 === 0 ? CHUNK_SIZE : 1 + ((i * 977) % 40000)));
    const w = await writeBlob(dir, { compressor: 'none', ciCompressor: 'zstd' }, chunks);
    checkChunks(w, true, 'none');
    checkCi(w);
    assert.equal(w.info.metaCiCompressor, 'zstd');
    assert.ok(w.info.metaCiCompressedSize < 16 * 200);
    assert.equal(w.info.blobId, sha(w.file));
  });
});

test('addChunk() rejects bad input and abort() removes the file', async () => {
  await withTmp(async (dir) => {
    const path = join(dir, 'blob');
    const w = await BlobWriter.open({ path, fsVersion: 6, compressor: 'zstd', digester: 'blake3', chunkSize: CHUNK_SIZE, alignedChunk: true, blobToc: false, inlineMeta: false });
    const d = sha256(Buffer.from('a'));
    await assert.rejects(w.addChunk({ digest: d, uncompressedSize: CHUNK_SIZE + 1, stored: new Uint8Array(10), compressed: true, crc32: 0 }), /outside/);
    await assert.rejects(w.addChunk({ digest: d, uncompressedSize: 10, stored: new Uint8Array(9), compressed: false, crc32: 0 }), /stores 9 bytes/);
    await w.addChunk({ digest: d, uncompressedSize: 10, stored: new Uint8Array(10), compressed: false, crc32: 0 });
    assert.ok(existsSync(path));
    await w.abort();
    assert.equal(existsSync(path), false);
    await assert.rejects(w.finish(), /finish/);
  });
});
