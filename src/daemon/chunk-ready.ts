// The blob cache's ready bitmap as FUSE worker threads read it, and the sequential readahead depth.
// Its own module so that `nydusd erofs` workers (blob-data-fs.ts) need not load the whole Vfs and
// storage graph at start-up.

/** Chunks fetched ahead once a file is read sequentially through cold chunks. */
export const SEQUENTIAL_READAHEAD_CHUNKS = 4;

export function isChunkReady(bitmap: Uint8Array, index: number): boolean {
  const byte = index >>> 3;
  return byte < bitmap.length && (Atomics.load(bitmap, byte) & (0x80 >>> (index & 7))) !== 0;
}
