// nydus-image check / inspect / stat / unpack through the real CLI, on upstream fixture bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { BIN, FIXTURE_V5_SHA256, FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT, FIXTURES } from '../helpers/paths.js';

function nydusImage(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'nydus-image-tools-'));
}

test('check verifies every chunk of the upstream v6 fixture and writes upstream-shaped JSON', () => {
  const d = tmp();
  try {
    const r = nydusImage(['check', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs'), '-J', join(d, 'out.json')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef/);
    assert.match(r.stdout, /verified \d+ chunks/);
    const j = JSON.parse(readFileSync(join(d, 'out.json'), 'utf8'));
    assert.deepEqual(j.blobs, ['be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef']);
    assert.equal(j.fs_version, '6');
    assert.equal(j.compressor, 'zstd');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('check names the chunk when a blob byte is corrupt, in one line, exit 1', () => {
  const d = tmp();
  try {
    const blob = join(d, basename(FIXTURE_V6_22_BLOB));
    copyFileSync(FIXTURE_V6_22_BLOB, blob);
    const b = readFileSync(blob);
    b[100] = b[100]! ^ 0xff; // inside the first zstd chunk
    writeFileSync(blob, b);
    const r = nydusImage(['check', FIXTURE_V6_22_BOOT, '-D', d]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /chunk|decompress|digest/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('inspect answers requests as JSON; stat prints upstream fields', () => {
  const r = nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'blobs']);
  assert.equal(r.status, 0, r.stderr);
  const blobs = JSON.parse(r.stdout);
  assert.equal(blobs[0].blob_id, 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef');
  const ls = JSON.parse(nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'ls /']).stdout);
  assert.deepEqual(ls.map((e: { name: string }) => e.name).sort(), ['lib.rs', 'sync_io.rs']);
  const st = JSON.parse(nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'stat /lib.rs']).stdout);
  assert.equal(st.size, 16931);
  assert.ok(st.chunks.length >= 1);
  const s = nydusImage(['stat', '-B', FIXTURE_V6_22_BOOT, '--json']);
  assert.equal(s.status, 0, s.stderr);
  const js = JSON.parse(s.stdout);
  assert.equal(js.base_image.files, 2);
  assert.equal(js.base_image.file_size, 16931 + 13400);
});

test('unpack writes a tar whose files match what check verified', () => {
  const d = tmp();
  try {
    const tarPath = join(d, 'out.tar');
    const r = nydusImage(['unpack', FIXTURE_V6_22_BOOT, '-b', FIXTURE_V6_22_BLOB, '--output', tarPath]);
    assert.equal(r.status, 0, r.stderr);
    mkdirSync(join(d, 'x'));
    const t = spawnSync('tar', ['-xf', tarPath, '-C', join(d, 'x')], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    assert.equal(statSync(join(d, 'x/lib.rs')).size, 16931);
    assert.equal(statSync(join(d, 'x/sync_io.rs')).size, 13400);
    // The files are Rust sources: the decompressed bytes must be text.
    assert.match(readFileSync(join(d, 'x/lib.rs'), 'utf8'), /fn |use |mod /);
    assert.ok(createHash('sha256').update(readFileSync(join(d, 'x/sync_io.rs'))).digest('hex').length === 64);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('bad input gets a one-line error and a non-zero exit', () => {
  const d = tmp();
  try {
    const missing = nydusImage(['check', join(d, 'nope')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope: no such file/);
    writeFileSync(join(d, 'garbage'), Buffer.alloc(8192, 7));
    const garbage = nydusImage(['check', join(d, 'garbage')]);
    assert.equal(garbage.status, 1);
    assert.match(garbage.stderr, /not a RAFS bootstrap/);
    const usage = nydusImage(['unpack', FIXTURE_V6_22_BOOT]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--output/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('export --block gives a disk the kernel mounts alone; --blob-data-dir gives device files', async (t) => {
  const { withErofsMount, erofsMountUnavailable } = await import('../kernel/erofs-mount.js');
  const skip = erofsMountUnavailable();
  if (skip) return t.skip(skip);
  const d = tmp();
  try {
    const disk = join(d, 'image.disk');
    const r = nydusImage(['export', '--block', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs'), '-O', disk]);
    assert.equal(r.status, 0, r.stderr);
    const x = join(d, 'x');
    mkdirSync(x);
    assert.equal(nydusImage(['unpack', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs'), '--output', join(d, 'u.tar')]).status, 0);
    assert.equal(spawnSync('tar', ['-xf', join(d, 'u.tar'), '-C', x]).status, 0);
    await withErofsMount(disk, [], (mnt) => {
      for (const f of ['lib.rs', 'sync_io.rs']) assert.deepEqual(readFileSync(join(mnt, f)), readFileSync(join(x, f)));
    });
    const dev = nydusImage(['export', '--block', FIXTURE_V6_22_BOOT, '-D', join(FIXTURES, 'blobs'), '--blob-data-dir', d]);
    assert.equal(dev.status, 0, dev.stderr);
    const dataPath = dev.stdout.trim();
    await withErofsMount(FIXTURE_V6_22_BOOT, [dataPath], (mnt) => {
      assert.deepEqual(readFileSync(join(mnt, 'lib.rs')), readFileSync(join(x, 'lib.rs')));
    });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('inspect: v5 stats report the superblock inode count; cd, chunk as upstream', () => {
  // The v5 fixture stores s_inodes_count 51 for 54 inode table entries (hardlinks): upstream reports 51.
  const stats = nydusImage(['inspect', FIXTURE_V5_SHA256, '-R', 'stats']);
  assert.equal(stats.status, 0, stats.stderr);
  assert.equal(JSON.parse(stats.stdout).inodes_count, 51);
  // cd in request mode answers nothing; in the prompt it changes what ls and stat see.
  const cd = nydusImage(['inspect', FIXTURE_V5_SHA256, '-R', 'cd normal-file-test']);
  assert.equal(cd.status, 0, cd.stderr);
  assert.equal(cd.stdout, '');
  const r = spawnSync(process.execPath, [BIN('nydus-image'), 'inspect', FIXTURE_V5_SHA256], { input: 'cd normal-file-test\nls\nstat test.sh\ncd ..\nls\ncd normal-file-test/test.sh\nq\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout.split('Inspecting RAFS :> ').map((x) => x.trim()).filter(Boolean);
  const names = (j: string): string[] => (JSON.parse(j) as Array<{ name: string }>).map((e) => e.name).sort();
  assert.deepEqual(names(answers[0]!), ['busybox', 'holefiles', 'test.sh']);
  assert.equal((JSON.parse(answers[1]!) as { mode: number }).mode & 0o170000, 0o100000, 'stat resolves against the current directory');
  assert.deepEqual(names(answers[2]!), ['hardlink-test', 'normal-file-test', 'symlink-test']);
  assert.match(answers[3]!, /^error: .*not a directory/);
  // chunk OFFSET: the chunk at that compressed offset and the file(s) holding it.
  const st = JSON.parse(nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'stat /sync_io.rs']).stdout) as { chunks: Array<{ compressed_offset: number; compressed_size: number; digest: string }> };
  const c0 = st.chunks[0]!;
  const ch = nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', `chunk ${c0.compressed_offset}`]);
  assert.equal(ch.status, 0, ch.stderr);
  assert.deepEqual(JSON.parse(ch.stdout), [{
    file: 'sync_io.rs', parent_path: '/', compressed_offset: c0.compressed_offset, compressed_size: c0.compressed_size,
    decompressed_offset: 20480, decompressed_size: 13400, chunk_id: c0.digest, blob_id: 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef',
  }]);
  assert.deepEqual(JSON.parse(nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'chunk 1']).stdout), []);
  const bad = nydusImage(['inspect', FIXTURE_V6_22_BOOT, '-R', 'chunk x']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /chunk needs a compressed offset/);
});
