// `nydusify convert`: OCI image (manifest or index) in a registry → nydus image in a registry
// (upstream-features §4.3/§4.6/§4.7). Per platform: convert layers (cached by source digest within
// the run), merge their bootstraps, push blobs that the target lacks, the bootstrap layer, config
// and manifest; then an index when the source was a multi-platform index.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NydusError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import type { BuildParams } from './builder-cli.js';
import { dockerCredentials, type Credentials } from './docker-config.js';
import { convertLayer, type LayerResult } from './layer.js';
import { blobDescriptor, bootstrapDescriptor, configDescriptor, makeBootstrapLayer, nydusConfig, nydusIndex, nydusIndexEntry, nydusManifest, toJsonBytes } from './manifest.js';
import { ANNO_NYDUS_BOOTSTRAP, isIndexType, layerCompression, MT_OCI_INDEX, MT_OCI_MANIFEST, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from './media-types.js';
import { mergeLayerBootstraps } from './merge-bootstrap.js';
import { formatRef, parseImageRef, refReference, type ImageRef } from './reference.js';
import { RegistryClient, sha256Digest } from './registry.js';
import { platformMatches } from './resolve.js';

export { hostPlatform } from './resolve.js';

const log = logger('convert');

export interface ExternalBackend {
  type: 'localfs' | 's3' | 'oss';
  config: Record<string, unknown>;
}

export interface ConvertOptions {
  source: string;
  target: string;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  plainHttp?: boolean;
  sourceCreds?: Credentials | undefined;
  targetCreds?: Credentials | undefined;
  build: BuildParams;
  prefetchPatterns?: string[];
  oci?: boolean;
  /** "os/arch[/variant]" list, or 'all'. */
  platforms: string[] | 'all';
  backend?: ExternalBackend | undefined;
  workDir: string;
  /** 0 = monolithic uploads. */
  pushChunkSize?: number;
  concurrency?: number;
  progress?: (line: string) => void;
}

export interface LayerMetric {
  SourceDigest: string;
  SourceSize: number;
  TargetDigest: string;
  TargetSize: number;
  Reused: boolean;
  PushSkipped: boolean;
  ConversionElapsed: number;
}

/** Field names of acceleration-service's Metric; durations in nanoseconds like Go's time.Duration. */
export interface ConvertMetrics {
  SourceImageSize: number;
  TargetImageSize: number;
  SourcePullElapsed: number;
  ConversionElapsed: number;
  TargetPushElapsed: number;
  Layers: LayerMetric[];
  TargetDigest: string;
  Platforms: string[];
}

const ms2ns = (ms: number): number => Math.round(ms * 1e6);

function platformString(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

interface RunState {
  opts: ConvertOptions;
  src: RegistryClient;
  dst: RegistryClient;
  srcRef: ImageRef;
  dstRef: ImageRef;
  /** Source layer digest → conversion (shared by platforms converting the same layer). */
  layers: Map<string, Promise<LayerResult>>;
  pushed: Map<string, Promise<boolean>>;
  metrics: ConvertMetrics;
  pullMs: number;
  pushMs: number;
}

async function pool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return out;
}

/** Pushes a blob unless the target already has it; true when it was skipped. */
function pushBlob(st: RunState, digest: string, src: { path: string; size: number } | Buffer): Promise<boolean> {
  let p = st.pushed.get(digest);
  if (!p) {
    p = (async () => {
      const t0 = Date.now();
      const repo = st.dstRef.repo;
      if ((await st.dst.headBlob(repo, digest)) !== undefined) return true;
      await st.dst.uploadBlob(repo, digest, src, st.opts.pushChunkSize ?? 0);
      st.pushMs += Date.now() - t0;
      return false;
    })();
    st.pushed.set(digest, p);
  }
  return p;
}

async function pushToExternal(b: ExternalBackend, blobPath: string, blobId: string): Promise<void> {
  if (b.type !== 'localfs') throw new UsageError(`--backend-type ${b.type} is not supported by convert yet (localfs is)`);
  const dir = b.config.dir;
  if (typeof dir !== 'string' || !dir) throw new UsageError('localfs backend config needs "dir"');
  await mkdir(dir, { recursive: true });
  await copyFile(blobPath, join(dir, blobId));
}

async function convertManifest(st: RunState, m: Manifest, platform: string): Promise<{ desc: Descriptor; manifest: Manifest }> {
  const { opts, src, srcRef } = st;
  if (m.layers.at(-1)?.annotations?.[ANNO_NYDUS_BOOTSTRAP] === 'true') throw new NydusError('ERR_FORMAT_UNSUPPORTED', `source ${formatRef(srcRef)} (${platform}) is already a nydus image`);
  const config = JSON.parse((await src.getBlobBytes(srcRef.repo, m.config.digest, 16 << 20)).toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length) throw new NydusError('ERR_FORMAT_INVALID', `source config has ${diffIds.length} diff_ids for ${m.layers.length} layers`);
  const oci = opts.oci === true || m.mediaType === MT_OCI_MANIFEST || m.mediaType === undefined;
  const results = await pool(m.layers, opts.concurrency ?? 3, async (l, i) => {
    const compression = layerCompression(l.mediaType);
    if (!compression) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `layer ${i + 1} (${l.digest}): unsupported media type '${l.mediaType}'`);
    let reused = true;
    let p = st.layers.get(l.digest);
    if (!p) {
      reused = false;
      const input = { index: i, digest: l.digest, size: l.size, compression, diffId: diffIds[i], open: () => src.getBlob(srcRef.repo, l.digest) };
      p = convertLayer(input, opts.workDir, opts.build);
      st.layers.set(l.digest, p);
    }
    const r = await p;
    if (!reused) st.pullMs = Math.max(st.pullMs, r.pullMs);
    const to = r.blob ? `nydus blob ${r.blob.digest.slice(7, 19)} ${(r.blob.size / 1048576).toFixed(1)} MiB` : 'no blob (no file data)';
    opts.progress?.(`[${platform}] layer ${i + 1}/${m.layers.length} ${l.digest.slice(7, 19)}: ${(r.sourceSize / 1048576).toFixed(1)} MiB → ${to}${reused ? ' (reused)' : ` in ${r.convertMs} ms`}`);
    return { r, reused };
  });
  const merged = await mergeLayerBootstraps(
    results.map(({ r }) => ({ bootstrap: r.bootstrap, model: r.model, explicitDirs: r.explicitDirs, blobId: r.blob?.digest.slice(7) ?? '' })),
    opts.prefetchPatterns ?? [],
  );
  const byBlobId = new Map(results.flatMap(({ r }) => (r.blob ? [[r.blob.digest.slice(7), r] as const] : [])));
  const blobLayers: Descriptor[] = [];
  for (const id of merged.blobs) {
    const r = byBlobId.get(id);
    const digest = `sha256:${id}`;
    if (opts.backend) {
      if (!r) throw new NydusError('ERR_BUILD', `blob ${id} (chunk dict) cannot be pushed to the ${opts.backend.type} backend: no local copy`);
      await pushToExternal(opts.backend, r.blob!.path, id);
      continue;
    }
    if (r) {
      const b = r.blob!;
      const skipped = await pushBlob(st, digest, { path: b.path, size: b.size });
      const res = results.find((x) => x.r === r)!;
      st.metrics.Layers.push({ SourceDigest: r.sourceDigest, SourceSize: r.sourceSize, TargetDigest: digest, TargetSize: b.size, Reused: res.reused, PushSkipped: skipped, ConversionElapsed: ms2ns(r.convertMs) });
      blobLayers.push(blobDescriptor(digest, b.size));
    } else {
      // A chunk-dict blob: it must already be in the target repository.
      const size = await st.dst.headBlob(st.dstRef.repo, digest);
      if (size === undefined) throw new NydusError('ERR_BUILD', `chunk dict blob ${id} is not in ${st.dstRef.host}/${st.dstRef.repo}`);
      blobLayers.push(blobDescriptor(digest, size));
    }
  }
  for (const { r } of results) st.metrics.SourceImageSize += r.sourceSize;
  const boot = makeBootstrapLayer(merged.bytes);
  await pushBlob(st, boot.digest, boot.gz);
  const cfg = nydusConfig(config, blobLayers.map((d) => d.digest), boot.diffId, opts.backend !== undefined);
  const cfgBytes = toJsonBytes(cfg);
  const cfgDesc = configDescriptor(oci, cfgBytes);
  await pushBlob(st, cfgDesc.digest, cfgBytes);
  const manifest = nydusManifest(oci, cfgDesc, [...blobLayers, bootstrapDescriptor(boot, merged.fsVersion, oci)]);
  const bytes = toJsonBytes(manifest);
  st.metrics.TargetImageSize += blobLayers.reduce((a, d) => a + d.size, 0) + boot.gz.length;
  return { desc: { mediaType: manifest.mediaType!, digest: '', size: bytes.length }, manifest };
}

export async function convertImage(opts: ConvertOptions): Promise<ConvertMetrics> {
  const t0 = Date.now();
  const srcRef = parseImageRef(opts.source);
  const dstRef = parseImageRef(opts.target);
  if (dstRef.digest) throw new UsageError('--target must be a tag reference, not a digest');
  await mkdir(opts.workDir, { recursive: true });
  const src = new RegistryClient(srcRef.host, { insecure: opts.sourceInsecure ?? false, plainHttp: opts.plainHttp ?? false, creds: opts.sourceCreds ?? dockerCredentials(srcRef.host) });
  const dst = new RegistryClient(dstRef.host, { insecure: opts.targetInsecure ?? false, plainHttp: opts.plainHttp ?? false, creds: opts.targetCreds ?? dockerCredentials(dstRef.host) });
  const st: RunState = {
    opts, src, dst, srcRef, dstRef,
    layers: new Map(),
    pushed: new Map(),
    metrics: { SourceImageSize: 0, TargetImageSize: 0, SourcePullElapsed: 0, ConversionElapsed: 0, TargetPushElapsed: 0, Layers: [], TargetDigest: '', Platforms: [] },
    pullMs: 0,
    pushMs: 0,
  };
  const top = await src.getManifest(srcRef.repo, refReference(srcRef));
  const tag = dstRef.tag ?? 'latest';
  const pushManifest = async (m: Manifest | Index, ref: string): Promise<string> => {
    const t = Date.now();
    const d = await dst.putManifest(dstRef.repo, ref, (m as { mediaType?: string }).mediaType ?? MT_OCI_MANIFEST, toJsonBytes(m));
    st.pushMs += Date.now() - t;
    return d;
  };
  if (isIndexType(top.mediaType)) {
    const idx = top.json as unknown as Index;
    const chosen = idx.manifests.filter((d) => platformMatches(d.platform, opts.platforms));
    if (!chosen.length) throw new NydusError('ERR_REGISTRY', `no manifest in ${formatRef(srcRef)} matches platform ${opts.platforms === 'all' ? 'any' : opts.platforms.join(',')}`);
    const converted: Descriptor[] = [];
    for (const d of chosen) {
      const pm = await src.getManifest(srcRef.repo, d.digest);
      if (isIndexType(pm.mediaType)) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `nested index ${d.digest} in ${formatRef(srcRef)}`);
      const plat = platformString(d.platform);
      st.metrics.Platforms.push(plat);
      const { desc, manifest } = await convertManifest(st, pm.json as unknown as Manifest, plat);
      // A single platform collapses to a plain manifest under the tag (§4.6).
      if (chosen.length === 1) {
        st.metrics.TargetDigest = await pushManifest(manifest, tag);
        break;
      }
      const digest = await pushManifest(manifest, sha256Digest(toJsonBytes(manifest)));
      converted.push(nydusIndexEntry({ ...desc, digest }, d.platform!));
    }
    if (converted.length) {
      const out = nydusIndex(idx.mediaType ?? top.mediaType ?? MT_OCI_INDEX, converted);
      st.metrics.TargetDigest = await pushManifest(out, tag);
    }
  } else {
    st.metrics.Platforms.push('default');
    const { manifest } = await convertManifest(st, top.json as unknown as Manifest, 'default');
    st.metrics.TargetDigest = await pushManifest(manifest, tag);
  }
  st.metrics.SourcePullElapsed = ms2ns(st.pullMs);
  st.metrics.TargetPushElapsed = ms2ns(st.pushMs);
  st.metrics.ConversionElapsed = ms2ns(Date.now() - t0);
  log.info(`converted ${formatRef(srcRef)} → ${formatRef(dstRef)} (${st.metrics.TargetDigest})`);
  return st.metrics;
}
