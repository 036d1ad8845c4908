import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyBlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import { BlobChunkFlags } from '../format/constants.js';
import { decompress } from '../format/compress.js';
import { crc32c, digest } from '../format/digest.js';
import { ChunkPipeline, type ChunkSink } from './chunker.js';
import { ChunkPool } from './compress-pool.js';
import { BlobTable, ChunkDedup } from './dedup.js';

/** In-memory stand-in for BlobWriter (packed offsets, v5 style). */
class MemorySink implements ChunkSink {
  stored: Array<{ data: Uint8Array; compressed: boolean }> = [];
  off = 0;
  uoff = 0;
  async addChunk(c: { digest: Uint8Array; uncompressedSize: number; stored: Uint8Array; compressed: boolean; crc32: number }) {
    const r = { index: this.stored.length, compressedOffset: this.off, uncompressedOffset: this.uoff, compressedSize: c.stored.length, flags: (c.compressed ? BlobChunkFlags.COMPRESSED : 0) | BlobChunkFlags.HAS_CRC32 };
    this.stored.push({ data: c.stored.slice(), compressed: c.compressed });
    this.off += c.stored.length;
    this.uoff += c.uncompressedSize;
    return r;
  }
}

function setup(chunkSize: number, compressor: 'zstd' | 'none' | 'lz4_block' = 'zstd') {
  const pool = new ChunkPool(2);
  const table = new BlobTable();
  const dedup = new ChunkDedup(table, 'blake3');
  const sink = new MemorySink();
  const p = new ChunkPipeline({ pool, dedup, sink, chunkSize, compressor, digester: 'blake3', blobPlaceholder: () => emptyBlobInfo('', 0, chunkSize, compressor, 'blake3'), maxInFlight: 3 });
  return { pool, table, dedup, sink, p };
}

function reassemble(chunks: ChunkInfo[], sink: MemorySink, compressor: 'zstd' | 'none' | 'lz4_block'): Buffer {
  return Buffer.concat(
    chunks.map((c) => {
      const s = sink.stored[c.index]!;
      return c.flags & BlobChunkFlags.COMPRESSED ? decompress(s.data, compressor, c.uncompressedSize) : s.data;
    }),
  );
}

test('ChunkPipeline chunks files in order, digests, CRCs and dedups identical chunks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-chunk-'));
  const { pool, table, sink, p } = setup(4096);
  try {
    const data = Buffer.alloc(4096 * 5 + 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    writeFileSync(join(dir, 'a'), data);
    writeFileSync(join(dir, 'b'), data);
    const a: ChunkInfo[] = [];
    const b: ChunkInfo[] = [];
    await p.addFile(join(dir, 'a'), data.length, a, 'a');
    await p.addFile(join(dir, 'b'), data.length, b, 'b');
    await p.flush();
    assert.equal(a.length, 6);
    assert.deepEqual(a.map((c) => c.fileOffset), [0, 4096, 8192, 12288, 16384, 20480]);
    for (const [i, c] of a.entries()) {
      const piece = data.subarray(i * 4096, Math.min(data.length, (i + 1) * 4096));
      assert.deepEqual(Buffer.from(c.digest), Buffer.from(digest(piece, 'blake3')));
      assert.equal(c.crc32, crc32c(piece));
      assert.equal(c.blobIndex, 0);
    }
    assert.deepEqual(reassemble(a, sink, 'zstd'), data);
    assert.deepEqual(b.map((c) => c.index), a.map((c) => c.index), 'second file reuses every chunk');
    assert.equal(p.stats.storedChunks, 6);
    assert.equal(p.stats.dedupChunks, 6);
    assert.equal(table.blobs.length, 1);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ChunkPipeline batches many small files: same chunks, order and dedup as one at a time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-chunk-'));
  const { pool, sink, p } = setup(4096);
  try {
    const files: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const len = (i * 2654435761) % 9000;
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = ((i % 37) * 31 + j * (i % 5 === 0 ? 0 : 7)) & 0xff;
      files.push(b);
      writeFileSync(join(dir, `f${i}`), b);
    }
    const outs = files.map(() => [] as ChunkInfo[]);
    for (const [i, b] of files.entries()) await p.addFile(join(dir, `f${i}`), b.length, outs[i]!, `f${i}`);
    await p.flush();
    let next = 0;
    for (const [i, b] of files.entries()) {
      assert.equal(outs[i]!.length, Math.ceil(b.length / 4096));
      assert.deepEqual(reassemble(outs[i]!, sink, 'zstd'), b);
      for (const c of outs[i]!) {
        assert.equal(c.crc32, crc32c(b.subarray(c.fileOffset, c.fileOffset + c.uncompressedSize)));
        // New chunks are stored in submission order; repeats point back to earlier ones.
        if (c.index === next) next++;
        else assert.ok(c.index < next);
      }
    }
    assert.equal(p.stats.storedChunks, next);
    assert.ok(p.stats.dedupChunks > 0);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ChunkPipeline reports unreadable and shrunken files by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-chunk-'));
  try {
    writeFileSync(join(dir, 'short'), Buffer.alloc(100, 1));
    {
      const { pool, p } = setup(4096);
      await p.addFile(join(dir, 'missing'), 10, [], 'missing');
      await assert.rejects(p.flush(), /cannot read missing: ENOENT/);
      await pool.close();
    }
    {
      const { pool, p } = setup(4096);
      await p.addFile(join(dir, 'short'), 5000, [], 'short');
      await assert.rejects(p.flush(), /short: file shrank while building \(expected 5000 bytes, got 100\)/);
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crc32c (slicing-by-16) matches a bitwise reference at every alignment and length', () => {
  const ref = (d: Uint8Array): number => {
    let c = 0xffffffff;
    for (const x of d) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const buf = new Uint8Array(600);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
  for (let off = 0; off < 8; off++) {
    for (const len of [0, 1, 3, 15, 63, 64, 65, 127, 128, 200, 511, 590]) {
      const v = buf.subarray(off, off + len);
      assert.equal(crc32c(v), ref(v), `offset ${off} length ${len}`);
    }
  }
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  // seed continues a running CRC
  assert.equal(crc32c(buf.subarray(100), crc32c(buf.subarray(0, 100))), crc32c(buf));
});

test('ChunkPipeline.addStream() cuts arbitrary input pieces and checks the declared size', async () => {
  const { pool, sink, p } = setup(4096, 'lz4_block');
  try {
    const data = Buffer.alloc(10000, 3);
    async function* gen(step: number) {
      for (let i = 0; i < data.length; i += step) yield data.subarray(i, i + step);
    }
    const out: ChunkInfo[] = [];
    await p.addStream(gen(333), data.length, out, 'x');
    await p.flush();
    assert.deepEqual(out.map((c) => c.uncompressedSize), [4096, 4096, 1808]);
    assert.deepEqual(reassemble(out, sink, 'lz4_block'), data);
    await assert.rejects(p.addStream(gen(1000), data.length + 5, [], 'short'), /data ends after 10000 bytes, declared size is 10005/);
    await assert.rejects(p.addStream(gen(1000), 9000, [], 'long'), /more data than its declared size/);
  } finally {
    await pool.close();
  }
});

test('ChunkDedup resolves chunk-dict hits to a lazily added blob', () => {
  const table = new BlobTable();
  table.addParentBlobs([emptyBlobInfo('p'.repeat(64), 0, 4096, 'zstd', 'blake3')]);
  const dedup = new ChunkDedup(table, 'blake3');
  const dictBlob = emptyBlobInfo('d'.repeat(64), 0, 4096, 'zstd', 'blake3');
  const c: ChunkInfo = { digest: new Uint8Array(32).fill(9), blobIndex: 0, flags: 0, compressedSize: 1, uncompressedSize: 1, compressedOffset: 0, uncompressedOffset: 0, fileOffset: 0, index: 5, crc32: 0 };
  const root = { name: Buffer.from('/'), mode: 0o40755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: [], chunks: [], children: [{ name: Buffer.from('f'), mode: 0o100644, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 1, xattrs: [], children: [], chunks: [c] }] };
  dedup.addDict({ root, blobs: [dictBlob], chunkSize: 4096, compressor: 'zstd', digester: 'blake3', explicitUidGid: true, prefetchPaths: [] });
  assert.equal(table.blobs.length, 1, 'dict blob not added before use');
  const hit = dedup.lookup(c.digest)!;
  assert.equal(hit.blobIndex, 1);
  assert.equal(hit.index, 5);
  assert.deepEqual(table.blobs.map((b) => b.blobId), ['p'.repeat(64), 'd'.repeat(64)]);
  assert.equal(dedup.lookup(c.digest)!.blobIndex, 1);
  assert.throws(() => dedup.addDict({ root, blobs: [dictBlob], chunkSize: 4096, compressor: 'zstd', digester: 'sha256', explicitUidGid: true, prefetchPaths: [] }), /digester sha256 differs/);
});
