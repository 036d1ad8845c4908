// GET /metrics (Prometheus text format) on the API socket, with prom-client. Nothing here runs on the
// FUSE hot path: FUSE workers keep adding to their shared counters (fs-stats.ts), backends to their
// BackendMetrics, caches to theirs; every metric below is a collector that reads those at scrape
// time. prom-client's default collectors add the process metrics (CPU, RSS, fds, event-loop lag, GC).
// The list is documented in docs/metrics.md.
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import { FOP_LATENCY_BOUNDS_US, FOP_NAMES, type FsStats } from './fs-stats.js';

/** What one RAFS mount shows to a scrape. */
export interface PromMount {
  mountpoint: string;
  stats: FsStats;
  /** The storage metrics bodies (/api/v1/metrics/backend and /blobcache). */
  storage: { backend: Record<string, unknown>; blobcache: Record<string, unknown> };
}

export interface PromSource {
  mounts(): PromMount[];
  /** FUSE requests and errors by opcode name (the session's counters). */
  fuse(): { requests: Record<string, number>; errors: Record<string, number> } | undefined;
  eventErrors(): number;
}

type Labels = Record<string, string | number>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** A metric whose values are computed at scrape time from counters kept elsewhere. */
class Collected {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly values: () => Value[],
  ) {}
  get(): { name: string; help: string; type: string; values: Value[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }
  reset(): void {}
}

/** Histogram series from per-bucket (non-cumulative) counts; the last count is the +Inf bucket. */
function histogram(name: string, labels: Labels, bounds: readonly number[], counts: readonly number[], sum: number): Value[] {
  const out: Value[] = [];
  let acc = 0;
  bounds.forEach((le, i) => {
    acc += counts[i] ?? 0;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: acc });
  });
  acc += counts[bounds.length] ?? 0;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: acc });
  out.push({ metricName: `${name}_sum`, labels, value: sum }, { metricName: `${name}_count`, labels, value: acc });
  return out;
}

const num = (r: Record<string, unknown>, k: string): number => (typeof r[k] === 'number' ? (r[k] as number) : 0);
/** Upstream backend latency buckets (ms, inclusive of the floor of the latency). */
const BACKEND_LATENCY_BOUNDS_S = [0.001, 0.02, 0.05, 0.1, 0.5, 1, 2];
const FOP_BOUNDS_S = FOP_LATENCY_BOUNDS_US.map((us) => us / 1e6);

/** The /metrics registry of one nydusd; `prefix` keeps process metrics apart from other exporters. */
export function createPrometheus(src: PromSource): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: 'nydusd_' });
  const add = (name: string, help: string, type: Collected['type'], values: () => Value[]): void => reg.registerMetric(new Collected(name, help, type, values) as unknown as Metric);
  const perMount = (f: (m: PromMount) => number) => (): Value[] => src.mounts().map((m) => ({ labels: { mountpoint: m.mountpoint }, value: f(m) }));
  const fs = (m: PromMount): Record<string, unknown> => m.stats.snapshot(m.mountpoint, { files: false, pattern: false, latest: false });

  add('nydusd_data_read_bytes_total', 'Bytes read by users', 'counter', perMount((m) => num(fs(m), 'data_read')));
  add('nydusd_opens_total', 'Files opened', 'counter', perMount((m) => num(fs(m), 'nr_opens')));
  add('nydusd_fuse_requests_total', 'FUSE requests by opcode', 'counter', () => Object.entries(src.fuse()?.requests ?? {}).map(([op, n]) => ({ labels: { opcode: op }, value: n })));
  add('nydusd_fuse_errors_total', 'FUSE requests answered with an error, by opcode', 'counter', () => Object.entries(src.fuse()?.errors ?? {}).map(([op, n]) => ({ labels: { opcode: op }, value: n })));
  add('nydusd_fuse_op_duration_seconds', 'Time to serve a RAFS filesystem operation, by operation', 'histogram', () =>
    src.mounts().flatMap((m) =>
      m.stats.fopLatency().flatMap((l, op) => (l.buckets.some((c) => c > 0) ? histogram('nydusd_fuse_op_duration_seconds', { mountpoint: m.mountpoint, op: FOP_NAMES[op]!.toLowerCase() }, FOP_BOUNDS_S, l.buckets, l.sumUs / 1e6) : [])),
    ),
  );
  add('nydusd_backend_read_bytes_total', 'Bytes read from the backend', 'counter', perMount((m) => num(m.storage.backend, 'read_amount_total')));
  add('nydusd_backend_reads_total', 'Backend read requests', 'counter', perMount((m) => num(m.storage.backend, 'read_count')));
  add('nydusd_backend_read_errors_total', 'Failed backend reads', 'counter', perMount((m) => num(m.storage.backend, 'read_errors')));
  add('nydusd_backend_read_duration_seconds', 'Backend read latency (a request with its retries)', 'histogram', () =>
    src.mounts().flatMap((m) => {
      const rows = (m.storage.backend.read_latency_sizes_dist as number[][] | undefined) ?? [];
      const counts = new Array<number>(8).fill(0);
      for (const row of rows) row.forEach((c, i) => (counts[i]! += c));
      return histogram('nydusd_backend_read_duration_seconds', { mountpoint: m.mountpoint, backend: String(m.storage.backend.backend_type ?? '') }, BACKEND_LATENCY_BOUNDS_S, counts, num(m.storage.backend, 'read_cumulative_latency_millis_total') / 1000);
    }),
  );
  add('nydusd_cache_hits_total', 'Chunk reads served from the blob cache', 'counter', perMount((m) => num(m.storage.blobcache, 'whole_hits')));
  add('nydusd_cache_misses_total', 'Chunk reads that had to fetch from the backend', 'counter', perMount((m) => num(m.storage.blobcache, 'total') - num(m.storage.blobcache, 'whole_hits')));
  add('nydusd_prefetch_bytes_total', 'Bytes prefetched into the blob cache', 'counter', perMount((m) => num(m.storage.blobcache, 'prefetch_data_amount')));
  add('nydusd_mounts', 'RAFS instances mounted', 'gauge', () => [{ labels: {}, value: src.mounts().length }]);
  add('nydusd_errors_total', 'Errors recorded in the event ring', 'counter', () => [{ labels: {}, value: src.eventErrors() }]);
  return reg;
}
