// Per-mount filesystem counters in a SharedArrayBuffer, updated with Atomics by every FUSE worker and
// read by the main thread for /api/v1/metrics (upstream FsIoStats field names and bucket orders).
import { requestSizeIndex } from '../storage/backend/backend.js';

/** Fop index order of upstream's fop_hits/fop_errors arrays. */
export const FOP = {
  Getattr: 0, Readlink: 1, Open: 2, Release: 3, Read: 4, Statfs: 5, Getxattr: 6, Listxattr: 7,
  Opendir: 8, Lookup: 9, Readdir: 10, Readdirplus: 11, Access: 12, Forget: 13, BatchForget: 14,
} as const;
const NFOP = 15;
// Fop latency buckets (upstream latency_micros_range_index, µs): <=200, <=1ms, <=20ms, <=50ms,
// <=500ms, <=1s, <=2s, >2s
const LAT_US_BOUNDS = [200, 1000, 20_000, 50_000, 500_000, 1_000_000, 2_000_000];

const OFF_OPENS = 0;
const OFF_DATA = 1;
const OFF_BLOCK = 2; // 8
const OFF_HITS = 10; // 15
const OFF_ERRS = 25; // 15
const OFF_LAT = 40; // 15 (microseconds)
const OFF_RLAT = 55; // 8
const OFF_OPLAT = 63; // NFOP × 8: per-fop latency buckets for Prometheus histograms
export const FS_STATS_SLOTS = 63 + NFOP * 8;

/** Upper bounds (µs) of the fop latency buckets; a last, unbounded bucket follows. */
export const FOP_LATENCY_BOUNDS_US: readonly number[] = LAT_US_BOUNDS;
export const FOP_NAMES: readonly string[] = Object.keys(FOP);

export function newFsStatsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(FS_STATS_SLOTS * 8);
}


/** Index of the first bucket whose upper bound v does not exceed ((lo, hi] buckets). */
function bucketInclusive(v: number, bounds: readonly number[]): number {
  let i = 0;
  while (i < bounds.length && v > bounds[i]!) i++;
  return i;
}

export class FsStats {
  readonly #a: BigInt64Array;
  constructor(buf: SharedArrayBuffer) {
    this.#a = new BigInt64Array(buf);
  }
  #add(i: number, v: number): void {
    Atomics.add(this.#a, i, BigInt(Math.round(v)));
  }
  /** Counts one operation; upstream puts every fop's latency in read_latency_dist. */
  fop(op: number, ok: boolean, latencyUs?: number): void {
    this.#add((ok ? OFF_HITS : OFF_ERRS) + op, 1);
    if (latencyUs !== undefined) {
      const b = bucketInclusive(latencyUs, LAT_US_BOUNDS);
      this.#add(OFF_LAT + op, latencyUs);
      this.#add(OFF_RLAT + b, 1);
      this.#add(OFF_OPLAT + op * 8 + b, 1);
    }
  }
  open(): void {
    this.#add(OFF_OPENS, 1);
  }
  dataRead(bytes: number): void {
    this.#add(OFF_DATA, bytes);
    this.#add(OFF_BLOCK + requestSizeIndex(bytes), 1);
  }
  #slice(off: number, n: number): number[] {
    return Array.from({ length: n }, (_, i) => Number(Atomics.load(this.#a, off + i)));
  }
  /** Per fop (FOP order): its 8 latency bucket counts and its cumulative latency in µs. */
  fopLatency(): Array<{ buckets: number[]; sumUs: number }> {
    return Array.from({ length: NFOP }, (_, op) => ({ buckets: this.#slice(OFF_OPLAT + op * 8, 8), sumUs: Number(Atomics.load(this.#a, OFF_LAT + op)) }));
  }

  /** Upstream's /api/v1/metrics body. */
  snapshot(id: string, flags: { files: boolean; pattern: boolean; latest: boolean }): Record<string, unknown> {
    return {
      files_account_enabled: flags.files,
      access_pattern_enabled: flags.pattern,
      record_latest_read_files_enabled: flags.latest,
      measure_latency: true,
      id,
      nr_opens: Number(Atomics.load(this.#a, OFF_OPENS)),
      data_read: Number(Atomics.load(this.#a, OFF_DATA)),
      block_count_read: this.#slice(OFF_BLOCK, 8),
      fop_hits: this.#slice(OFF_HITS, NFOP),
      fop_errors: this.#slice(OFF_ERRS, NFOP),
      fop_cumulative_latency_total: this.#slice(OFF_LAT, NFOP),
      read_latency_dist: this.#slice(OFF_RLAT, 8),
    };
  }
}

// ---- Per-file records (upstream InodeIoStats and AccessPattern), shared by every FUSE worker ----
// Only allocated when "iostats_files", "access_pattern" or "latest_read_files" is on. An open-
// addressing table keyed by RAFS inode number: bounded memory (upstream's map is unbounded); files
// beyond the capacity are counted in `dropped` and not recorded.
const F_KEY = 0; // ino + 1 (0 = free slot)
const F_NR_READ = 1;
const F_FIRST_SECS = 2;
const F_FIRST_NANOS = 3;
const F_TOTAL = 4;
const F_DATA = 5;
const F_RECENT = 6;
const F_BLOCK = 7; // 8
const F_HITS = 15; // NFOP
const F_ERRS = 15 + NFOP; // NFOP
const F_SLOT = 15 + 2 * NFOP;
export const FILE_STATS_CAPACITY = 8192;

export interface FileStatsFlags {
  files: boolean;
  pattern: boolean;
  latest: boolean;
}

export function newFileStatsBuffer(capacity = FILE_STATS_CAPACITY): SharedArrayBuffer {
  return new SharedArrayBuffer((1 + capacity * F_SLOT) * 8);
}

export class FileStats {
  readonly #a: BigInt64Array;
  readonly #cap: number;
  readonly flags: FileStatsFlags;
  constructor(buf: SharedArrayBuffer, flags: FileStatsFlags) {
    this.#a = new BigInt64Array(buf);
    this.#cap = Math.floor((this.#a.length - 1) / F_SLOT);
    this.flags = flags;
  }

  /** Base index of the inode's slot, claiming a free one; undefined when the table is full. */
  #slot(ino: number): number | undefined {
    const key = BigInt(ino) + 1n;
    let h = Math.imul(ino ^ (ino >>> 16), 0x45d9f3b) >>> 0;
    for (let probe = 0; probe < this.#cap; probe++, h++) {
      const base = 1 + (h % this.#cap) * F_SLOT;
      const cur = Atomics.load(this.#a, base + F_KEY);
      if (cur === key) return base;
      if (cur === 0n) {
        const prev = Atomics.compareExchange(this.#a, base + F_KEY, 0n, key);
        if (prev === 0n || prev === key) return base;
      }
    }
    Atomics.add(this.#a, 0, 1n);
    return undefined;
  }

  fop(ino: number, op: number, ok: boolean): void {
    if (!this.flags.files) return;
    const b = this.#slot(ino);
    if (b === undefined) return;
    Atomics.add(this.#a, b + F_TOTAL, 1n);
    Atomics.add(this.#a, b + (ok ? F_HITS : F_ERRS) + op, 1n);
  }

  read(ino: number, bytes: number): void {
    const b = this.#slot(ino);
    if (b === undefined) return;
    const a = this.#a;
    if (this.flags.files) {
      Atomics.add(a, b + F_DATA, BigInt(bytes));
      Atomics.add(a, b + F_BLOCK + requestSizeIndex(bytes), 1n);
    }
    if (this.flags.pattern) {
      Atomics.add(a, b + F_NR_READ, 1n);
      if (Atomics.load(a, b + F_FIRST_SECS) === 0n) {
        const ms = performance.timeOrigin + performance.now();
        const secs = Math.floor(ms / 1000);
        if (Atomics.compareExchange(a, b + F_FIRST_SECS, 0n, BigInt(secs)) === 0n) {
          Atomics.store(a, b + F_FIRST_NANOS, BigInt(Math.floor((ms - secs * 1000) * 1e6)));
        }
      }
    }
    if (this.flags.latest) Atomics.store(a, b + F_RECENT, 1n);
  }

  #each(fn: (base: number, ino: number) => void): void {
    for (let i = 0; i < this.#cap; i++) {
      const base = 1 + i * F_SLOT;
      const key = Atomics.load(this.#a, base + F_KEY);
      if (key !== 0n) fn(base, Number(key - 1n));
    }
  }

  #slice(off: number, n: number): number[] {
    return Array.from({ length: n }, (_, i) => Number(Atomics.load(this.#a, off + i)));
  }

  /** GET /api/v1/metrics/files: inode → upstream InodeIoStats. */
  files(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (!this.flags.files) return out;
    this.#each((b, ino) => {
      out[String(ino)] = {
        total_fops: Number(Atomics.load(this.#a, b + F_TOTAL)),
        data_read: Number(Atomics.load(this.#a, b + F_DATA)),
        block_count_read: this.#slice(b + F_BLOCK, 8),
        fop_hits: this.#slice(b + F_HITS, NFOP),
        fop_errors: this.#slice(b + F_ERRS, NFOP),
      };
    });
    return out;
  }

  /**
   * GET /api/v1/metrics/files?latest=true: inodes read since the last call (then cleared), as
   * upstream's InodeBitmap array: [start, end] for a run of consecutive inodes, [ino] for one.
   */
  latestRead(): number[][] {
    const inos: number[] = [];
    this.#each((b, ino) => {
      if (Atomics.exchange(this.#a, b + F_RECENT, 0n) !== 0n) inos.push(ino);
    });
    inos.sort((x, y) => x - y);
    const out: number[][] = [];
    for (let i = 0; i < inos.length; ) {
      let j = i;
      while (j + 1 < inos.length && inos[j + 1] === inos[j]! + 1) j++;
      out.push(j > i ? [inos[i]!, inos[j]!] : [inos[i]!]);
      i = j + 1;
    }
    return out;
  }

  /** GET /api/v1/metrics/pattern: upstream AccessPattern records of files read at least once. */
  patterns(): Array<{ ino: number; nr_read: number; first_access_time_secs: number; first_access_time_nanos: number }> {
    const out: Array<{ ino: number; nr_read: number; first_access_time_secs: number; first_access_time_nanos: number }> = [];
    if (!this.flags.pattern) return out;
    this.#each((b, ino) => {
      const n = Number(Atomics.load(this.#a, b + F_NR_READ));
      if (n) out.push({ ino, nr_read: n, first_access_time_secs: Number(Atomics.load(this.#a, b + F_FIRST_SECS)), first_access_time_nanos: Number(Atomics.load(this.#a, b + F_FIRST_NANOS)) });
    });
    return out.sort((x, y) => x.first_access_time_secs - y.first_access_time_secs || x.first_access_time_nanos - y.first_access_time_nanos);
  }

  /** Files not recorded because the table was full. */
  get dropped(): number {
    return Number(Atomics.load(this.#a, 0));
  }
}
