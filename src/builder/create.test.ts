import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createImage, dataOrder, parseChunkDictArg, parsePrefetchPatterns, validateChunkSize } from './create.js';
import type { TreeNode } from '../format/image-model.js';

const node = (name: string, mode: number, children: TreeNode[] = [], hardlinkKey?: string): TreeNode => ({
  name: Buffer.from(name),
  mode,
  uid: 0,
  gid: 0,
  mtime: 0,
  mtimeNsec: 0,
  rdev: 0,
  size: 1,
  xattrs: [],
  children,
  chunks: [],
  ...(hardlinkKey ? { hardlinkKey } : {}),
});
const F = 0o100644;
const D = 0o40755;
const names = (ns: TreeNode[]): string[] => ns.map((n) => Buffer.from(n.name).toString());

test('parsePrefetchPatterns() keeps absolute paths in order and drops covered ones', () => {
  assert.deepEqual(parsePrefetchPatterns('/a/b\nrel\n\n/a/b/c\n /x/ \n/a/bc\n/x//y\n'), ['/a/b', '/x', '/a/bc']);
  assert.deepEqual(parsePrefetchPatterns('/\n/a\n'), ['/']);
});

test('parseChunkDictArg() accepts bootstrap=PATH and a bare path only', () => {
  assert.equal(parseChunkDictArg('bootstrap=/x/y'), '/x/y');
  assert.equal(parseChunkDictArg('/x/y'), '/x/y');
  assert.throws(() => parseChunkDictArg('db=/x'), /only 'bootstrap=PATH'/);
});

test('validateChunkSize() allows powers of two in [0x1000, 0x1000000]', () => {
  for (const ok of [0x1000, 0x100000, 0x1000000]) validateChunkSize(ok);
  for (const bad of [0x800, 0x3000, 0x2000000, 0]) assert.throws(() => validateChunkSize(bad), /power of two/);
});

test('dataOrder() puts prefetch files first, then index order, each hardlinked inode once', () => {
  const root = node('/', D, [
    node('a', F),
    node('d', D, [node('x', F), node('e', D, [node('deep', F)]), node('y', F, [], 'k')]),
    node('z', F, [], 'k'),
  ]);
  assert.deepEqual(names(dataOrder(root, [])), ['a', 'z', 'x', 'deep']);
  assert.deepEqual(names(dataOrder(root, ['/d/e', '/missing', '/a'])), ['deep', 'a', 'z', 'x']);
});

test('createImage() rejects conflicting options before touching the source', async () => {
  await assert.rejects(createImage({ source: '/nonexistent' }), /missing --bootstrap/);
  await assert.rejects(createImage({ source: '/x', bootstrap: '/b', blobInlineMeta: true }), /conflicts with --bootstrap/);
  await assert.rejects(createImage({ source: '-', bootstrap: '/b' }), /only supported with --type tar-rafs/);
  await assert.rejects(createImage({ source: '/x', bootstrap: '/b', fsVersion: 5, blobToc: true }), /requires --fs-version 6/);
});
