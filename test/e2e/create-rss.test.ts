// Builder memory on a tar of many empty entries (issue 11 defect 8: a 1.8 MB tar.gz with 300k empty
// files took 607 MB RSS under Node 20, 751 MB under Node 24, about 2 KB per entry). Peak RSS of the
// nydus-image child via GNU time; the bound is generous (machine noise, GC timing) but below the old peak.
// v5 peaked at 788 MB (one record buffer and one native digest per inode) before records were encoded
// in place; it now peaks where v6 does, in building the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { finished } from 'node:stream/promises';
import { encodeTarHeader } from '../../src/image/tar-writer.js';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';

const ENTRIES = 300_000;
const BOUND_MB = 640;

for (const v of ['5', '6']) test(`create (v${v}) from a tar.gz of ${ENTRIES} empty files stays under ${BOUND_MB} MB peak RSS`, { timeout: 280_000, skip: existsSync('/usr/bin/time') ? false : 'GNU time (/usr/bin/time) not installed' }, async () => {
  const d = testDir('nydus-rss-');
  const tgz = join(d, 'many.tar.gz');
  const gz = createGzip({ level: 1 });
  const done = finished(gz.pipe(createWriteStream(tgz)));
  for (let i = 0; i < ENTRIES; i++) {
    const h = encodeTarHeader({ path: Buffer.from(`d${Math.floor(i / 1000)}/f${i}`), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, mtimeNsec: 0 });
    if (!gz.write(h)) await new Promise((r) => gz.once('drain', r));
  }
  gz.end(Buffer.alloc(1024));
  await done;
  mkdirSync(join(d, 'blobs'));
  const r = spawnSync('/usr/bin/time', ['-f', 'PEAK_RSS_KB=%M', process.execPath, BIN('nydus-image'), 'create', '-t', 'tar-rafs', '--fs-version', v, '-B', join(d, 'boot'), '-D', join(d, 'blobs'), tgz], { encoding: 'utf8', timeout: 260_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /300301 inodes/);
  const kb = Number(/PEAK_RSS_KB=(\d+)/.exec(r.stderr)?.[1]);
  assert.ok(kb > 0, `no peak RSS in: ${r.stderr}`);
  assert.ok(kb / 1024 < BOUND_MB, `peak RSS ${Math.round(kb / 1024)} MB for ${ENTRIES} entries (bound ${BOUND_MB} MB)`);
});
