// Writes the benchmark tree to disk (argv[2]) as the source for mksquashfs: same bytes as serve.ts.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { patternSlices } from '../../src/fuse/testing/memfs.js';
import { BIG_SEED, BIG_SIZE, DIR_ENTRIES, entryName } from './tree.js';

const out = process.argv[2];
if (!out) throw new Error('usage: gen.js <dir>');
fs.mkdirSync(join(out, 'd'), { recursive: true });
const fd = fs.openSync(join(out, 'big'), 'w');
for (let off = 0; off < BIG_SIZE; off += 1 << 24) {
  for (const s of patternSlices(BIG_SEED, off, Math.min(1 << 24, BIG_SIZE - off))) fs.writeSync(fd, s);
}
fs.closeSync(fd);
for (let i = 0; i < DIR_ENTRIES; i++) fs.closeSync(fs.openSync(join(out, 'd', entryName(i)), 'w'));
