// Corrupt and truncated bootstraps AND blobs through the offline image pipeline: openBootstrap →
// validate → walk → read and verify every chunk (checkImage) → unpackToTar. Each mutation must
// either succeed or throw a NydusError subclass — never TypeError/RangeError/etc. — and the whole run
// is time-bounded. A few cases also go through the real CLI (one-line error, exit 1, no stack).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '../../src/builder/create.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { checkImage } from '../../src/image/check.js';
import { unpackToTar } from '../../src/image/unpack.js';
import { statImage } from '../../src/image/stat.js';
import { NydusError } from '../../src/util/errors.js';
import { FIXTURE_V5_BLAKE3, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256, FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../helpers/paths.js';
import { cli, makeFullTree, pattern } from './tree-helpers.js';

/** Deterministic xorshift32 in [0, n). */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const EDGES32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x1000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

type Mutation = { kind: string; apply: (b: Buffer) => Buffer };

function mutate(base: Buffer, r: (n: number) => number, hot?: [number, number]): Mutation {
  const at = (): number => (hot && r(4) !== 0 ? hot[0] + r(Math.max(1, hot[1])) : r(base.length));
  switch (r(5)) {
    case 0: {
      const n = r(base.length);
      return { kind: `truncate ${n}`, apply: (b) => b.subarray(0, n) };
    }
    case 1: {
      const off = at() & ~3;
      const v = EDGES32[r(EDGES32.length)]!;
      return { kind: `u32 ${off}=${v}`, apply: (b) => (off + 4 <= b.length && b.writeUInt32LE(v, off), b) };
    }
    case 2: {
      const off = at() & ~1;
      const v = [0, 1, 0x7fff, 0x8000, 0xffff][r(5)]!;
      return { kind: `u16 ${off}=${v}`, apply: (b) => (off + 2 <= b.length && b.writeUInt16LE(v, off), b) };
    }
    default: {
      const flips = Array.from({ length: 1 + r(4) }, () => [at(), 1 + r(255)] as const);
      return { kind: `flip ${flips.map(([o, x]) => `${o}^${x}`).join(',')}`, apply: (b) => (flips.forEach(([o, x]) => o < b.length && (b[o] = b[o]! ^ x)), b) };
    }
  }
}

interface Subject {
  name: string;
  boot: Buffer;
  /** Blob file path used as `-b` for every blob index. */
  blob: string;
  /** Whether to read every chunk (skipped for large fixture blobs on bootstrap mutations). */
  readChunks: boolean;
}

/** The offline pipeline of check + stat + unpack on one (possibly corrupt) image. */
function pipeline(boot: Uint8Array, blob: string | undefined, sink: string): void {
  const sb = openBootstrap(boot, 'fuzz');
  if (!blob) {
    checkImage(sb); // validate + walk + chunk coverage
    statImage(sb);
    return;
  }
  checkImage(sb, { blobPath: blob });
  // unpack shares check's walk and chunk reads; it only adds tar encoding of what check accepted.
  unpackToTar(sb, { blobPath: blob }, sink, false);
}

interface Outcome {
  ok: number;
  rejected: number;
  bad: string[];
}

function run(outcome: Outcome, what: string, fn: () => void): void {
  try {
    fn();
    outcome.ok++;
  } catch (e) {
    if (e instanceof NydusError) outcome.rejected++;
    else if (outcome.bad.length < 10) outcome.bad.push(`${what}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : String(e)}`);
    else outcome.bad.length++;
  }
}

// No wall-clock assertion (benchmarks are not tests): the node:test timeout bounds a hang.
test('10,000+ bootstrap and blob mutations: success or a NydusError', { timeout: 180_000 }, async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'nydus-fuzz-'));
  const started = Date.now();
  try {
    // A small generated image per version (every file type, compressed, 4 KiB chunks).
    const src = join(d, 'src');
    mkdirSync(src);
    makeFullTree(src, { full: false });
    // Keep the data small (every mutation re-reads every chunk): a few 4 KiB chunks, still multi-chunk.
    for (const f of ['dir/sub/multi', 'sparse', 'dir/text']) writeFileSync(join(src, f), pattern(9000, f.length));
    const subjects: Subject[] = [];
    for (const fsVersion of [5, 6] as const) {
      const boot = join(d, `gen${fsVersion}.boot`);
      const blob = join(d, `gen${fsVersion}.blob`);
      await createImage({ source: src, bootstrap: boot, blob, fsVersion, compressor: fsVersion === 5 ? 'lz4_block' : 'zstd', digester: 'blake3', chunkSize: 0x1000 });
      subjects.push({ name: `gen-v${fsVersion}`, boot: readFileSync(boot), blob, readChunks: true });
    }
    subjects.push({ name: 'v6-2.2', boot: readFileSync(FIXTURE_V6_22_BOOT), blob: FIXTURE_V6_22_BLOB, readChunks: true });
    // The v5 fixtures' blob is 3.5 MiB: verifying it per mutation would dominate the budget, so their
    // bootstrap mutations stop at metadata (every chunk is still range-checked by checkImage).
    const v5Blob = join(FIXTURE_V5_BLOB_DIR, '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00');
    subjects.push({ name: 'v5-sha256', boot: readFileSync(FIXTURE_V5_SHA256), blob: v5Blob, readChunks: false });
    subjects.push({ name: 'v5-blake3', boot: readFileSync(FIXTURE_V5_BLAKE3), blob: v5Blob, readChunks: false });
    const sink = join(d, 'sink.tar');
    for (const s of subjects) pipeline(s.boot, s.readChunks ? s.blob : undefined, sink); // pristine: all pass

    const phases: string[] = [`setup ${Date.now() - started}`];
    const bootOut: Outcome = { ok: 0, rejected: 0, bad: [] };
    const blobOut: Outcome = { ok: 0, rejected: 0, bad: [] };
    const BOOT_ITERS = 1500;
    for (const [i, s] of subjects.entries()) {
      const r = rng(0x9e3779b9 ^ (i * 7919));
      // The first 8 KiB (superblocks, tables, first inodes) is where most decoding starts.
      const hot: [number, number] = [0, Math.min(s.boot.length, 8192)];
      for (let k = 0; k < BOOT_ITERS; k++) {
        const m = mutate(s.boot, r, hot);
        const b = m.apply(Buffer.from(s.boot));
        run(bootOut, `${s.name} bootstrap #${k} ${m.kind}`, () => pipeline(b, s.readChunks ? s.blob : undefined, sink));
      }
      phases.push(`${s.name} boot ${Date.now() - started}`);
    }
    // Blob mutations: the small images and the v6 fixture (each mutated blob written to one file).
    const mutBlob = join(d, 'mutated.blob');
    const BLOB_ITERS = [1000, 1000, 600];
    for (const [i, s] of subjects.slice(0, 3).entries()) {
      const r = rng(0x85ebca6b ^ (i * 104729));
      const blob = readFileSync(s.blob);
      for (let k = 0; k < BLOB_ITERS[i]!; k++) {
        const m = mutate(blob, r);
        writeFileSync(mutBlob, m.apply(Buffer.from(blob)));
        run(blobOut, `${s.name} blob #${k} ${m.kind}`, () => pipeline(s.boot, mutBlob, sink));
      }
      phases.push(`${s.name} blob ${Date.now() - started}`);
    }
    const total = bootOut.ok + bootOut.rejected + bootOut.bad.length + blobOut.ok + blobOut.rejected + blobOut.bad.length;
    const elapsed = Date.now() - started;
    t.diagnostic(`${total} mutations in ${elapsed} ms: bootstrap ok ${bootOut.ok} rejected ${bootOut.rejected}; blob ok ${blobOut.ok} rejected ${blobOut.rejected}; ms at end of: ${phases.join(', ')}`);
    assert.deepEqual([...bootOut.bad, ...blobOut.bad], [], `non-NydusError exceptions (boot ${JSON.stringify(bootOut)}, blob ${JSON.stringify(blobOut)})`);
    assert.ok(total >= 10_000, `ran ${total} mutations`);
    // Mutations must actually exercise both outcomes (a fuzz that never fails proves nothing).
    assert.ok(bootOut.rejected > 1000 && blobOut.rejected > 500, JSON.stringify({ bootOut, blobOut }));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('corrupt bootstraps and blobs through the CLI: one-line error on stderr, exit 1, no stack', () => {
  const d = mkdtempSync(join(tmpdir(), 'nydus-fuzz-cli-'));
  try {
    const boot = readFileSync(FIXTURE_V6_22_BOOT);
    const blob = readFileSync(FIXTURE_V6_22_BLOB);
    const cases: Array<[string, Buffer, Buffer]> = [
      ['truncated bootstrap', boot.subarray(0, 1500), blob],
      ['bootstrap cut inside the inode area', boot.subarray(0, Math.floor(boot.length * 0.6)), blob],
      ['blob truncated to half', boot, blob.subarray(0, blob.length >> 1)],
      ['blob with flipped chunk bytes', boot, Buffer.from(blob).fill(0x5a, 64, 160)],
    ];
    // A v5 fixture whose superblock inode-table size is absurd.
    const v5 = Buffer.from(readFileSync(FIXTURE_V5_SHA256));
    v5.writeUInt32LE(0xffffffff, 16);
    cases.push(['v5 bootstrap with an edge-value field', v5, blob]);
    for (const [name, b, bl] of cases) {
      const bp = join(d, 'boot');
      const blp = join(d, 'blob');
      writeFileSync(bp, b);
      writeFileSync(blp, bl);
      const runs = [
        ['check', bp, '-b', blp],
        ['unpack', bp, '-b', blp, '--output', join(d, 'out.tar')],
      ];
      for (const args of runs) {
        const r = cli(args);
        if (r.code === 0) continue; // some corruptions are harmless for one tool; the in-process fuzz covers them
        assert.equal(r.code, 1, `${name}: ${args[0]}: exit ${r.code}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: ${args[0]}: one line: ${r.stderr}`);
        assert.match(r.stderr, /^nydus-image: /, `${name}: ${args[0]}`);
        assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+|TypeError|RangeError/, `${name}: ${args[0]}`);
      }
      // At least check must notice every one of these.
      assert.equal(cli(['check', bp, '-b', blp]).code, 1, `${name}: check`);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
