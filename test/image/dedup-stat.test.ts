// Chunk dedup seen from the image tools (`stat --json`, `inspect -R`): identical files share chunks;
// --parent-bootstrap and --chunk-dict builds reference the parent's/dictionary's chunks instead of
// storing new data. (test/e2e/create.test.ts checks the same through build stats and blob sizes.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './tree-helpers.js';

interface Chunk {
  blob_index: number;
  index: number;
  compressed_offset: number;
  digest: string;
}

const MiB = 1 << 20;

function json<T>(args: string[]): T {
  const r = cli(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
const chunksOf = (boot: string, path: string): Chunk[] => json<{ chunks: Chunk[] }>(['inspect', boot, '-R', `stat ${path}`]).chunks;

function withTmp(fn: (d: string) => void): () => void {
  return () => {
    const d = mkdtempSync(join(tmpdir(), 'nydus-dedup-'));
    try {
      fn(d);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  };
}

for (const fsVersion of ['5', '6']) {
  test(
    `v${fsVersion}: two identical 10 MiB files: stat counts 20 chunks, 10 unique; inspect shows one blob range`,
    withTmp((d) => {
      const src = join(d, 'src');
      mkdirSync(src);
      const data = randomBytes(10 * MiB);
      writeFileSync(join(src, 'a'), data);
      writeFileSync(join(src, 'b'), data);
      const boot = join(d, 'boot');
      const c = cli(['create', '--fs-version', fsVersion, '--compressor', 'zstd', '-B', boot, '-b', join(d, 'blob'), src]);
      assert.equal(c.code, 0, c.stderr);
      const st = json<{ base_image: Record<string, number> }>(['stat', '-B', boot, '--json']).base_image;
      assert.equal(st.files, 2);
      assert.equal(st.file_size, 20 * MiB);
      assert.equal(st.chunks, 20);
      assert.equal(st.dedup_chunks, 10);
      assert.equal(st.dedup_uncomp_size, 10 * MiB);
      // Random data does not compress: the blob holds one copy (plus metadata), not two.
      const comp = st.comp_size ?? 0;
      assert.ok(comp >= 10 * MiB && comp < 11 * MiB, `comp_size ${comp}`);
      assert.ok(statSync(join(d, 'blob')).size < 11 * MiB);
      const [blob] = json<Array<{ chunk_count: number }>>(['inspect', boot, '-R', 'blobs']);
      assert.equal(blob!.chunk_count, 10);
      const a = chunksOf(boot, '/a');
      const b = chunksOf(boot, '/b');
      assert.equal(a.length, 10);
      assert.deepEqual(b.map((x) => [x.blob_index, x.compressed_offset]), a.map((x) => [x.blob_index, x.compressed_offset]));
      // And the data still reads back: check verifies every (shared) chunk.
      assert.equal(cli(['check', boot, '-b', join(d, 'blob')]).code, 0);
    }),
  );
}

test(
  '--parent-bootstrap: stat -T counts the copied content as references, own chunks only for new data',
  withTmp((d) => {
    const l1 = join(d, 'l1');
    const l2 = join(d, 'l2');
    mkdirSync(l1);
    mkdirSync(l2);
    const shared = randomBytes(3 * MiB);
    writeFileSync(join(l1, 'base'), shared);
    writeFileSync(join(l2, 'copy'), shared);
    writeFileSync(join(l2, 'new'), randomBytes(MiB / 2));
    mkdirSync(join(d, 'blobs'));
    let r = cli(['create', '--fs-version', '5', '-B', join(d, 'b1'), '-D', join(d, 'blobs'), '-J', join(d, 'j1'), l1]);
    assert.equal(r.code, 0, r.stderr);
    r = cli(['create', '--fs-version', '5', '-B', join(d, 'b2'), '-D', join(d, 'blobs'), '-J', join(d, 'j2'), '--parent-bootstrap', join(d, 'b1'), l2]);
    assert.equal(r.code, 0, r.stderr);
    const j1 = JSON.parse(readFileSync(join(d, 'j1'), 'utf8'));
    const j2 = JSON.parse(readFileSync(join(d, 'j2'), 'utf8'));
    const s = json<{ target_image: Record<string, number> }>(['stat', '-B', join(d, 'b1'), '-T', join(d, 'b2'), '--json']).target_image;
    assert.equal(s.files, 3, 'base, copy, new');
    assert.equal(s.ref_chunks, 3, 'base and copy share the parent chunks');
    assert.equal(s.own_chunks, 1, 'only /new is new');
    assert.equal(s.own_uncomp_size, MiB / 2);
    // Copied content points into the parent's blob (index 0); the new blob holds only /new.
    assert.ok(chunksOf(join(d, 'b2'), '/copy').every((c) => c.blob_index === 0));
    assert.ok(chunksOf(join(d, 'b2'), '/new').every((c) => c.blob_index === 1));
    const blobs = json<Array<{ blob_id: string; chunk_count: number; decompressed_size: number }>>(['inspect', join(d, 'b2'), '-R', 'blobs']);
    assert.deepEqual(blobs.map((b) => b.blob_id), [j1.blobs[0], j2.blobs[1]]);
    assert.equal(blobs[1]!.chunk_count, 1);
    assert.ok(statSync(join(d, 'blobs', j2.blobs[1])).size < MiB);
    assert.equal(cli(['check', join(d, 'b2'), '-D', join(d, 'blobs')]).code, 0);
  }),
);

test(
  '--chunk-dict: stat -T shows every chunk as a reference to the dictionary and no own data',
  withTmp((d) => {
    const dict = join(d, 'dict');
    const src = join(d, 'src');
    mkdirSync(dict);
    mkdirSync(src);
    const content = randomBytes(2 * MiB + 100);
    writeFileSync(join(dict, 'x'), content);
    writeFileSync(join(src, 'y'), content);
    mkdirSync(join(d, 'blobs'));
    let r = cli(['create', '-B', join(d, 'dict.boot'), '-D', join(d, 'blobs'), dict]);
    assert.equal(r.code, 0, r.stderr);
    r = cli(['create', '-B', join(d, 'boot'), '-D', join(d, 'blobs'), '-J', join(d, 'j'), '--chunk-dict', `bootstrap=${join(d, 'dict.boot')}`, src]);
    assert.equal(r.code, 0, r.stderr);
    const s = json<{ target_image: Record<string, number> }>(['stat', '-B', join(d, 'dict.boot'), '-T', join(d, 'boot'), '--json']).target_image;
    assert.equal(s.chunks, 3);
    assert.equal(s.ref_chunks, 3);
    assert.equal(s.own_chunks, 0);
    const dictBlobs = json<Array<{ blob_id: string }>>(['inspect', join(d, 'dict.boot'), '-R', 'blobs']);
    const blobs = json<Array<{ blob_id: string }>>(['inspect', join(d, 'boot'), '-R', 'blobs']);
    assert.deepEqual(blobs.map((b) => b.blob_id), dictBlobs.map((b) => b.blob_id));
    assert.equal(cli(['check', join(d, 'boot'), '-D', join(d, 'blobs')]).code, 0);
  }),
);
