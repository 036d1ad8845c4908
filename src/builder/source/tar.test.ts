import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChunkInfo } from '../../format/chunk-info.js';
import { S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, type TreeNode } from '../../format/image-model.js';
import { readTar } from '../../format/tar-reader.js';
import { makedev, scanTar, tarPathComponents } from './tar.js';
import { TAR_END as end, padBlock as pad, ustarHeader as header, longNameTree } from '../../format/testing/tar.js';


async function* chunks(b: Buffer, step = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += step) yield b.subarray(i, i + step);
}

/** scanTar with file data collected in memory (one fake chunk per file). */
async function scan(tar: Buffer | AsyncIterable<Uint8Array>): Promise<{ root: TreeNode; data: Map<ChunkInfo[], Buffer> }> {
  const data = new Map<ChunkInfo[], Buffer>();
  const input = Buffer.isBuffer(tar) ? chunks(tar) : tar;
  const src = await scanTar(input, {
    explicitUidGid: true,
    onFileData: async (body, size, out) => {
      const parts: Buffer[] = [];
      for await (const b of body) parts.push(Buffer.from(b));
      const all = Buffer.concat(parts);
      assert.equal(all.length, size);
      data.set(out, all);
    },
  });
  return { root: src.root, data };
}

function find(root: TreeNode, path: string): TreeNode {
  let n = root;
  for (const p of path.split('/').filter(Boolean)) {
    const c = n.children.find((x) => Buffer.from(x.name).toString() === p);
    assert.ok(c, `missing ${path}`);
    n = c;
  }
  return n;
}

test('tarPathComponents() normalises ./ and rejects .. and absolute paths', () => {
  assert.deepEqual(tarPathComponents(Buffer.from('./a//b/./c/')).map(String), ['a', 'b', 'c']);
  assert.deepEqual(tarPathComponents(Buffer.from('./')), []);
  assert.throws(() => tarPathComponents(Buffer.from('a/../../etc')), /escapes the root/);
  assert.throws(() => tarPathComponents(Buffer.from('/etc/passwd')), /absolute path/);
});

test('makedev() matches glibc for small and large numbers', () => {
  assert.equal(makedev(1, 3), 0x103);
  assert.equal(makedev(8, 17), 0x811);
  assert.equal(makedev(259, 0x1234), (0x34 | (259 << 8) | (0x1200 << 12)) >>> 0);
});

test('scanTar() builds implicit parents, files, links and devices from a hand-made tar', async () => {
  const body = Buffer.from('hello world');
  const tar = Buffer.concat([
    header('a/b/f.txt', { size: body.length, mode: 0o600 }),
    pad(body),
    header('a/b/hl', { type: '1', link: 'a/b/f.txt' }),
    header('sl', { type: '2', link: 'a/b/f.txt' }),
    header('dev/null', { type: '3', major: 1, minor: 3, mode: 0o666 }),
    header('fifo', { type: '6' }),
    header('a/', { type: '5', mode: 0o700 }),
    end,
  ]);
  const { root, data } = await scan(tar);
  assert.deepEqual(root.children.map((c) => Buffer.from(c.name).toString()), ['a', 'dev', 'fifo', 'sl']);
  const a = find(root, 'a');
  assert.equal(a.mode, S_IFDIR | 0o700);
  assert.equal(find(root, 'a/b').mode, S_IFDIR | 0o755, 'implicit parent is 0755');
  const f = find(root, 'a/b/f.txt');
  assert.equal(f.mode, S_IFREG | 0o600);
  assert.equal(f.size, body.length);
  assert.deepEqual(data.get(f.chunks), body);
  const hl = find(root, 'a/b/hl');
  assert.ok(f.hardlinkKey && hl.hardlinkKey === f.hardlinkKey);
  assert.equal(hl.chunks, f.chunks, 'hardlink shares the chunk list');
  const sl = find(root, 'sl');
  assert.equal(sl.mode & S_IFMT, S_IFLNK);
  assert.equal(Buffer.from(sl.symlink!).toString(), 'a/b/f.txt');
  assert.equal(sl.size, 9);
  const dev = find(root, 'dev/null');
  assert.equal(dev.mode, S_IFCHR | 0o666);
  assert.equal(dev.rdev, 0x103);
  assert.equal(find(root, 'fifo').mode & S_IFMT, S_IFIFO);
});

test('scanTar() rejects escaping paths, bad checksums, truncation and unknown hardlink targets', async () => {
  await assert.rejects(scan(Buffer.concat([header('../evil', { size: 0 }), end])), /escapes the root/);
  await assert.rejects(scan(Buffer.concat([header('/etc/passwd', { size: 0 }), end])), /absolute path/);
  await assert.rejects(scan(Buffer.concat([header('x', { type: '1', link: '../../etc/shadow' }), end])), /escapes the root/);
  await assert.rejects(scan(Buffer.concat([header('x', { type: '1', link: 'nope' }), end])), /unknown target 'nope'/);
  const bad = header('x', { size: 0 });
  bad[0] = 0x79;
  await assert.rejects(scan(Buffer.concat([bad, end])), /bad header checksum/);
  await assert.rejects(scan(Buffer.concat([header('big', { size: 5000 }), Buffer.alloc(1000)])), /before the size its header declares/);
  await assert.rejects(scan(Buffer.from('this is not a tar file at all'.repeat(30))), /checksum|end of input/);
});

test('readTar() handles PAX records, GNU long names and xattrs from GNU tar', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-tar-'));
  try {
    const src = join(dir, 'src');
    const long = longNameTree(src);
    let xattrs = true;
    try {
      execFileSync('setfattr', ['-n', 'user.k', '-v', 'v1', join(src, 'x')]);
    } catch {
      xattrs = false;
    }
    for (const format of ['gnu', 'posix']) {
      const tarPath = join(dir, `${format}.tar`);
      execFileSync('tar', [...(format === 'posix' ? ['--xattrs'] : []), `--format=${format}`, '-cf', tarPath, '-C', src, '.']);
      const { root, data } = await scan(readFileSync(tarPath));
      const n = find(root, long);
      assert.equal(data.get(n.chunks)?.toString(), 'long', format);
      assert.equal(Buffer.from(find(root, 'longlink').symlink!).toString(), 't'.repeat(200));
      const x = find(root, 'x');
      assert.deepEqual(data.get(x.chunks), Buffer.alloc(70000, 7));
      assert.equal(find(root, 'x-link').hardlinkKey, x.hardlinkKey);
      if (xattrs && format === 'posix') {
        assert.deepEqual(x.xattrs.map(([k, v]) => [Buffer.from(k).toString(), Buffer.from(v).toString()]), [['user.k', 'v1']]);
      }
    }
    if (!xattrs) t.diagnostic('setfattr unavailable: xattr check skipped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readTar() lets a consumer skip bodies and still finds the next header', async () => {
  const tar = Buffer.concat([header('a', { size: 600 }), pad(Buffer.alloc(600, 1)), header('b', { size: 3 }), pad(Buffer.from('abc')), end]);
  const names: string[] = [];
  for await (const e of readTar(chunks(tar, 100))) {
    names.push(e.path.toString());
    if (e.path.toString() === 'a') {
      for await (const _ of e.body) break; // read a little, then abandon
    }
  }
  assert.deepEqual(names, ['a', 'b']);
});

test('scanTar() turns a hardlink to a symlink into an independent copy with the target metadata', async () => {
  const tar = Buffer.concat([header('s', { type: '2', link: 'dest', mode: 0o777 }), header('d/', { type: '5' }), header('d/s2', { type: '1', link: './s' }), end]);
  const { root } = await scan(tar);
  const s2 = find(root, 'd/s2');
  assert.equal(s2.mode & S_IFMT, S_IFLNK);
  assert.equal(Buffer.from(s2.symlink!).toString(), 'dest');
  assert.equal(s2.hardlinkKey, undefined);
});

test('scanTar() reads gzip-compressed layers and skips eStargz metadata files', async () => {
  const { gzipSync } = await import('node:zlib');
  const tar = Buffer.concat([header('stargz.index.json', { size: 2 }), pad(Buffer.from('{}')), header('f', { size: 1 }), pad(Buffer.from('z')), end]);
  const { root, data } = await scan(gzipSync(tar));
  assert.deepEqual(root.children.map((c) => Buffer.from(c.name).toString()), ['f']);
  assert.equal(data.get(find(root, 'f').chunks)?.toString(), 'z');
});
