// Corruption fuzz: random byte flips and truncations of the upstream fixture and of a writer
// image. Opening, validating and walking must either succeed or throw a NydusError subclass —
// never another exception type, never hang (each case is bounded by the buffer size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FIXTURE_V6_22_BOOT } from '../../test/helpers/paths.js';
import { buildSyntheticImage, prng } from '../../test/kernel/synthetic-model.js';
import { encodeBootstrapV6 } from '../builder/writer/v6.js';
import { NydusError } from '../util/errors.js';
import { openRafsV6, type RafsV6Super } from './v6.js';

/** NYDUS_FUZZ_SCALE=N multiplies iterations and time budget (for long local runs). */
const SCALE = Math.max(1, Number(process.env['NYDUS_FUZZ_SCALE'] ?? 1) || 1);

/** Touches every public operation on every reachable inode. */
function walkAll(rs: RafsV6Super): number {
  const seen = new Set<number>();
  const queue = [rs.rootIno];
  let ops = 0;
  rs.prefetchInodes();
  for (let q = 0; q < queue.length; q++) {
    const ino = queue[q]!;
    if (seen.has(ino)) continue;
    seen.add(ino);
    const a = rs.getInode(ino);
    rs.listXattrs(ino).forEach((n) => rs.getXattr(ino, n));
    rs.parentOf(ino);
    const type = a.mode & 0o170000;
    if (type === 0o040000) {
      rs.readdir(ino, 0, (e) => {
        rs.lookup(ino, e.name);
        queue.push(e.ino);
        return true;
      });
    } else if (type === 0o100000) rs.fileChunks(ino);
    else if (type === 0o120000) rs.readlink(ino);
    ops++;
  }
  return ops;
}

/** Runs exactly `iterations` seeded cases (no time budget: the same cases however loaded the machine). */
export function fuzz(name: string, base: Uint8Array, iterations: number, seed: number): { cases: number; accepted: number } {
  // Sanity: the unmodified image walks completely.
  const rs0 = openRafsV6(base);
  rs0.validate();
  // Hot range: the inode/dirent area and the chunk table.
  const hotStart = rs0.sb.metaBlkaddr * 4096 + 4096;
  const hotLen = Math.max(1, rs0.ext.chunkTableOffset + rs0.ext.chunkTableSize - hotStart);
  assert.ok(walkAll(rs0) > 2);
  const rnd = prng(seed, iterations * 16);
  const u32 = (i: number): number => new DataView(rnd.buffer).getUint32((i * 4) % (rnd.length - 4), true);
  let accepted = 0;
  let cases = 0;
  for (let it = 0; it < iterations; it++, cases++) {
    let m: Uint8Array;
    const kind = u32(it * 4) % 8;
    if (kind === 0) {
      m = base.subarray(0, u32(it * 4 + 1) % base.length);
    } else {
      m = base.slice();
      // Bias flips to the metadata (everything but the zero padding is metadata here).
      const flips = 1 + (u32(it * 4 + 1) % 4);
      for (let f = 0; f < flips; f++) {
        const r = u32(it * 4 + 2 + f);
        const pos = kind < 3 ? 1024 + (r % 512) : kind < 5 ? r % m.length : hotStart + (r % hotLen);
        m[pos] = kind % 2 ? u32(it * 4 + 3 + f) & 0xff : m[pos]! ^ (1 << (u32(it + f) % 8));
      }
    }
    try {
      const rs = openRafsV6(m);
      rs.validate();
      walkAll(rs);
      accepted++;
    } catch (err) {
      if (!(err instanceof NydusError)) {
        assert.fail(`${name} case ${it} (kind ${kind}): ${(err as Error)?.name}: ${(err as Error)?.message}\n${(err as Error)?.stack}`);
      }
    }
  }
  return { cases, accepted };
}

test('fuzz: corrupted 2.2 fixture never escapes as a non-Nydus error', { timeout: 120_000 * SCALE }, () => {
  const r = fuzz('fixture', new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT)), 1500 * SCALE, 0xc0ffee + SCALE);
  assert.equal(r.cases, 1500 * SCALE);
  // Most mutations must be caught: a reader that accepted everything would pass the loop above.
  assert.ok(r.accepted < r.cases * 0.9, `accepted ${r.accepted} of ${r.cases}`);
});

test('fuzz: corrupted writer image never escapes as a non-Nydus error', { timeout: 120_000 * SCALE }, () => {
  const r = fuzz('writer', encodeBootstrapV6(buildSyntheticImage().model), 1000 * SCALE, 0xbeef + SCALE);
  assert.equal(r.cases, 1000 * SCALE);
  assert.ok(r.accepted < r.cases * 0.9, `accepted ${r.accepted} of ${r.cases}`);
});
