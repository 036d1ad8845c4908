// Chunk compression (spec §3.3): none, lz4_block (raw LZ4 block, no frame), zstd (one frame, level 3),
// gzip (one member). Pure compute over native libraries; no I/O.
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { gzipSync, gunzipSync, type ZstdOptions } from 'node:zlib';
import { FormatError } from '../util/errors.js';
import type { Compressor } from './constants.js';

const require = createRequire(import.meta.url);
type ZstdMod = {
  compress(data: Uint8Array, params?: { compressionLevel?: number }): Buffer;
  decompress(data: Uint8Array): Buffer;
  Compressor: new () => { setParameters(p: Record<string, number>): void; compress(data: Uint8Array): Buffer };
  Decompressor: new () => { decompress(data: Uint8Array): Buffer };
};
type Lz4Mod = {
  compressSync(data: Uint8Array): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
};
// Native codecs load on first use: most importers (FUSE workers, metadata tools) never compress.
let zstdMod: ZstdMod | undefined;
let lz4Mod: Lz4Mod | undefined;
const zstdLib = (): ZstdMod => (zstdMod ??= loadZstd());

/**
 * zstd-napi is faster at decompression (bench/README.md), but it is compiled at install time and a
 * global `npm install` skips its build unless allowed: then node:zlib's zstd (same format) serves.
 */
function loadZstd(): ZstdMod {
  try {
    return require('zstd-napi') as ZstdMod;
  } catch {
    // Looked up here, not imported by name: a named import would stop the module loading on a Node without zstd.
    const params = (level: number) => ({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level } });
    const compress = (d: Uint8Array, level = ZSTD_DEFAULT_LEVEL): Buffer => zlib.zstdCompressSync(d, { ...params(level), pledgedSrcSize: d.length } as ZstdOptions);
    const decompress = (d: Uint8Array): Buffer => zlib.zstdDecompressSync(d, { chunkSize: 1 << 20 });
    return {
      compress: (d, p) => compress(d, p?.compressionLevel),
      decompress,
      Compressor: class {
        #level = ZSTD_DEFAULT_LEVEL;
        setParameters(p: Record<string, number>): void {
          this.#level = p.compressionLevel ?? this.#level;
        }
        compress(d: Uint8Array): Buffer {
          return compress(d, this.#level);
        }
      },
      Decompressor: class {
        decompress(d: Uint8Array): Buffer {
          return decompress(d);
        }
      },
    };
  }
}
const lz4Lib = (): Lz4Mod => (lz4Mod ??= require('lz4-napi') as Lz4Mod);

/** Loads the native codecs now (see format/native.ts); a missing addon still fails at first use. */
export function preloadCompressors(): void {
  zstdLib();
  try {
    lz4Lib();
  } catch {
    /* reported by the chunk that needs lz4 */
  }
}

export const ZSTD_DEFAULT_LEVEL = 3;

let zc: InstanceType<ZstdMod['Compressor']> | undefined;
let zd: InstanceType<ZstdMod['Decompressor']> | undefined;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Raw compression with no "store raw if bigger" rule. */
export function compressRaw(data: Uint8Array, algo: Compressor): Uint8Array {
  switch (algo) {
    case 'none':
      return data;
    case 'zstd': {
      if (!zc) {
        zc = new (zstdLib().Compressor)();
        zc.setParameters({ compressionLevel: ZSTD_DEFAULT_LEVEL });
      }
      return zc.compress(asBuffer(data));
    }
    case 'lz4_block':
      // lz4-napi prefixes a 4-byte LE size; RAFS stores the bare block.
      return lz4Lib().compressSync(asBuffer(data)).subarray(4);
    case 'gzip':
      return gzipSync(data);
  }
}

/**
 * Compresses one chunk as nydus-image does: when the result is not strictly smaller than the input,
 * the raw bytes are stored and `compressed` is false (§3.3).
 */
export function compressChunk(data: Uint8Array, algo: Compressor): { data: Uint8Array; compressed: boolean } {
  if (algo === 'none' || data.length === 0) return { data, compressed: false };
  const out = compressRaw(data, algo);
  if (out.length >= data.length) return { data, compressed: false };
  return { data: out, compressed: true };
}

/** Decompresses to exactly `uncompressedSize` bytes or throws ERR_COMPRESSION. */
export function decompress(data: Uint8Array, algo: Compressor, uncompressedSize: number): Uint8Array {
  let out: Uint8Array;
  try {
    switch (algo) {
      case 'none':
        out = data;
        break;
      case 'zstd':
        zd ??= new (zstdLib().Decompressor)();
        out = zd.decompress(asBuffer(data));
        break;
      case 'lz4_block': {
        const framed = Buffer.allocUnsafe(data.length + 4);
        framed.writeUInt32LE(uncompressedSize, 0);
        framed.set(data, 4);
        out = lz4Lib().uncompressSync(framed);
        break;
      }
      case 'gzip':
        out = gunzipSync(data);
        break;
    }
  } catch (e) {
    throw new FormatError('ERR_COMPRESSION', `${algo} chunk`, `cannot decompress: ${(e as Error).message}`);
  }
  if (out.length !== uncompressedSize) {
    throw new FormatError('ERR_COMPRESSION', `${algo} chunk`, `decompressed to ${out.length} bytes, expected ${uncompressedSize}`);
  }
  return out;
}

export function parseCompressor(s: string): Compressor | undefined {
  return s === 'none' || s === 'lz4_block' || s === 'zstd' || s === 'gzip' ? s : undefined;
}
