// Per-mount filesystem counters in a SharedArrayBuffer, updated with Atomics by every FUSE worker and
// read by the main thread for /api/v1/metrics (upstream FsIoStats field names and bucket orders).

/** Fop index order of upstream's fop_hits/fop_errors arrays. */
export const FOP = {
  Getattr: 0, Readlink: 1, Open: 2, Release: 3, Read: 4, Statfs: 5, Getxattr: 6, Listxattr: 7,
  Opendir: 8, Lookup: 9, Readdir: 10, Readdirplus: 11, Access: 12, Forget: 13, BatchForget: 14,
} as const;
const NFOP = 15;
// Size buckets: <1K, 1K, 4K, 16K, 64K, 128K, 512K, 1M+
const SIZE_BOUNDS = [1024, 4096, 16384, 65536, 131072, 524288, 1048576];
// Latency buckets (ms): <=1, <=20, <=50, <=100, <=500, <=1000, <=2000, >2000
const LAT_BOUNDS = [1, 20, 50, 100, 500, 1000, 2000];

const OFF_OPENS = 0;
const OFF_DATA = 1;
const OFF_BLOCK = 2; // 8
const OFF_HITS = 10; // 15
const OFF_ERRS = 25; // 15
const OFF_LAT = 40; // 15 (microseconds)
const OFF_RLAT = 55; // 8
export const FS_STATS_SLOTS = 63;

export function newFsStatsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(FS_STATS_SLOTS * 8);
}

function bucket(v: number, bounds: number[]): number {
  let i = 0;
  while (i < bounds.length && v >= bounds[i]!) i++;
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
  fop(op: number, ok: boolean, latencyUs = 0): void {
    this.#add((ok ? OFF_HITS : OFF_ERRS) + op, 1);
    if (latencyUs) this.#add(OFF_LAT + op, latencyUs);
  }
  open(): void {
    this.#add(OFF_OPENS, 1);
  }
  dataRead(bytes: number): void {
    this.#add(OFF_DATA, bytes);
    this.#add(OFF_BLOCK + bucket(bytes, SIZE_BOUNDS), 1);
  }
  readLatency(ms: number): void {
    this.#add(OFF_RLAT + bucket(ms, LAT_BOUNDS.map((b) => b + 1e-9)), 1);
  }
  #slice(off: number, n: number): number[] {
    return Array.from({ length: n }, (_, i) => Number(Atomics.load(this.#a, off + i)));
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
