// `nydus-image stat`: sizes, counts and chunk dedup figures, in upstream's JSON shape (§1.9).
import type { RafsSuper } from '../rafs/types.js';
import { walkRafs } from './walk.js';
import { hex } from '../util/bytes.js';

export interface ImageStat {
  dirs: number;
  files: number;
  symlinks: number;
  chunks: number;
  file_size: number;
  comp_size: number;
  uncomp_size: number;
  padding_size: number;
  /** Histogram of chunk sizes by power of two bucket (<=4K, 8K, ... >=1M). */
  chunk_sizes: number[];
  /** Histogram of file sizes by log2 bucket. */
  file_sizes: number[];
  dedup_chunks: number;
  dedup_comp_size: number;
  dedup_uncomp_size: number;
  own_chunks: number;
  own_comp_size: number;
  own_uncomp_size: number;
  ref_chunks: number;
  ref_comp_size: number;
  ref_uncomp_size: number;
}

function bucket(n: number, max: number): number {
  if (n <= 0) return 0;
  return Math.min(max - 1, Math.max(0, Math.ceil(Math.log2(n))));
}

/** Statistics of one image; `base` (digest set) marks chunks another image already has. */
export function emptyStat(): ImageStat {
  return {
    dirs: 0, files: 0, symlinks: 0, chunks: 0, file_size: 0, comp_size: 0, uncomp_size: 0, padding_size: 0,
    chunk_sizes: new Array(9).fill(0), file_sizes: new Array(45).fill(0),
    dedup_chunks: 0, dedup_comp_size: 0, dedup_uncomp_size: 0, own_chunks: 0, own_comp_size: 0, own_uncomp_size: 0,
    ref_chunks: 0, ref_comp_size: 0, ref_uncomp_size: 0,
  };
}

/** Adds b into a (for stats over a directory of images). */
export function addStat(a: ImageStat, b: ImageStat): void {
  for (const k of Object.keys(a) as Array<keyof ImageStat>) {
    const v = a[k];
    if (Array.isArray(v)) (b[k] as number[]).forEach((x, i) => (v[i] = (v[i] ?? 0) + x));
    else (a[k] as number) = v + (b[k] as number);
  }
}

/** Chunks whose digest is in `base` count as references; every chunk digest (hex) is added to `unique`. */
export function statImage(sb: RafsSuper, base?: Set<string>, unique = new Set<string>()): ImageStat {
  const s = emptyStat();
  walkRafs(sb, ({ inode }) => {
    const t = inode.mode & 0o170000;
    if (t === 0o040000) s.dirs++;
    else if (t === 0o120000) s.symlinks++;
    else if (t === 0o100000) {
      s.files++;
      s.file_size += inode.size;
      s.file_sizes[bucket(inode.size, 45)]!++;
      for (const c of sb.fileChunks(inode.ino)) {
        s.chunks++;
        const key = hex(c.digest);
        if (unique.has(key)) continue;
        unique.add(key);
        s.dedup_chunks++;
        s.dedup_comp_size += c.compressedSize;
        s.dedup_uncomp_size += c.uncompressedSize;
        s.chunk_sizes[Math.min(8, Math.max(0, Math.ceil(Math.log2(Math.max(1, c.uncompressedSize))) - 12))]!++;
        if (base?.has(key)) {
          s.ref_chunks++;
          s.ref_comp_size += c.compressedSize;
          s.ref_uncomp_size += c.uncompressedSize;
        } else {
          s.own_chunks++;
          s.own_comp_size += c.compressedSize;
          s.own_uncomp_size += c.uncompressedSize;
        }
      }
    }
  });
  for (const b of sb.blobs) {
    s.comp_size += b.compressedSize;
    s.uncomp_size += b.uncompressedSize;
  }
  s.padding_size = Math.max(0, s.uncomp_size - s.dedup_uncomp_size);
  return s;
}
