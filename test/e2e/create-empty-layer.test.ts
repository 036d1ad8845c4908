// Regression: a tar layer with no file data, built with --blob-inline-meta, failed with
// "EROFS device slot 0: blocks is 0" because its chunk-less blob entered the blob table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';
import { decodeBlobToc, findTocEntry } from '../../src/format/blob/index.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { decompress } from '../../src/format/compress.js';

test('a data-less layer with --blob-inline-meta builds; its bootstrap has no blobs', () => {
  const d = testDir('nydus-empty-layer-');
  mkdirSync(join(d, 'src/dir'), { recursive: true });
  assert.equal(spawnSync('tar', ['-cf', join(d, 'l.tar'), '-C', join(d, 'src'), 'dir']).status, 0);
  const r = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--type', 'tar-rafs', '--blob-inline-meta', '--features', 'blob-toc', '--blob', join(d, 'blob'), '--output-json', join(d, 'out.json'), join(d, 'l.tar')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(d, 'out.json'), 'utf8')).blobs, []);
  // The blob file still carries the bootstrap, found through its ToC.
  const blob = readFileSync(join(d, 'blob'));
  const toc = decodeBlobToc(blob.subarray(Math.max(0, blob.length - 4096)));
  const boot = findTocEntry(toc, 'image.boot');
  assert.ok(boot, 'image.boot in the ToC');
  const stored = blob.subarray(boot.compressedOffset, boot.compressedOffset + boot.compressedSize);
  const bytes = boot.compressedSize === boot.uncompressedSize ? stored : decompress(stored, 'zstd', boot.uncompressedSize);
  const sb = openBootstrap(bytes);
  sb.validate();
  assert.equal(sb.blobs.length, 0);
  assert.ok(sb.lookup(sb.rootIno, Buffer.from('dir')));
});
