// Acceptance (3): blobcache across daemon lifetimes and against a corrupt blob.
//  - cold start from an empty work_dir fetches from the backend; after a restart on the warm
//    cache, reading everything again costs zero backend reads (/api/v1/metrics/backend counters),
//    because `<blob>.blob.data.chunk_map` persisted every ready bit;
//  - a flipped byte in one chunk with digest_validate: that file's read fails with EIO, other files
//    read fine, the bad chunk's bit is never set, and the daemon keeps serving. With validation off
//    the same corruption is served silently (so the EIO really comes from digest validation).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CHUNK_MAP_HEADER_SIZE, isChunkReady } from '../../src/format/blob/chunk-map.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { BlobChunkFlags } from '../../src/format/constants.js';
import { crc32c } from '../../src/format/digest.js';
import { BIN } from '../helpers/paths.js';
import { apiJson, backendMetrics, exitedWithin, fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd, waitFor, type NydusdProc } from './nydusd-proc.js';

const root = mkdtempSync(join(tmpdir(), 'nydusd-cache-'));
after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function randomish(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Source tree → image; returns the bootstrap, blob dir, and the expected sha256 per file. */
function buildImage(name: string, compressor: string, files: Record<string, Buffer>, extra: string[] = []): { boot: string; blobs: string; want: Map<string, string> } {
  const dir = join(root, name);
  const src = join(dir, 'src');
  const blobs = join(dir, 'blobs');
  mkdirSync(src, { recursive: true });
  mkdirSync(blobs);
  for (const [f, data] of Object.entries(files)) {
    mkdirSync(join(src, f, '..'), { recursive: true });
    writeFileSync(join(src, f), data);
  }
  const boot = join(dir, 'image.boot');
  const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--fs-version', '6', '--compressor', compressor, ...extra, '-B', boot, '-D', blobs, src], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  return { boot, blobs, want: new Map(Object.entries(files).map(([f, d]) => [f, sha(d)])) };
}

function chunkMapBits(workDir: string): { blobId: string; bits: Uint8Array } {
  const f = readdirSync(workDir).find((n) => n.endsWith('.blob.data.chunk_map'));
  assert.ok(f, `no chunk_map in ${workDir}: ${readdirSync(workDir).join(', ')}`);
  return { blobId: f.split('.')[0]!, bits: readFileSync(join(workDir, f)).subarray(CHUNK_MAP_HEADER_SIZE) };
}

function readyCount(bits: Uint8Array, n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (isChunkReady(bits, i)) c++;
  return c;
}

function readAll(d: NydusdProc, want: Map<string, string>): void {
  for (const [f, h] of want) assert.equal(sha(readFileSync(join(d.mnt, f))), h, `content of ${f}`);
}

describe('blobcache lifecycle through nydusd', { skip: fuseUsable() }, () => {
  it('cold start fetches; warm restart re-reads everything with zero backend reads', { timeout: 60_000 }, async () => {
    const files: Record<string, Buffer> = { 'big.bin': randomish(3 * 1024 * 1024 + 5, 1) };
    for (let i = 0; i < 12; i++) files[`dir${i % 3}/f${i}`] = randomish(100_000 + i * 7_000, 100 + i);
    const img = buildImage('warm', 'zstd', files);
    const sb = openBootstrap(readFileSync(img.boot));
    assert.equal(sb.blobs.length, 1);
    const chunkCount = sb.blobs[0]!.chunkCount;
    const dir = join(root, 'warm');
    const mnt = join(dir, 'mnt');
    const work = join(dir, 'cache');
    mkdirSync(mnt);
    const config = localfsConfig(img.blobs, work, { digest_validate: true });

    let d = await startNydusd({ dir, mnt, bootstrap: img.boot, config, apisock: true });
    try {
      const m0 = await backendMetrics(d);
      readAll(d, img.want);
      const m1 = await backendMetrics(d);
      assert.ok(m1.read_count > m0.read_count, `cold reads hit the backend (${m0.read_count} → ${m1.read_count})`);
      assert.ok(m1.read_amount_total - m0.read_amount_total >= statSync(join(img.blobs, sb.blobs[0]!.blobId)).size * 0.5, 'cold reads fetched the data');
      assert.equal(m1.read_errors, 0);
      d.proc.kill('SIGTERM');
      assert.ok(await exitedWithin(d, 10_000), 'SIGTERM stops the daemon');
      assert.deepEqual(await d.exited, { code: 0, signal: null });
    } finally {
      await killAndClean(d);
    }
    // The cache survived the daemon: every chunk's ready bit is on disk.
    const cm = chunkMapBits(work);
    assert.equal(cm.blobId, sb.blobs[0]!.blobId);
    assert.equal(readyCount(cm.bits, chunkCount), chunkCount, 'all chunks marked ready in the persisted chunk_map');
    assert.ok(existsSync(join(work, `${cm.blobId}.blob.data`)));

    d = await startNydusd({ dir, mnt, bootstrap: img.boot, config, apisock: true });
    try {
      const w0 = await backendMetrics(d);
      readAll(d, img.want);
      const w1 = await backendMetrics(d);
      assert.equal(w1.read_count, w0.read_count, 'warm re-read: no backend reads');
      assert.equal(w1.read_amount_total, w0.read_amount_total, 'warm re-read: no backend bytes');
      assert.equal(w1.read_count, 0, 'warm restart needs nothing from the backend at all');
    } finally {
      await killAndClean(d);
    }
  });

  it('a corrupt chunk: EIO for that file only, never cached, daemon keeps serving', { timeout: 60_000 }, async () => {
    const files = { 'good1.bin': randomish(200_000, 11), 'bad.bin': randomish(300_000, 12), 'sub/good2.bin': randomish(150_000, 13) };
    // compressor none: a flipped byte still decompresses; the chunk record's CRC-32C is rewritten
    // to match the corrupted bytes below, so only the digest comparison can catch it.
    const img = buildImage('corrupt', 'none', files);
    const sb = openBootstrap(readFileSync(img.boot));
    const blob = sb.blobs[0]!;
    const chunkOf = (name: string): number[] => sb.fileChunks(sb.lookup(sb.rootIno, Buffer.from(name))!.ino).map((c) => c.index);
    const badInfo = sb.fileChunks(sb.lookup(sb.rootIno, Buffer.from('bad.bin'))!.ino);
    assert.equal(badInfo.length, 1);
    const blobPath = join(img.blobs, blob.blobId);
    const bytes = readFileSync(blobPath);
    const bc = badInfo[0]!;
    bytes[bc.compressedOffset + 1234]! ^= 0x5a;
    writeFileSync(blobPath, bytes);
    assert.ok(bc.flags & BlobChunkFlags.HAS_CRC32, 'the chunk records a CRC-32C');
    const bootBytes = readFileSync(img.boot);
    const rec = bootBytes.indexOf(Buffer.from(bc.digest));
    assert.ok(rec >= 0 && bootBytes.readUInt32LE(rec + 76) === bc.crc32, 'found the chunk record (crc32 at +76)');
    bootBytes.writeUInt32LE(crc32c(bytes.subarray(bc.compressedOffset, bc.compressedOffset + bc.compressedSize)), rec + 76);
    writeFileSync(img.boot, bootBytes);
    const goodChunks = [...chunkOf('good1.bin'), ...sb.fileChunks(sb.lookup(sb.lookup(sb.rootIno, Buffer.from('sub'))!.ino, Buffer.from('good2.bin'))!.ino).map((c) => c.index)];
    const badChunk = badInfo[0]!.index;

    const dir = join(root, 'corrupt');
    for (const validate of [true, false]) {
      const mnt = join(dir, `mnt-${validate}`);
      const work = join(dir, `cache-${validate}`);
      mkdirSync(mnt);
      const d = await startNydusd({ dir, mnt, bootstrap: img.boot, config: localfsConfig(img.blobs, work, { digest_validate: validate }), apisock: true });
      try {
        if (!validate) {
          // Control: without validation the flipped byte reaches the reader.
          const got = readFileSync(join(d.mnt, 'bad.bin'));
          assert.equal(got.length, files['bad.bin'].length);
          assert.notEqual(sha(got), img.want.get('bad.bin'), 'corruption is real');
          continue;
        }
        // The bad file first: a merged backend read would also bring its neighbours' chunks.
        assert.throws(() => readFileSync(join(d.mnt, 'bad.bin')), (e: NodeJS.ErrnoException) => e.code === 'EIO');
        assert.equal(sha(readFileSync(join(d.mnt, 'good1.bin'))), img.want.get('good1.bin'));
        assert.equal(sha(readFileSync(join(d.mnt, 'sub/good2.bin'))), img.want.get('sub/good2.bin'));
        // Retrying still fails (nothing wrong got cached), and the first bytes are not served either.
        const cat = spawnSync('cat', [join(d.mnt, 'bad.bin')], { encoding: 'utf8', timeout: 20_000 });
        assert.notEqual(cat.status, 0);
        assert.match(cat.stderr, /Input\/output error/);
        // Persisted bitmap: good chunks ready, the bad one not.
        await waitFor(() => goodChunks.every((i) => isChunkReady(chunkMapBits(work).bits, i)), 10_000, 'good chunks persisted as ready');
        assert.equal(isChunkReady(chunkMapBits(work).bits, badChunk), false, 'corrupt chunk must not be marked ready');
        // Still serving: metadata, data, API.
        assert.deepEqual(readdirSync(d.mnt).sort(), ['bad.bin', 'good1.bin', 'sub']);
        assert.equal(sha(readFileSync(join(d.mnt, 'good1.bin'))), img.want.get('good1.bin'));
        const info = await apiJson(d, '/api/v1/daemon');
        assert.equal(info.state, 'RUNNING');
        assert.equal(d.proc.exitCode, null);
      } finally {
        await killAndClean(d);
      }
    }
  });
});
