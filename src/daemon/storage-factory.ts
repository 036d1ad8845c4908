// The daemon's storage factory: storage's BlobCacheManager for one mount, with its counters mapped
// to upstream's /api/v1/metrics/backend and /metrics/blobcache field names, and hot config updates.
import type { FsConfig } from '../config/daemon-config.js';
import type { BlobInfo } from '../format/blob-info.js';
import { openMountStorage, type BlobCacheManager } from '../storage/index.js';
import { BLOB_DATA_FILE_SUFFIX } from '../storage/cache/file-cache.js';
import { ControlError } from './control.js';
import type { MountStorage } from './mount-storage.js';

interface HotUpdatable {
  auth?: { setBasic?(b: string): void };
  proxy?: { setUrl?(u: string): void } | undefined;
}

export async function createMountStorage(blobs: readonly BlobInfo[], config: FsConfig): Promise<MountStorage> {
  const m: BlobCacheManager = await openMountStorage(blobs, config);
  // Wall-clock span of prefetch (upstream's prefetch_begin/end_time_* fields); 0 = not yet.
  let pfBegin = 0;
  let pfEnd = 0;
  const secsMillis = (t: number): [number, number] => [Math.floor(t / 1000), t % 1000];
  return {
    readChunks: (chunks) => m.readChunks(chunks),
    cacheViews: () => m.cacheViews(),
    prefetch: (chunks) => {
      if (!pfBegin) pfBegin = Date.now();
      pfEnd = 0;
      m.prefetch(chunks);
      void m.prefetcher?.whenDone().then(() => (pfEnd ||= Date.now()), () => undefined);
    },
    prefetchDone: async () => {
      const p = m.prefetcher;
      if (!p) return undefined;
      await p.whenDone();
      return { ...p.progress };
    },
    metrics: () => {
      // Storage's own typed counters, renamed to upstream's API fields.
      const { backend: b, blobcache: c } = m.metrics();
      const p = c.prefetch;
      return {
        backend: {
          backend_type: m.backend.type,
          read_count: b.readCount,
          read_errors: b.readErrors,
          read_amount_total: b.readBytes,
          read_cumulative_latency_millis_total: Math.round(b.readLatencyMsTotal),
          read_cumulative_latency_millis_dist: [...b.latencyMsBySize],
          read_count_block_size_dist: [...b.countBySize],
          read_latency_sizes_dist: b.latencyBySize.map((r) => [...r]),
        },
        blobcache: {
          underlying_files: m.cache.kind === 'filecache' ? blobs.map((x) => `${x.blobId}.${BLOB_DATA_FILE_SUFFIX}`) : [],
          store_path: m.cache.kind === 'filecache' ? config.cache.workDir : '',
          partial_hits: 0,
          whole_hits: c.hits,
          total: c.hits + c.misses,
          entries_count: c.readyChunks,
          prefetch_data_amount: c.prefetchBytes,
          prefetch_requests_count: p?.requests ?? 0,
          prefetch_workers: config.rafs.prefetch.enable ? config.rafs.prefetch.threads : config.cache.prefetch.threads,
          prefetch_unmerged_chunks: p?.totalChunks ?? 0,
          prefetch_cumulative_time_millis: pfBegin ? (pfEnd || Date.now()) - pfBegin : 0,
          prefetch_begin_time_secs: secsMillis(pfBegin)[0],
          prefetch_begin_time_millis: secsMillis(pfBegin)[1],
          prefetch_end_time_secs: secsMillis(pfEnd)[0],
          prefetch_end_time_millis: secsMillis(pfEnd)[1],
          buffered_backend_size: c.backendBytes,
          data_all_ready: c.totalChunks > 0 && c.readyChunks >= c.totalChunks,
          // Our extension: exact progress and error counters.
          ready_chunks: c.readyChunks,
          total_chunks: c.totalChunks,
          misses: c.misses,
          inflight_joins: c.inflightJoins,
          digest_failures: c.digestFailures,
          fetch_errors: c.fetchErrors,
          prefetch: p ?? null,
        },
      };
    },
    updateConfig: (patch) => {
      const be = m.backend as unknown as HotUpdatable;
      if (patch.registryAuth !== undefined) {
        if (!be.auth?.setBasic) throw new ControlError(400, 'INVALID_ARGUMENT', `registry_auth: the ${m.backend.type} backend has no registry auth`);
        be.auth.setBasic(patch.registryAuth);
      }
      if (patch.proxyUrl !== undefined) {
        if (!be.proxy?.setUrl) throw new ControlError(400, 'INVALID_ARGUMENT', 'proxy_url: the backend has no proxy configured');
        be.proxy.setUrl(patch.proxyUrl);
      }
    },
    close: () => m.close(),
  };
}
