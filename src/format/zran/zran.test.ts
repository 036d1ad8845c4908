// The zran inflater against zlib: whole streams (gzip levels 1, 6, 9, stored, multi-member) and
// restarts at every block boundary from the bit position and 32 KiB window alone, as nydusd does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { FormatError } from '../../util/errors.js';
import { decodeZranContexts, encodeZranContexts, type ZranContext } from '../blob/zran.js';
import { inflateZranContext } from './context.js';
import { gunzipAll, Inflater, type InflateCheckpoint } from './inflate.js';

/** Mixed data: text, repeats, and pseudo-random runs (so blocks of every type appear). */
function sample(size: number): Buffer {
  const out = Buffer.alloc(size);
  let p = 0;
  for (let i = 0; p < size; i++) {
    const kind = i % 3;
    const piece = kind === 0 ? Buffer.from(`line ${i} lorem ipsum ${i % 17} dolor sit amet\n`.repeat(20)) : kind === 1 ? Buffer.alloc(3000, i & 0xff) : createHash('sha512').update(String(i)).digest();
    p += piece.copy(out, p);
  }
  return out;
}

const data = sample(3 << 20);

for (const level of [0, 1, 6, 9]) {
  test(`gunzipAll equals zlib at level ${level}`, () => {
    const gz = gzipSync(data, { level });
    assert.ok(Buffer.from(gunzipAll(gz)).equals(data));
  });
}

test('multi-member gzip decodes across members', () => {
  const gz = Buffer.concat([gzipSync(data.subarray(0, 1_000_001), { level: 1 }), gzipSync(data.subarray(1_000_001), { level: 9 })]);
  assert.ok(Buffer.from(gunzipAll(gz)).equals(data));
  assert.ok(gunzipSync(gz).equals(data));
});

/** Every block start of `gz`, with the window there (kept by never discarding output). */
function checkpoints(gz: Buffer): { cps: InflateCheckpoint[]; windows: Uint8Array[] } {
  const cps: InflateCheckpoint[] = [];
  const windows: Uint8Array[] = [];
  let given = false;
  const inf: Inflater = new Inflater({
    gzip: true,
    name: 't',
    fill: () => (given ? null : ((given = true), gz)),
    onBlock: (cp) => {
      cps.push(cp);
      windows.push(inf.windowAt(cp));
    },
  });
  while (!inf.done) inf.step(inf.produced + (1 << 20));
  return { cps, windows };
}

for (const [name, gz] of [
  ['level 1', gzipSync(data, { level: 1 })],
  ['level 9', gzipSync(data, { level: 9 })],
  ['fixed Huffman only', gzipSync(data, { level: 6, strategy: constants.Z_FIXED })],
  ['two members', Buffer.concat([gzipSync(data.subarray(0, 777_777)), gzipSync(data.subarray(777_777), { level: 2 })])],
] as const) {
  test(`restart at every block boundary from bit position + window (${name})`, () => {
    const { cps, windows } = checkpoints(gz);
    assert.ok(cps.length > 3, `${cps.length} blocks`);
    const nonAligned = cps.filter((c) => c.bit % 8 !== 0).length;
    cps.forEach((cp, i) => {
      const bits = (8 - (cp.bit & 7)) & 7;
      const inOffset = Math.ceil(cp.bit / 8);
      const outLen = Math.min(200_000, data.length - cp.out);
      if (outLen <= 0) return;
      const ctx: ZranContext = { inOffset, outOffset: cp.out, inLen: gz.length - inOffset, outLen, ctxByte: cp.ctxByte, ctxBits: bits, dict: windows[i]! };
      // Through the on-disk codec, as nydusd gets it.
      const [back] = decodeZranContexts(encodeZranContexts([ctx]), 1);
      const bytes = gz.subarray(inOffset - (bits ? 1 : 0));
      const out = inflateZranContext(back!, bytes, 't');
      assert.ok(Buffer.from(out).equals(data.subarray(cp.out, cp.out + outLen)), `block ${i} at bit ${cp.bit}`);
    });
    if (name !== 'fixed Huffman only') assert.ok(nonAligned > 0, 'some blocks start mid-byte (the inflatePrime case)');
  });
}

test('truncated, corrupt and non-gzip inputs throw FormatError', () => {
  const gz = gzipSync(data, { level: 6 });
  assert.throws(() => gunzipAll(gz.subarray(0, gz.length >> 1)), (e: unknown) => e instanceof FormatError && e.code === 'ERR_FORMAT_TRUNCATED');
  assert.throws(() => gunzipAll(Buffer.from('plain text, no gzip')), /not a gzip stream/);
  const bad = Buffer.from(gz);
  bad[bad.length - 6]! ^= 1; // the stored size/CRC
  assert.throws(() => gunzipAll(bad), FormatError);
});
