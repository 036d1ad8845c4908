// create → unpack → `tar --xattrs -xpf` gives back the source tree with its metadata, for
// v5/v6 × none/lz4_block/zstd × blake3/sha256 × 4 KiB/1 MiB chunks (in-process, 24 builds), and once
// through the CLI. (test/e2e/create.test.ts compares the same matrix through the reader; this one
// goes through unpack's tar, which is what users extract.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '../../src/builder/create.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { unpackToTar } from '../../src/image/unpack.js';
import type { Compressor, Digester } from '../../src/format/constants.js';
import { asObject, cli, describe, hardlinkGroups, makeFullTree, type Rec } from './tree-helpers.js';

/** Extracts with every xattr namespace restored (GNU tar needs --xattrs-include for trusted./security.). */
function extract(tarPath: string, dir: string): void {
  mkdirSync(dir);
  const t = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarPath, '-C', dir], { encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
}

/** Tar cannot hold sockets, and the root directory is implicit in a layer tar. */
const notInTar = (k: string, r: Rec): boolean => k === '/' || r.type === 'socket';

function tarHardlinks(tarPath: string): string[] {
  const r = spawnSync('tar', ['-tvf', tarPath], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith('h')).map((l) => l.replace(/^.* (\S+) link to (\S+)$/, '$1 -> $2')).sort();
}

test('create → unpack → tar -xpf round-trips the tree for all 24 format combinations', async () => {
  const d = mkdtempSync(join(tmpdir(), 'nydus-rt-'));
  try {
    const src = join(d, 'src');
    mkdirSync(src);
    makeFullTree(src, { full: false });
    const want = asObject(describe(src, { dirNlink: true }), notInTar);
    const wantLinks = hardlinkGroups(src);
    assert.equal(wantLinks.length, 1);
    for (const fsVersion of [5, 6] as const) {
      for (const compressor of ['none', 'lz4_block', 'zstd'] as Compressor[]) {
        for (const digester of ['blake3', 'sha256'] as Digester[]) {
          for (const chunkSize of [0x1000, 0x100000]) {
            const tag = `v${fsVersion}-${compressor}-${digester}-${chunkSize}`;
            const boot = join(d, `${tag}.boot`);
            const blob = join(d, `${tag}.blob`);
            await createImage({ source: src, bootstrap: boot, blob, fsVersion, compressor, digester, chunkSize });
            const sb = openBootstrap(readFileSync(boot), tag);
            assert.deepEqual([sb.meta.version, sb.meta.compressor, sb.meta.digester, sb.meta.chunkSize], [fsVersion, compressor, digester, chunkSize], tag);
            const tarPath = join(d, `${tag}.tar`);
            unpackToTar(sb, { blobPath: blob }, tarPath, true);
            const x = join(d, `${tag}.x`);
            extract(tarPath, x);
            assert.deepEqual(asObject(describe(x, { dirNlink: true }), notInTar), want, tag);
            assert.deepEqual(hardlinkGroups(x), wantLinks, tag);
            // Two of the three names are link entries pointing at the first one.
            assert.equal(tarHardlinks(tarPath).length, 2, tag);
            rmSync(x, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('create → unpack → tar -xpf through the CLI (v5, lz4_block, sha256, 4 KiB chunks)', () => {
  const d = mkdtempSync(join(tmpdir(), 'nydus-rt-cli-'));
  try {
    const src = join(d, 'src');
    mkdirSync(src);
    makeFullTree(src, { full: true });
    const c = cli(['create', '--fs-version', '5', '--compressor', 'lz4_block', '--digester', 'sha256', '--chunk-size', '0x1000', '-B', join(d, 'boot'), '-b', join(d, 'blob'), '--log-level', 'warn', src]);
    assert.equal(c.code, 0, c.stderr);
    const u = cli(['unpack', join(d, 'boot'), '-b', join(d, 'blob'), '--output', join(d, 'out.tar')]);
    assert.equal(u.code, 0, u.stderr);
    extract(join(d, 'out.tar'), join(d, 'x'));
    assert.deepEqual(asObject(describe(join(d, 'x'), { dirNlink: true }), notInTar), asObject(describe(src, { dirNlink: true }), notInTar));
    assert.deepEqual(hardlinkGroups(join(d, 'x')), hardlinkGroups(src));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
