// Reads the bootstrap embedded in a nydus blob built with --blob-inline-meta (spec §7.2/§7.6):
// via the ToC (`rafs.blob.toc`, entry `image.boot`, zstd if its flag says so) or, without a ToC,
// from the `image.boot` tar header in the last 512 bytes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { decompress } from '../format/compress.js';
import { FormatError } from '../util/errors.js';

const HDR = 512;
const TOC_ENTRY = 128;
const TOC_FLAG_ZSTD = 0x2;
const TOC_FLAG_LZ4 = 0x4;
const MAX_BOOTSTRAP = 2 ** 31;

function readAt(fd: number, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, off + got);
    if (n === 0) break;
    got += n;
  }
  if (got !== len) throw new FormatError('ERR_FORMAT_TRUNCATED', 'nydus blob', `short read of ${len} bytes`, off);
  return b;
}

function tarName(h: Buffer): string {
  const z = h.indexOf(0);
  return h.subarray(0, z >= 0 && z < 100 ? z : 100).toString('latin1');
}

function tarSize(h: Buffer): number {
  return parseInt(h.subarray(124, 136).toString('latin1').replace(/[\0 ]/g, '') || '0', 8);
}

export function readInlineBootstrap(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < HDR) throw new FormatError('ERR_FORMAT_TRUNCATED', `nydus blob ${path}`, 'smaller than one tar header');
    const last = readAt(fd, size - HDR, HDR);
    const name = tarName(last);
    if (name === 'image.boot') {
      const n = tarSize(last);
      if (n > size - HDR || n > MAX_BOOTSTRAP) throw new FormatError('ERR_FORMAT_INVALID', `nydus blob ${path}`, `image.boot size ${n} exceeds the blob`);
      return readAt(fd, size - HDR - n, n);
    }
    if (name !== 'rafs.blob.toc') throw new FormatError('ERR_FORMAT_INVALID', `nydus blob ${path}`, `no inline bootstrap (last tar header is '${name}')`);
    const tocSize = tarSize(last);
    if (tocSize % TOC_ENTRY !== 0 || tocSize > size - HDR || tocSize > 1 << 20) throw new FormatError('ERR_FORMAT_INVALID', `nydus blob ${path}`, `bad ToC size ${tocSize}`);
    const toc = readAt(fd, size - HDR - tocSize, tocSize);
    for (let o = 0; o < tocSize; o += TOC_ENTRY) {
      const e = toc.subarray(o, o + TOC_ENTRY);
      if (tarName(e.subarray(8, 24)) !== 'image.boot') continue;
      const flags = e.readUInt32LE(0) & 0xf;
      const off = Number(e.readBigUInt64LE(56));
      const csize = Number(e.readBigUInt64LE(64));
      const usize = Number(e.readBigUInt64LE(72));
      if (off + csize > size || usize > MAX_BOOTSTRAP) throw new FormatError('ERR_FORMAT_INVALID', `nydus blob ${path}`, 'ToC entry image.boot lies outside the blob');
      const stored = readAt(fd, off, csize);
      if (flags & TOC_FLAG_ZSTD) return Buffer.from(decompress(stored, 'zstd', usize));
      if (flags & TOC_FLAG_LZ4) return Buffer.from(decompress(stored, 'lz4_block', usize));
      return stored;
    }
    throw new FormatError('ERR_FORMAT_INVALID', `nydus blob ${path}`, 'ToC has no image.boot entry (built without --blob-inline-meta?)');
  } finally {
    closeSync(fd);
  }
}
