// The benchmark tree, shared by serve.ts (memfs, ours) and gen.ts (on-disk source for mksquashfs):
// a 2 GiB pattern file and a directory of 100k empty files named f000000..f099999.
import type { MemNode } from '../../src/fuse/testing/memfs.js';

export const BIG_SIZE = 2 * 1024 ** 3;
export const BIG_SEED = 1;
export const DIR_ENTRIES = 100_000;

export function entryName(i: number): string {
  return `f${String(i).padStart(6, '0')}`;
}

export function benchTree(): MemNode & { type: 'dir' } {
  const entries: Record<string, MemNode> = {};
  for (let i = 0; i < DIR_ENTRIES; i++) entries[entryName(i)] = { type: 'file', content: '' };
  return {
    type: 'dir',
    entries: {
      big: { type: 'file', size: BIG_SIZE, pattern: BIG_SEED },
      // Same bytes, opened with FOPEN_DIRECT_IO: every dd read is one 1 MiB READ, no page cache.
      big_dio: { type: 'file', size: BIG_SIZE, pattern: BIG_SEED, directIo: true },
      d: { type: 'dir', entries },
    },
  };
}
