// The `nydusd erofs` worker filesystem (src/daemon/blob-data-fs.ts) without the kernel: every read of
// a blob's .blob.data file — any offset and size, across chunk boundaries, 4 KiB alignment gaps and
// the end — equals the file `nydus-image export --blob-data-dir` writes, whether the chunks come
// from the main thread (cold) or from the blob cache file (warm, ready bits set).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChunkInfo } from '../../src/format/chunk-info.js';
import type { LowLevelFileSystem, RequestInfo, WorkerContext } from '../../src/fuse/index.js';
import { FUSE_ROOT_ID } from '../../src/fuse/index.js';
import { createFileSystem, type BlobDataFsInit } from '../../src/daemon/blob-data-fs.js';
import { fetchReply, type DaemonRequest } from '../../src/daemon/fuse-fs.js';
import { writeBlobData } from '../../src/image/export.js';
import { LocalBlobs } from '../../src/image/local-blobs.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { RafsV6Super } from '../../src/rafs/v6.js';
import { cli } from '../image/tree-helpers.js';
import { seeded } from '../remote/tree.js';

const REQ = { uid: 0, gid: 0, pid: 0, opcode: 15 } as RequestInfo;

async function readAll(fs: LowLevelFileSystem, ino: number, off: number, size: number): Promise<Buffer> {
  const r = await fs.read!(ino, 0, off, size, REQ);
  return Buffer.concat(Array.isArray(r) ? r : [r]);
}

describe('blob-data-fs: .blob.data files served from chunks', () => {
  let root = '';
  let boot = '';
  let blobDir = '';
  let expected: Buffer;
  let sb: RafsV6Super;

  before(() => {
    root = mkdtempSync('/tmp/blob-data-fs-');
    const src = join(root, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    // Sizes that leave gaps between 4 KiB-aligned chunks, a multi-chunk file, a duplicate (dedup).
    for (const [i, n] of [1, 4095, 4096, 4097, 70_000, 3 * 65536 + 5, 12_345].entries()) writeFileSync(join(src, 'd', `f${i}`), seeded(`f${i}`, n));
    writeFileSync(join(src, 'dup'), seeded('f4', 70_000));
    writeFileSync(join(src, 'empty'), '');
    boot = join(root, 'boot');
    blobDir = join(root, 'blobs');
    mkdirSync(blobDir);
    const c = cli(['create', '--fs-version', '6', '--chunk-size', '0x10000', '-B', boot, '-D', blobDir, '--log-level', 'warn', src]);
    assert.equal(c.code, 0, c.stderr);
    const s = openBootstrap(new Uint8Array(readFileSync(boot)), 'boot');
    assert.ok(s instanceof RafsV6Super);
    sb = s;
    const out = join(root, 'exported');
    mkdirSync(out);
    const [file] = writeBlobData(sb, { blobDir }, out);
    expected = readFileSync(file!);
    assert.equal(statSync(file!).size % 4096, 0);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function makeFs(cache: BlobDataFsInit['cache'], fetched: ChunkInfo[]): LowLevelFileSystem {
    const blobs = new LocalBlobs(sb.blobs, { blobDir });
    const ctx: WorkerContext = {
      workerIndex: 0,
      postToMain: () => undefined,
      request: <T>(msg: unknown): Promise<T> => {
        const m = msg as DaemonRequest;
        assert.equal(m.t, 'fetch');
        if (m.t !== 'fetch') throw new Error('unexpected');
        fetched.push(...m.chunks);
        // As the main thread answers: only the ranges the reader asked for.
        return Promise.resolve(fetchReply(m.chunks.map((c) => blobs.readChunk(c, true)), m.ranges).value as T);
      },
    };
    const bootBuf = readFileSync(boot);
    const shared = new SharedArrayBuffer(bootBuf.length);
    new Uint8Array(shared).set(bootBuf);
    const init: BlobDataFsInit = {
      bootstrap: shared,
      files: sb.blobs.map((b, i) => ({ name: `${b.blobId}.blob.data`, size: Math.max(sb.devices[i]!.blocks, Math.ceil(b.uncompressedSize / 4096)) * 4096 })),
      cache,
      mtime: 0,
    };
    return createFileSystem(init, ctx);
  }

  /** Deterministic pseudo-random ranges, plus the edges. */
  function ranges(size: number): Array<[number, number]> {
    const out: Array<[number, number]> = [[0, 4096], [0, size], [size - 4096, 4096], [size - 1, 100], [size, 4096], [size + 4096, 10], [4095, 2]];
    let x = 12345;
    const rnd = (n: number): number => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x % n);
    for (let i = 0; i < 300; i++) out.push([rnd(size), 1 + rnd(i % 3 === 0 ? 300_000 : 9000)]);
    return out;
  }

  it('lists one file per blob with the device size', async () => {
    const fs = makeFs([undefined], []);
    const e = await fs.lookup!(FUSE_ROOT_ID, Buffer.from(`${sb.blobs[0]!.blobId}.blob.data`), REQ);
    assert.equal(e.attr.size, expected.length);
    assert.equal(e.attr.mode, 0o100444);
    await assert.rejects(async () => fs.lookup!(FUSE_ROOT_ID, Buffer.from('nope'), REQ), /no such blob data file/);
  });

  it('cold reads (every chunk from the main thread) equal the exported file', async () => {
    const fetched: ChunkInfo[] = [];
    const fs = makeFs([undefined], fetched);
    const ino = FUSE_ROOT_ID + 1;
    for (const [off, size] of ranges(expected.length)) {
      const got = await readAll(fs, ino, off, size);
      assert.ok(got.equals(expected.subarray(off, Math.min(expected.length, off + size))), `read(${off}, ${size})`);
    }
    assert.ok(fetched.length > 0);
  });

  it('warm reads (ready bits set, cache file = the exported layout) equal it too, without a fetch', async () => {
    const cacheFile = join(root, 'cache.blob.data');
    writeFileSync(cacheFile, expected);
    const bitmap = new Uint8Array(new SharedArrayBuffer(Math.ceil(sb.blobs[0]!.chunkCount / 8) + 1)).fill(0xff);
    const fetched: ChunkInfo[] = [];
    const fs = makeFs([{ bitmap, dataPath: cacheFile }], fetched);
    for (const [off, size] of ranges(expected.length)) {
      const got = await readAll(fs, FUSE_ROOT_ID + 1, off, size);
      assert.ok(got.equals(expected.subarray(off, Math.min(expected.length, off + size))), `read(${off}, ${size})`);
    }
    assert.equal(fetched.length, 0, 'a ready chunk was fetched');
  });
});
