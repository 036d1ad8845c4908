// Corruption fuzz: random byte flips, u32 overwrites and truncations of both v5 fixtures. Opening,
// validating and fully walking must either succeed or throw a NydusError; never another error
// type, never a hang (the whole run is bounded in time).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FIXTURE_V5_BLAKE3, FIXTURE_V5_SHA256 } from '../../test/helpers/paths.js';
import { NydusError } from '../util/errors.js';
import { treeFromRafs } from './tree-from-rafs.js';
import { openRafsV5 } from './v5.js';
import { encodeBootstrapV5 } from '../builder/writer/v5.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGE = [0, 1, 2, 3, 7, 8, 54, 55, 0x400, 1025, 2048, 0xffff, 0x7fffffff, 0xffffffff];

function mutate(good: Uint8Array, r: () => number): Uint8Array {
  const kind = r();
  if (kind < 0.15) return good.slice(0, Math.floor(r() * good.length));
  const b = good.slice();
  const dv = new DataView(b.buffer);
  // Most structure lives in the superblock header, the tables and the inode headers.
  const pick = (): number => (r() < 0.3 ? Math.floor(r() * 80) : r() < 0.4 ? 8192 + Math.floor(r() * 352) : Math.floor(r() * b.length));
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = pick();
    if (kind < 0.6) b[at] = (b[at]! ^ (1 << Math.floor(r() * 8))) & 0xff;
    else if (at + 4 <= b.length) dv.setUint32(at & ~3, EDGE[Math.floor(r() * EDGE.length)]!, true);
  }
  return b;
}

/** Everything a mount would touch. */
function exercise(buf: Uint8Array): void {
  const sb = openRafsV5(buf);
  try {
    sb.validate();
  } catch (e) {
    if (!(e instanceof NydusError)) throw e;
  }
  try {
    sb.verifyDigests();
  } catch (e) {
    if (!(e instanceof NydusError)) throw e;
  }
  sb.prefetchInodes();
  for (let ino = 1; ino <= sb.meta.inodeCount; ino++) {
    try {
      const i = sb.getInode(ino);
      sb.parentOf(ino);
      sb.listXattrs(ino).forEach((k) => sb.getXattr(ino, k));
      sb.fileChunks(ino);
      if ((i.mode & 0o170000) === 0o120000) sb.readlink(ino);
      if ((i.mode & 0o170000) === 0o040000) sb.readdir(ino, 0, (e) => (sb.lookup(ino, e.name), true));
    } catch (e) {
      if (!(e instanceof NydusError)) throw e;
    }
  }
  const model = treeFromRafs(sb);
  encodeBootstrapV5(model);
}

describe('RAFS v5 corruption fuzz', () => {
  for (const [i, f] of [FIXTURE_V5_SHA256, FIXTURE_V5_BLAKE3].entries()) {
    it(`never throws a non-NydusError on ${f.split('/').pop()}`, (t) => {
      const good = new Uint8Array(readFileSync(f));
      exercise(good);
      const r = rng(0x5eed + i);
      // A fixed, seeded number of cases (not a time budget): the same cases on a loaded machine.
      const RUNS = 1000;
      let runs = 0;
      let rejected = 0;
      for (; runs < RUNS; runs++) {
        const b = mutate(good, r);
        try {
          exercise(b);
        } catch (e) {
          if (!(e instanceof NydusError)) {
            assert.fail(`run ${runs}: ${e instanceof Error ? e.stack : String(e)}`);
          }
          rejected++;
        }
      }
      t.diagnostic(`${runs} runs, ${rejected} rejected`);
      assert.equal(runs, RUNS);
      assert.ok(rejected > runs / 10, `suspiciously few rejections (${rejected}/${runs})`);
    });
  }
});
