// `nydus-image create --batch-size` (upstream batch chunks) end to end: images with zstd and
// lz4_block batches round-trip through check, unpack and a real nydusd FUSE mount (every byte
// compared); a byte flipped inside one compressed batch gives EIO for files of that batch only
// (never wrong bytes), the other files read right, the daemon lives, and check reports it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BlobFeatures } from '../../src/format/constants.js';
import { batchRefOf, blobMetaRange, decodeBlobMeta } from '../../src/format/blob/index.js';
import type { ChunkInfo } from '../../src/format/chunk-info.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { FileCache } from '../../src/storage/cache/file-cache.js';
import { RecordingBackend } from '../../src/storage/test-support.js';
import { erofsMountUnavailable, withErofsMount } from '../kernel/erofs-mount.js';
import { pattern } from '../helpers/data.js';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = testDir('nydus-batch-');
after(() => assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts'));

const BATCH = 0x10000;

/** Compressible text of n bytes (so batches really compress), different per seed. */
function text(n: number, seed: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'nydus', 'chunk', 'batch', 'erofs', 'layer', String(seed)];
  const r = pattern(n, seed);
  let s = '';
  for (let i = 0; s.length < n; i++) s += words[r[i % r.length]! % words.length] + (i % 12 === 11 ? '\n' : ' ');
  return Buffer.from(s.slice(0, n));
}

/** Many small files (batched), a few at and over half the batch size, big and random ones (not). */
function tree(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 150; i++) files.set(`small/s${i}.txt`, text(1 + ((i * 977) % 6000), i + 1));
  for (let i = 0; i < 6; i++) files.set(`rand/r${i}.bin`, pattern(100 + i * 1500, 1000 + i));
  files.set('edge/just-under-half', text(BATCH / 2 - 1, 7));
  files.set('edge/half', text(BATCH / 2, 8));
  files.set('big/two-chunks', text(0x100000 + 12345, 9));
  files.set('big/one-chunk', text(200_000, 10));
  files.set('empty', Buffer.alloc(0));
  return files;
}
const FILES = tree();

function writeTree(dir: string): void {
  for (const [name, data] of FILES) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
}

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function build(name: string, compressor: string): { boot: string; blobDir: string; blob: string } {
  const dir = join(root, name);
  const src = join(dir, 'src');
  writeTree(src);
  const blobDir = join(dir, 'blobs');
  const boot = join(dir, 'boot');
  const c = run(['create', '--compressor', compressor, '--batch-size', `0x${BATCH.toString(16)}`, '-B', boot, '-D', blobDir, src]);
  assert.equal(c.status, 0, c.stderr);
  const [blob] = readdirSync(blobDir);
  return { boot, blobDir, blob: join(blobDir, blob!) };
}

/** The batch index of each file's chunks (undefined: not in a batch). */
function batchesOf(boot: string, blobPath: string): Map<string, Set<number>> {
  const sb = openBootstrap(readFileSync(boot), 'batch image');
  const info = sb.blobs[0]!;
  const range = blobMetaRange(info)!;
  const meta = decodeBlobMeta(readFileSync(blobPath).subarray(range.offset, range.offset + range.size), info);
  const out = new Map<string, Set<number>>();
  for (const name of FILES.keys()) {
    let ino = sb.rootIno;
    for (const part of name.split('/')) ino = sb.lookup(ino, Buffer.from(part))!.ino;
    const set = new Set<number>();
    if (FILES.get(name)!.length > 0) for (const c of sb.fileChunks(ino)) {
      const ref = batchRefOf(meta.chunks[c.index]!, meta.batches, name);
      if (ref) set.add(ref.index);
    }
    out.set(name, set);
  }
  return out;
}

function readOrErr(path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

for (const compressor of ['zstd', 'lz4_block']) {
  describe(`batch chunks (${compressor})`, () => {
    const img = build(`img-${compressor}`, compressor);

    it('the blob is a BATCH blob and only the small single-chunk files are batched', () => {
      const sb = openBootstrap(readFileSync(img.boot), 'batch image');
      assert.ok(sb.blobs[0]!.features & BlobFeatures.BATCH);
      assert.ok(sb.blobs[0]!.features & BlobFeatures.CHUNK_INFO_V2);
      const b = batchesOf(img.boot, img.blob);
      assert.ok(b.get('small/s0.txt')!.size === 1 && b.get('rand/r0.bin')!.size === 1 && b.get('edge/just-under-half')!.size === 1);
      for (const n of ['edge/half', 'big/two-chunks', 'big/one-chunk']) assert.equal(b.get(n)!.size, 0, `${n} is not batched`);
      assert.ok(new Set([...b.values()].flatMap((s) => [...s])).size > 1, 'several batches');
    });

    it('check verifies every chunk; unpack gives every file back', () => {
      const c = run(['check', '-B', img.boot, '-D', img.blobDir]);
      assert.equal(c.status, 0, c.stderr);
      assert.match(c.stdout, /batch/);
      const out = join(root, `unpack-${compressor}`);
      const tar = `${out}.tar`;
      const u = run(['unpack', '-B', img.boot, '-D', img.blobDir, '--output', tar]);
      assert.equal(u.status, 0, u.stderr);
      mkdirSync(out);
      const x = spawnSync('tar', ['xf', tar, '-C', out]);
      assert.equal(x.status, 0);
      for (const [name, data] of FILES) assert.ok(readFileSync(join(out, name)).equals(data), name);
    });

    it('export --block: the flat disk mounts in the kernel with every byte', { skip: erofsMountUnavailable() ?? false, timeout: 120_000 }, async () => {
      const disk = join(root, `disk-${compressor}`);
      const ex = run(['export', '--block', img.boot, '-D', img.blobDir, '-O', disk]);
      assert.equal(ex.status, 0, ex.stderr);
      await withErofsMount(disk, [], (mnt) => {
        for (const [name, data] of FILES) assert.ok(readFileSync(join(mnt, name)).equals(data), name);
      });
    });

    it('nydusd serves every byte (cold, then warm from the cache)', { skip: fuseUsable(), timeout: 120_000 }, async () => {
      const dir = join(root, `mount-${compressor}`);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt, { recursive: true });
      const d = await startNydusd({ dir, mnt, bootstrap: img.boot, config: localfsConfig(img.blobDir, join(dir, 'cache')) });
      try {
        for (let pass = 0; pass < 2; pass++) {
          for (const [name, data] of FILES) assert.ok(readFileSync(join(d.mnt, name)).equals(data), `${name} (pass ${pass})`);
        }
      } finally {
        await killAndClean(d);
      }
    });
  });
}

describe('blob cache and batches', () => {
  const img = build('cache', 'zstd');
  const batches = batchesOf(img.boot, img.blob);

  it('chunks of one batch cost one backend read and land at their own offsets in .blob.data', async () => {
    const sb = openBootstrap(readFileSync(img.boot), 'batch image');
    const blob = sb.blobs[0]!;
    const names = [...FILES.keys()].filter((n) => batches.get(n)!.has(batches.get('small/s3.txt')!.values().next().value!)).slice(0, 4);
    assert.equal(names.length, 4);
    const chunkOf = (name: string): ChunkInfo => {
      let ino = sb.rootIno;
      for (const part of name.split('/')) ino = sb.lookup(ino, Buffer.from(part))!.ino;
      return sb.fileChunks(ino)[0]!;
    };
    const be = new RecordingBackend(new LocalFsBackend({ dir: img.blobDir }));
    const work = join(root, 'cache', 'work');
    const fc = new FileCache({ workDir: work, backend: be, useBlobMeta: true });
    try {
      const first = await fc.readChunks(blob, [chunkOf(names[0]!)]);
      assert.ok(Buffer.from(first[0]!).equals(FILES.get(names[0]!)!));
      const afterFirst = be.requests.length; // blob meta + the batch
      for (const n of names.slice(1)) assert.ok(Buffer.from((await fc.readChunks(blob, [chunkOf(n)]))[0]!).equals(FILES.get(n)!), n);
      assert.equal(be.requests.length, afterFirst, 'siblings come from the inflated batch');
      const data = readFileSync(join(work, `${blob.blobId}.blob.data`));
      for (const n of names) {
        const c = chunkOf(n);
        assert.ok(data.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedSize).equals(FILES.get(n)!), `${n} cached at its offset`);
      }
    } finally {
      await fc.close();
      await be.close();
    }
  });
});

describe('a corrupt batch', () => {
  const img = build('corrupt', 'zstd');
  const batches = batchesOf(img.boot, img.blob);
  // Flip one byte in the middle of the batch holding small/s40.txt.
  const victim = [...batches.get('small/s40.txt')!][0]!;
  const bad = join(root, 'corrupt', 'bad-blobs');
  cpSync(img.blobDir, bad, { recursive: true });
  const badBlob = join(bad, readdirSync(bad)[0]!);
  {
    const sb = openBootstrap(readFileSync(img.boot), 'batch image');
    const info = sb.blobs[0]!;
    const range = blobMetaRange(info)!;
    const blob = readFileSync(badBlob);
    const meta = decodeBlobMeta(blob.subarray(range.offset, range.offset + range.size), info);
    const e = meta.chunks.find((c) => batchRefOf(c, meta.batches, 'x')?.index === victim)!;
    const ref = batchRefOf(e, meta.batches, 'x')!;
    blob[ref.compressedOffset + (ref.compressedSize >> 1)]! ^= 0x5a;
    writeFileSync(badBlob, blob);
  }
  const inVictim = (name: string): boolean => batches.get(name)!.has(victim);

  it('nydusd: EIO only for files of that batch, never wrong bytes; the daemon lives', { skip: fuseUsable(), timeout: 120_000 }, async () => {
    const dir = join(root, 'corrupt', 'mount');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const d = await startNydusd({ dir, mnt, bootstrap: img.boot, config: localfsConfig(bad, join(dir, 'cache')) });
    try {
      let eio = 0;
      for (let pass = 0; pass < 2; pass++) {
        for (const [name, data] of FILES) {
          const got = readOrErr(join(d.mnt, name));
          if (typeof got === 'string') {
            assert.equal(got, 'EIO', name);
            assert.ok(inVictim(name), `${name} is not in the corrupt batch but failed`);
            eio++;
          } else assert.ok(got.equals(data), `${name}: wrong bytes`);
        }
      }
      assert.ok(eio > 0, 'some file of the corrupt batch gives EIO');
      assert.ok(readFileSync(join(d.mnt, 'big/one-chunk')).equals(FILES.get('big/one-chunk')!), 'still serving');
      assert.equal(d.proc.exitCode, null, 'daemon alive');
    } finally {
      await killAndClean(d);
    }
  });

  it('check reports the corrupt batch', () => {
    const c = run(['check', '-B', img.boot, '-D', bad]);
    assert.notEqual(c.status, 0);
    assert.match(c.stderr, /batch|digest/);
    assert.equal(c.stderr.trim().split('\n').length, 1, c.stderr);
  });
});

describe('--batch-size flag checks (upstream get_batch_size)', () => {
  const src = join(root, 'flags-src');
  mkdirSync(src);
  writeFileSync(join(src, 'f'), 'x');
  for (const [args, re] of [
    [['--batch-size', '0x100000', '--fs-version', '5'], /conflicts with --fs-version 5/],
    [['--batch-size', '0x3000'], /power of two/],
    [['--batch-size', '0x800'], /power of two/],
    [['--batch-size', '0x200000'], /bigger than --chunk-size/],
  ] as const) {
    it(`rejects ${args.join(' ')} in one line`, () => {
      const r = run(['create', ...args, '-B', join(root, 'flags.boot'), '-D', join(root, 'flags-blobs'), src]);
      assert.equal(r.status, 2, "usage error");
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
