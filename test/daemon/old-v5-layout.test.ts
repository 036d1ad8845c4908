// Issue 18 "Wrong data on old images": RAFS v5 images without the extended blob table (older
// upstream builders) record index 0 in every chunk. Reads through nydusd (blobcache, fresh caches,
// validation off and on, and dummycache) must return every byte right, and `nydus-image check
// --blob-dir` must verify every distinct chunk and fail, naming the chunk, on a flipped byte.
// Images: one built by nydus-image (lz4_block, several distinct chunks) and upstream's own
// sha256-nocompress-repeatable fixture with its real blob, both re-encoded in the old layout.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobFeatures } from '../../src/format/constants.js';
import type { ChunkInfo } from '../../src/format/chunk-info.js';
import { checkImage } from '../../src/image/check.js';
import { prefetchPhases } from '../../src/daemon/prefetch-plan.js';
import { openBootstrap } from '../../src/rafs/index.js';
import type { RafsSuper } from '../../src/rafs/types.js';
import { pattern } from '../helpers/data.js';
import { toOldLayoutV5 } from '../helpers/old-v5.js';
import { BIN, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256 } from '../helpers/paths.js';
import { parseResultFile } from '../helpers/result-tree.js';
import { testDir } from '../helpers/tmp.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from './nydusd-proc.js';

const root = testDir('nydus-old-v5-');
after(() => assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts'));

/** Source tree: distinct multi-chunk files (compressible and not), a duplicate, an in-file repeat. */
function writeSource(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const half = (n: number, seed: number): Buffer => Buffer.concat([pattern(n >> 1, seed), Buffer.alloc(n - (n >> 1), seed & 0xff)]);
  files.set('a.bin', half(200_000, 1));
  files.set('b.bin', pattern(150_000, 2));
  files.set('sub/c.txt', Buffer.from('line of text\n'.repeat(12_000)));
  files.set('sub/d.bin', half(70_000, 3));
  files.set('dup.bin', half(200_000, 1));
  files.set('rep.bin', Buffer.concat([pattern(65536, 9), pattern(65536, 9), pattern(1000, 10)]));
  files.set('small', Buffer.from('tiny'));
  for (const [p, b] of files) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), b);
  }
  return files;
}

function allChunks(sb: RafsSuper): ChunkInfo[] {
  const out: ChunkInfo[] = [];
  const walk = (ino: number): void => {
    sb.readdir(ino, 0, (e) => {
      const i = sb.getInode(e.ino);
      if ((i.mode & 0o170000) === 0o040000) walk(e.ino);
      else if ((i.mode & 0o170000) === 0o100000) out.push(...sb.fileChunks(e.ino));
      return true;
    });
  };
  walk(sb.rootIno);
  return out;
}

function distinctByOffset(chunks: ChunkInfo[]): ChunkInfo[] {
  const m = new Map<number, ChunkInfo>();
  for (const c of chunks) m.set(c.compressedOffset, c);
  return [...m.values()].sort((a, b) => a.compressedOffset - b.compressedOffset);
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe('v5 without extended blob table (old layout)', () => {
  let files: Map<string, Buffer>;
  let oldBoot: string;
  let blobDir: string;
  let blobId: string;
  let chunks: ChunkInfo[];

  before(() => {
    const src = join(root, 'src');
    files = writeSource(src);
    blobDir = join(root, 'blobs');
    mkdirSync(blobDir);
    const boot = join(root, 'new.boot');
    const c = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--fs-version', '5', '--compressor', 'lz4_block', '--chunk-size', '0x10000', '-B', boot, '-D', blobDir, src], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    oldBoot = join(root, 'old.boot');
    writeFileSync(oldBoot, toOldLayoutV5(readFileSync(boot)));
    const sb = openBootstrap(readFileSync(oldBoot), 'old');
    assert.equal(sb.blobs.length, 1);
    blobId = sb.blobs[0]!.blobId;
    chunks = allChunks(sb);
  });

  it('the image has the old layout and several distinct lz4 chunks', () => {
    const sb = openBootstrap(readFileSync(oldBoot), 'old');
    assert.equal(sb.blobs[0]!.features, BlobFeatures._V5_NO_EXT_BLOB_TABLE);
    assert.equal(sb.blobs[0]!.compressor, 'lz4_block');
    assert.ok(chunks.every((c) => c.index === 0), 'every chunk record says index 0');
    assert.ok(distinctByOffset(chunks).length >= 10, `distinct chunks: ${distinctByOffset(chunks).length}`);
    assert.ok(chunks.some((c) => c.flags & 1) && chunks.some((c) => !(c.flags & 1)), 'compressed and raw chunks');
  });

  it('prefetch plans every distinct chunk once (not one chunk for the whole image)', () => {
    const sb = openBootstrap(readFileSync(oldBoot), 'old');
    const planned = prefetchPhases(sb, ['/'], true).flat();
    assert.equal(planned.length, distinctByOffset(chunks).length);
  });

  it('check --blob-dir verifies every distinct chunk', () => {
    const r = spawnSync(process.execPath, [BIN('nydus-image'), 'check', '-B', oldBoot, '--blob-dir', blobDir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`verified ${distinctByOffset(chunks).length} chunks`));
  });

  it('check fails naming the chunk when any chunk has a flipped byte', () => {
    const sb = openBootstrap(readFileSync(oldBoot), 'old');
    const good = readFileSync(join(blobDir, blobId));
    const dir = join(root, 'flipped');
    mkdirSync(dir);
    for (const c of distinctByOffset(chunks)) {
      const bad = Buffer.from(good);
      bad[c.compressedOffset + (c.compressedSize >> 1)]! ^= 0x01;
      writeFileSync(join(dir, blobId), bad);
      assert.throws(() => checkImage(sb, { blobDir: dir }), new RegExp(`compressed offset ${c.compressedOffset}\\b`), `flip in chunk at ${c.compressedOffset}`);
    }
    const last = distinctByOffset(chunks).at(-1)!;
    const r = spawnSync(process.execPath, [BIN('nydus-image'), 'check', '-B', oldBoot, '--blob-dir', dir], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'check must fail');
    assert.match(r.stderr, new RegExp(`compressed offset ${last.compressedOffset}\\b`));
  });

  const runs: Array<{ name: string; cache: Record<string, unknown> }> = [
    { name: 'blobcache', cache: {} },
    { name: 'blobcache + digest_validate', cache: { digest_validate: true } },
    { name: 'blobcache again', cache: {} },
    { name: 'dummycache', cache: { dummy: true } },
  ];
  runs.forEach((run, k) => {
    it(`nydusd serves every byte right: ${run.name}, fresh cache`, { skip: fuseUsable(), timeout: 90_000 }, async () => {
      const dir = join(root, `run${k}`);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt, { recursive: true });
      const cfg = localfsConfig(blobDir, join(dir, 'cache'), run.cache.digest_validate ? { digest_validate: true } : {});
      if (run.cache.dummy) (cfg.device as { cache: unknown }).cache = { type: 'dummycache' };
      const d = await startNydusd({ dir, mnt, bootstrap: oldBoot, config: cfg });
      try {
        // Twice: cold (fetch) then warm (cache), each file compared whole.
        for (let pass = 0; pass < 2; pass++) {
          for (const [p, want] of files) {
            const got = readFileSync(join(d.mnt, p));
            assert.equal(got.length, want.length, `${p} size (pass ${pass})`);
            assert.ok(got.equals(want), `${p}: wrong bytes (pass ${pass})`);
          }
        }
      } finally {
        await killAndClean(d);
      }
      if (!run.cache.dummy) assert.ok(readdirSync(join(dir, 'cache')).includes(`${blobId}.blob.data`), 'upstream cache layout');
    });
  });

  it('upstream fixture (real blob, 23 chunks) in the old layout: md5 of every file matches the .result', { skip: fuseUsable(), timeout: 90_000 }, async () => {
    const dir = join(root, 'fixture');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const boot = join(dir, 'old.boot');
    writeFileSync(boot, toOldLayoutV5(readFileSync(FIXTURE_V5_SHA256)));
    const sb = openBootstrap(readFileSync(boot), 'fixture');
    assert.equal(distinctByOffset(allChunks(sb)).length, 23);
    assert.ok(allChunks(sb).every((c) => c.index === 0));
    assert.equal(checkImage(sb, { blobDir: FIXTURE_V5_BLOB_DIR }).chunksVerified, 23);
    const expected = parseResultFile(readFileSync(`${FIXTURE_V5_SHA256}.result`, 'utf8'));
    for (let round = 0; round < 3; round++) {
      const d = await startNydusd({ dir, mnt, bootstrap: boot, config: localfsConfig(FIXTURE_V5_BLOB_DIR, join(dir, `cache${round}`), round === 1 ? { digest_validate: true } : {}) });
      try {
        for (const [p, sum] of expected.md5) {
          const f = join(d.mnt, p);
          if (!statSync(f).isFile()) continue;
          assert.equal(md5(readFileSync(f)), sum, `${p} (round ${round})`);
        }
      } finally {
        await killAndClean(d);
      }
    }
    // A flipped byte in any chunk of the real blob is caught.
    const good = readFileSync(join(FIXTURE_V5_BLOB_DIR, sb.blobs[0]!.blobId));
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    for (const c of distinctByOffset(allChunks(sb))) {
      const b = Buffer.from(good);
      b[c.compressedOffset + (c.compressedSize >> 1)]! ^= 0x80;
      writeFileSync(join(bad, sb.blobs[0]!.blobId), b);
      assert.throws(() => checkImage(sb, { blobDir: bad }), new RegExp(`compressed offset ${c.compressedOffset}\\b`));
    }
    copyFileSync(join(FIXTURE_V5_BLOB_DIR, sb.blobs[0]!.blobId), join(bad, sb.blobs[0]!.blobId));
  });
});
