// nydus-image create, end to end: CLI and createImage() build images that read back byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '../../src/builder/index.js';
import type { Compressor, Digester } from '../../src/format/constants.js';
import { comparable, describeDir, describeImage, linkGroups, makeSourceTree, runCli } from './create-helpers.js';

function withTmp(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nydus-create-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'CLI create (seed flags) builds a v6 image whose files read back byte for byte with metadata',
  withTmp((dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    makeSourceTree(src);
    const args = ['create', '--bootstrap', join(dir, 'boot'), '--log-level', 'warn', '--whiteout-spec', 'oci', '--output-json', join(dir, 'out.json'), '--blob', join(dir, 'blob'), '--fs-version', '6', '--compressor', 'zstd', '--chunk-size', '0x100000', src];
    const r = runCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'silent at --log-level warn');
    const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
    assert.deepEqual(Object.keys(out), ['version', 'bootstrap', 'blobs', 'external_bootstrap', 'external_blobs', 'trace', 'fs_version', 'compressor']);
    assert.equal(out.bootstrap, join(dir, 'boot'));
    assert.equal(out.fs_version, '6');
    assert.equal(out.compressor, 'zstd');
    assert.match(out.blobs[0], /^[0-9a-f]{64}$/);
    assert.equal(out.blobs.length, 1);
    assert.equal(typeof out.trace.consumed_time.total_build, 'number');
    const img = describeImage(readFileSync(join(dir, 'boot')), () => join(dir, 'blob'));
    assert.equal(img.sb.blobs[0]!.blobId, out.blobs[0]);
    assert.deepEqual(comparable(img.entries), comparable(describeDir(src)));
    assert.deepEqual(linkGroups(img.entries), [['/dir/hl-b', '/hl-a']]);
  }),
);

const MATRIX: Array<[5 | 6, Compressor, Digester, number]> = [];
for (const v of [6, 5] as const) for (const c of ['none', 'lz4_block', 'zstd'] as const) for (const d of ['blake3', 'sha256'] as const) for (const cs of [0x1000, 0x100000]) MATRIX.push([v, c, d, cs]);

test(
  'createImage() round-trips the tree for v5/v6 × none/lz4_block/zstd × blake3/sha256 × 4 KiB/1 MiB chunks',
  withTmp(async (dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    makeSourceTree(src);
    const want = comparable(describeDir(src));
    for (const [fsVersion, compressor, digester, chunkSize] of MATRIX) {
      const tag = `v${fsVersion}-${compressor}-${digester}-${chunkSize}`;
      const r = await createImage({ source: src, bootstrap: join(dir, `${tag}.boot`), blob: join(dir, `${tag}.blob`), fsVersion, compressor, digester, chunkSize });
      const img = describeImage(readFileSync(join(dir, `${tag}.boot`)), () => join(dir, `${tag}.blob`));
      assert.equal(img.sb.meta.version, fsVersion, tag);
      assert.equal(img.sb.meta.compressor, compressor, tag);
      assert.equal(img.sb.meta.digester, digester, tag);
      assert.equal(img.sb.meta.chunkSize, chunkSize, tag);
      assert.deepEqual(comparable(img.entries), want, tag);
      assert.deepEqual(linkGroups(img.entries), [['/dir/hl-b', '/hl-a']], tag);
      assert.equal(r.blobSize, statSync(join(dir, `${tag}.blob`)).size, tag);
      if (compressor === 'none') assert.ok(r.stats.storedBytes < r.stats.bytes, `${tag}: zero chunks of the sparse file are stored once`);
    }
  }),
);

test(
  'two identical 10 MiB files store their chunks once (blob size proves it); hardlinks are read once',
  withTmp(async (dir) => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const data = randomBytes(10 << 20);
    writeFileSync(join(src, 'a'), data);
    writeFileSync(join(src, 'b'), data);
    const r = await createImage({ source: src, bootstrap: join(dir, 'boot'), blob: join(dir, 'blob'), compressor: 'none' });
    assert.equal(r.stats.chunks, 20);
    assert.equal(r.stats.storedChunks, 10);
    assert.equal(r.stats.dedupChunks, 10);
    const size = statSync(join(dir, 'blob')).size;
    assert.ok(size >= 10 << 20 && size < (10 << 20) + (64 << 10), `blob size ${size}`);
    const img = describeImage(readFileSync(join(dir, 'boot')), () => join(dir, 'blob'));
    assert.ok(img.entries.get('/a')!.data!.equals(data) && img.entries.get('/b')!.data!.equals(data));
  }),
);

test(
  '--parent-bootstrap reuses parent chunks, appends a blob with only new data and applies whiteouts',
  withTmp((dir) => {
    const l1 = join(dir, 'l1');
    const l2 = join(dir, 'l2');
    mkdirSync(join(l1, 'etc'), { recursive: true });
    mkdirSync(join(l2, 'etc'), { recursive: true });
    const shared = randomBytes(3 << 20);
    writeFileSync(join(l1, 'etc/base'), shared);
    writeFileSync(join(l1, 'etc/removed'), 'bye');
    writeFileSync(join(l2, 'etc/copy-of-base'), shared);
    writeFileSync(join(l2, 'etc/new'), 'brand new');
    writeFileSync(join(l2, 'etc/.wh.removed'), '');
    let r = runCli(['create', '-B', join(dir, 'b1'), '-b', join(dir, 'blob1'), '-J', join(dir, 'j1'), '--compressor', 'none', l1]);
    assert.equal(r.code, 0, r.stderr);
    r = runCli(['create', '-B', join(dir, 'b2'), '-b', join(dir, 'blob2'), '-J', join(dir, 'j2'), '--compressor', 'none', '--parent-bootstrap', join(dir, 'b1'), l2]);
    assert.equal(r.code, 0, r.stderr);
    const j1 = JSON.parse(readFileSync(join(dir, 'j1'), 'utf8'));
    const j2 = JSON.parse(readFileSync(join(dir, 'j2'), 'utf8'));
    assert.deepEqual(j2.blobs, [j1.blobs[0], j2.blobs[1]]);
    assert.ok(statSync(join(dir, 'blob2')).size < 64 << 10, 'no parent data copied');
    const files: Record<string, string> = { [j1.blobs[0]]: join(dir, 'blob1'), [j2.blobs[1]]: join(dir, 'blob2') };
    const img = describeImage(readFileSync(join(dir, 'b2')), (id) => files[id]!);
    assert.deepEqual([...img.entries.keys()].sort(), ['/', '/etc', '/etc/base', '/etc/copy-of-base', '/etc/new']);
    assert.ok(img.entries.get('/etc/copy-of-base')!.data!.equals(shared));
    assert.equal(img.entries.get('/etc/new')!.data!.toString(), 'brand new');
  }),
);

test(
  '--chunk-dict bootstrap=PATH stores no new data for content the dictionary has',
  withTmp((dir) => {
    const d = join(dir, 'dict');
    const s = join(dir, 'src');
    mkdirSync(d);
    mkdirSync(s);
    const content = randomBytes(2 << 20);
    writeFileSync(join(d, 'x'), content);
    writeFileSync(join(s, 'y'), content);
    let r = runCli(['create', '-B', join(dir, 'dict.boot'), '-b', join(dir, 'dict.blob'), '-J', join(dir, 'jd'), d]);
    assert.equal(r.code, 0, r.stderr);
    for (const form of [`bootstrap=${join(dir, 'dict.boot')}`, join(dir, 'dict.boot')]) {
      r = runCli(['create', '-B', join(dir, 'boot'), '-b', join(dir, 'blob'), '-J', join(dir, 'j'), '--chunk-dict', form, s]);
      assert.equal(r.code, 0, r.stderr);
      const jd = JSON.parse(readFileSync(join(dir, 'jd'), 'utf8'));
      const j = JSON.parse(readFileSync(join(dir, 'j'), 'utf8'));
      assert.deepEqual(j.blobs, jd.blobs, 'only the dictionary blob is referenced');
      assert.equal(statSync(join(dir, 'blob')).size, 0);
      const img = describeImage(readFileSync(join(dir, 'boot')), () => join(dir, 'dict.blob'));
      assert.ok(img.entries.get('/y')!.data!.equals(content));
    }
  }),
);

test(
  '--blob-dir names the blob by its id and the bootstrap by its sha256',
  withTmp((dir) => {
    const s = join(dir, 'src');
    const out = join(dir, 'out');
    mkdirSync(s);
    mkdirSync(out);
    writeFileSync(join(s, 'f'), 'data');
    const r = runCli(['create', '-D', out, '-J', join(dir, 'j'), s]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(readFileSync(join(dir, 'j'), 'utf8'));
    const names = readdirSync(out).sort();
    assert.equal(names.length, 2);
    assert.ok(names.includes(j.blobs[0]));
    const boot = readFileSync(j.bootstrap);
    assert.equal(j.bootstrap, join(out, createHash('sha256').update(boot).digest('hex')));
  }),
);

test(
  '--prefetch-policy fs places the listed files first in the blob',
  withTmp((dir) => {
    const s = join(dir, 'src');
    mkdirSync(join(s, 'z'), { recursive: true });
    writeFileSync(join(s, 'a'), randomBytes(5000));
    writeFileSync(join(s, 'z/late'), randomBytes(5000));
    const r = runCli(['create', '-B', join(dir, 'boot'), '-b', join(dir, 'blob'), '--prefetch-policy', 'fs', '--compressor', 'none', s], 'relative/ignored\n/z/late\n/z/late/below\n');
    assert.equal(r.code, 0, r.stderr);
    const img = describeImage(readFileSync(join(dir, 'boot')), () => join(dir, 'blob'));
    const late = img.sb.fileChunks(img.sb.lookup(img.sb.lookup(img.sb.rootIno, Buffer.from('z'))!.ino, Buffer.from('late'))!.ino);
    assert.equal(late[0]!.compressedOffset, 0);
    assert.equal(img.sb.prefetchInodes().length, 1);
  }),
);

test(
  '--blob-inline-meta puts the bootstrap in the blob and reports an empty bootstrap path',
  withTmp((dir) => {
    const s = join(dir, 'src');
    mkdirSync(s);
    writeFileSync(join(s, 'f'), 'inline');
    const r = runCli(['create', '--blob-inline-meta', '--features', 'blob-toc', '-b', join(dir, 'blob'), '-J', join(dir, 'j'), '--type', 'directory', s]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(readFileSync(join(dir, 'j'), 'utf8'));
    assert.equal(j.bootstrap, '');
    assert.match(j.blobs[0], /^[0-9a-f]{64}$/);
    assert.ok(statSync(join(dir, 'blob')).size > 4096);
  }),
);

test(
  'bad flags and sources give one-line errors with exit codes 2 and 1',
  withTmp((dir) => {
    mkdirSync(join(dir, 's'));
    const B = ['-B', join(dir, 'boot')];
    const cases: Array<[string[], number, RegExp]> = [
      [['create', ...B, '--chunk-size', '0x3000', join(dir, 's')], 2, /invalid --chunk-size 0x3000/],
      [['create', ...B, '--chunk-size', 'lots', join(dir, 's')], 2, /invalid value 'lots' for --chunk-size/],
      [['create', ...B, '--chunk-size', '0x2000000', join(dir, 's')], 2, /invalid --chunk-size/],
      [['create', ...B, '--compressor', 'brotli', join(dir, 's')], 2, /--compressor.*'brotli' is invalid/],
      [['create', ...B, '--digester', 'md5', join(dir, 's')], 2, /--digester/],
      [['create', ...B, '--fs-version', '7', join(dir, 's')], 2, /--fs-version/],
      [['create', ...B, '--whiteout-spec', 'aufs', join(dir, 's')], 2, /--whiteout-spec/],
      [['create', ...B, '--type', 'estargztoc-ref', join(dir, 's')], 2, /not supported/],
      [['create', ...B, '--bogus', join(dir, 's')], 2, /bogus/],
      [['create', ...B], 2, /missing required argument 'SOURCE'/],
      [['create', join(dir, 's')], 2, /missing --bootstrap/],
      [['create', ...B, '--blob-inline-meta', '-b', join(dir, 'x'), join(dir, 's')], 2, /conflicts with --bootstrap/],
      [['create', ...B, '--chunk-dict', 'db=x', join(dir, 's')], 2, /--chunk-dict/],
      [['frobnicate'], 2, /unknown subcommand 'frobnicate'/],
      [['create', ...B, join(dir, 'missing')], 1, /source .*missing: no such directory/],
      [['create', ...B, '--parent-bootstrap', join(dir, 'nope'), join(dir, 's')], 1, /parent bootstrap .*nope: ENOENT/],
      [['create', ...B, '-t', 'tar-rafs', join(dir, 's')], 1, /is a directory, not a tar file/],
    ];
    for (const [args, code, re] of cases) {
      const r = runCli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      const first = r.stderr.split('\n')[0]!;
      assert.match(first, /^nydus-image: /, args.join(' '));
      assert.match(first, re, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  }),
);
