// Issue 11 defects 1, 2 and 4 through a real nydusd FUSE mount:
// 1. with digest_validate a flipped byte in `<blob>.blob.data` is never served (re-fetched), and a
//    forged v5 bootstrap sharing the blob id and cache dir cannot make the genuine image read wrong bytes;
// 2. a v5 chunk record with compressed size >= 2^31 gives EIO and the daemon lives;
// 4. a v5 file whose chunk records do not cover its size (0 chunks, a 0-size chunk) gives EIO, not a short read.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TreeNode } from '../../src/format/image-model.js';
import { encodeBootstrapV5 } from '../../src/builder/writer/v5.js';
import { readRafsV5InodeTableEntry } from '../../src/format/rafs-v5/inode-table.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { treeFromRafs } from '../../src/rafs/tree-from-rafs.js';
import type { RafsV5Super } from '../../src/rafs/v5.js';
import { pattern } from '../helpers/data.js';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = testDir('nydus-cache-trust-');
after(() => assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts'));

const FILES: Record<string, Buffer> = {
  'a.bin': pattern(3 * 65536, 1),
  'b.bin': pattern(2 * 65536, 2),
  'huge.bin': pattern(65536 + 5000, 3),
  'nochunks.bin': pattern(50_000, 4),
  'zerochunk.bin': pattern(40_000, 5),
  'ok.bin': pattern(30_000, 6),
};

function build(fsVersion: string): { boot: string; blobDir: string } {
  const dir = join(root, `v${fsVersion}`);
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  for (const [n, b] of Object.entries(FILES)) writeFileSync(join(src, n), b);
  const blobDir = join(dir, 'blobs');
  mkdirSync(blobDir);
  const boot = join(dir, 'boot');
  const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--fs-version', fsVersion, '--compressor', 'lz4_block', '--chunk-size', '0x10000', '-B', boot, '-D', blobDir, src], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  return { boot, blobDir };
}

function readErr(path: string): string | undefined {
  try {
    readFileSync(path);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
}

describe('cache trust and crafted chunk records through nydusd', { skip: fuseUsable() }, () => {
  let v5: { boot: string; blobDir: string };
  before(() => {
    v5 = build('5');
  });

  it('digest_validate: a flipped byte in .blob.data is re-fetched, not served (v6)', { timeout: 90_000 }, async () => {
    const v6 = build('6');
    const dir = join(root, 'flip');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const work = join(dir, 'cache');
    const cfg = localfsConfig(v6.blobDir, work, { digest_validate: true });
    let d = await startNydusd({ dir, mnt, bootstrap: v6.boot, config: cfg });
    try {
      assert.ok(readFileSync(join(d.mnt, 'a.bin')).equals(FILES['a.bin']!));
    } finally {
      await killAndClean(d);
    }
    // Flip a byte inside a.bin's second chunk in the cache data file.
    const sb = openBootstrap(readFileSync(v6.boot), 'v6');
    const c = sb.fileChunks(sb.lookup(sb.rootIno, Buffer.from('a.bin'))!.ino)[1]!;
    const data = join(work, `${sb.blobs[0]!.blobId}.blob.data`);
    const fd = openSync(data, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, c.uncompressedOffset + 100);
    b[0]! ^= 0xff;
    writeSync(fd, b, 0, 1, c.uncompressedOffset + 100);
    closeSync(fd);
    d = await startNydusd({ dir, mnt, bootstrap: v6.boot, config: cfg });
    try {
      assert.ok(readFileSync(join(d.mnt, 'a.bin')).equals(FILES['a.bin']!), 'right bytes after re-validation');
    } finally {
      await killAndClean(d);
    }
    const fd2 = openSync(data, 'r');
    readSync(fd2, b, 0, 1, c.uncompressedOffset + 100);
    closeSync(fd2);
    assert.equal(b[0], FILES['a.bin']![65536 + 100], 'the cache file was repaired');
  });

  it('v5: a forged bootstrap sharing blob id and cache dir cannot poison the genuine image', { timeout: 90_000 }, async () => {
    const sb = openBootstrap(readFileSync(v5.boot), 'v5');
    const model = treeFromRafs(sb);
    const node = (name: string): TreeNode => model.root.children.find((n) => Buffer.from(n.name).toString() === name)!;
    // The forged record of b.bin chunk 0 names a.bin chunk 0's stored bytes and digest, keeping b.bin's place.
    const a0 = node('a.bin').chunks[0]!;
    const b0 = node('b.bin').chunks[0]!;
    node('b.bin').chunks[0] = { ...b0, compressedOffset: a0.compressedOffset, compressedSize: a0.compressedSize, flags: a0.flags, digest: a0.digest, crc32: a0.crc32 };
    const dir = join(root, 'poison');
    mkdirSync(join(dir, 'mnt1'), { recursive: true });
    mkdirSync(join(dir, 'mnt2'), { recursive: true });
    const forged = join(dir, 'forged.boot');
    writeFileSync(forged, encodeBootstrapV5(model));
    const work = join(dir, 'cache');
    // Two daemons at once, same work_dir, validation off: the forged one reads first.
    const evil = await startNydusd({ dir, mnt: join(dir, 'mnt1'), bootstrap: forged, config: localfsConfig(v5.blobDir, work) });
    try {
      const got = readFileSync(join(evil.mnt, 'b.bin'));
      assert.ok(got.subarray(0, 65536).equals(FILES['a.bin']!.subarray(0, 65536)), 'the forged image reads what it names');
      const gdir = join(dir, 'g');
      mkdirSync(gdir);
      const good = await startNydusd({ dir: gdir, mnt: join(dir, 'mnt2'), bootstrap: v5.boot, config: localfsConfig(v5.blobDir, work) });
      try {
        for (const n of ['a.bin', 'b.bin']) assert.ok(readFileSync(join(good.mnt, n)).equals(FILES[n]!), `${n}: genuine bytes`);
      } finally {
        await killAndClean(good);
      }
    } finally {
      await killAndClean(evil);
    }
    // And a later genuine daemon over the cache the forged one left.
    const evil2 = await startNydusd({ dir, mnt: join(dir, 'mnt1'), bootstrap: forged, config: localfsConfig(v5.blobDir, work) });
    try {
      readFileSync(join(evil2.mnt, 'b.bin'));
    } finally {
      await killAndClean(evil2);
    }
    const good2 = await startNydusd({ dir, mnt: join(dir, 'mnt2'), bootstrap: v5.boot, config: localfsConfig(v5.blobDir, work) });
    try {
      assert.ok(readFileSync(join(good2.mnt, 'b.bin')).equals(FILES['b.bin']!), 'b.bin: genuine bytes after restart');
    } finally {
      await killAndClean(good2);
    }
  });

  for (const cacheType of ['blobcache', 'dummycache']) {
    it(`v5 crafted records (${cacheType}): compressed size 2^31 and uncovered sizes give EIO, the daemon lives`, { timeout: 90_000 }, async () => {
      const buf = Buffer.from(readFileSync(v5.boot));
      const sb = openBootstrap(buf, 'v5') as RafsV5Super;
      const rec = (name: string): number => readRafsV5InodeTableEntry(buf, sb.superBlock.inodeTableOffset, sb.superBlock.inodeTableEntries, sb.lookup(sb.rootIno, Buffer.from(name))!.ino);
      const chunkRec = (name: string, k: number): number => buf.indexOf(Buffer.from(sb.fileChunks(sb.lookup(sb.rootIno, Buffer.from(name))!.ino)[k]!.digest));
      buf.writeUInt32LE(0x8000_0000, chunkRec('huge.bin', 1) + 40); // compressed_size
      buf.writeUInt32LE(0, rec('nochunks.bin') + 96); // child_count: no chunk records
      buf.writeUInt32LE(0, chunkRec('zerochunk.bin', 0) + 44); // uncompressed_size
      const dir = join(root, `crafted-${cacheType}`);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt, { recursive: true });
      const boot = join(dir, 'crafted.boot');
      writeFileSync(boot, buf);
      const cfg = localfsConfig(v5.blobDir, join(dir, 'cache'));
      if (cacheType === 'dummycache') (cfg.device as { cache: unknown }).cache = { type: 'dummycache' };
      const d = await startNydusd({ dir, mnt, bootstrap: boot, config: cfg });
      try {
        assert.equal(readErr(join(d.mnt, 'huge.bin')), 'EIO');
        assert.equal(readErr(join(d.mnt, 'nochunks.bin')), 'EIO');
        assert.equal(readErr(join(d.mnt, 'zerochunk.bin')), 'EIO');
        // The first chunk of huge.bin is fine.
        const fd = openSync(join(d.mnt, 'huge.bin'), 'r');
        const b = Buffer.alloc(4096);
        assert.equal(readSync(fd, b, 0, 4096, 0), 4096);
        closeSync(fd);
        assert.ok(b.equals(FILES['huge.bin']!.subarray(0, 4096)));
        assert.equal(d.proc.exitCode, null, 'daemon alive');
        assert.ok(readFileSync(join(d.mnt, 'ok.bin')).equals(FILES['ok.bin']!), 'other files still read');
      } finally {
        await killAndClean(d);
      }
      assert.equal(d.proc.signalCode === 'SIGABRT', false);
    });
  }
});
