// `nydusify convert`: OCI image (manifest or index) in a registry → nydus image in a registry
// (upstream-features §4.3/§4.6/§4.7). Per platform: convert layers (cached by source digest within
// the run), merge their bootstraps, push blobs that the target lacks, the bootstrap layer, config
// and manifest; then an index when the source was a multi-platform index.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NydusError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { humanBytes } from '../util/human.js';
import { BUILDER_VERSION, type BuildParams } from './builder-cli.js';
import { dockerCredentials, type Credentials } from './docker-config.js';
import { convertLayer, type LayerResult } from './layer.js';
import { blobDescriptor, bootstrapDescriptor, configDescriptor, makeBootstrapLayer, nydusConfig, nydusIndex, nydusIndexEntry, nydusManifest, toJsonBytes } from './manifest.js';
import { ANNO_NYDUS_BOOTSTRAP, ANNO_NYDUS_BUILDER_VERSION, ANNO_NYDUS_FS_VERSION, ANNO_NYDUS_SOURCE_DIGEST, ANNO_NYDUS_SOURCE_REFERENCE, isIndexType, layerCompression, MT_OCI_INDEX, MT_OCI_MANIFEST, NYDUS_MANIFEST_ARTIFACT_TYPE, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from './media-types.js';
import { mergeLayerBootstraps } from './merge-bootstrap.js';
import { checkDigest, formatRef, parseImageRef, refReference, type ImageRef } from './reference.js';
import { RegistryClient, sha256Digest } from './registry.js';
import { isNydusEntry, platformMatches } from './resolve.js';
import { ANNO_NYDUS_REF_LAYER, convertRefLayer, type RefLayerResult } from './oci-ref.js';
import { downloadTo } from './download.js';

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
  /** The platforms were asked for (--platform), not the host default: a mismatch is worth a warning. */
  platformsExplicit?: boolean;
  backend?: ExternalBackend | undefined;
  workDir: string;
  /** 0 = monolithic uploads. */
  pushChunkSize?: number;
  concurrency?: number;
  progress?: (line: string) => void;
  /** Bytes of layer data received from the source (`pull`) or sent to the target (`push`). */
  onBytes?: (kind: 'pull' | 'push', bytes: number) => void;
  /** Written as the nydus-builder-version annotation (upstream: `nydus-image --version`). */
  builderVersion?: string;
  /** One index holding the source (OCI) manifests and the nydus ones (upstream --merge-platform). */
  mergePlatform?: boolean;
  /** Nydus manifests name their source manifest as `subject` (upstream --with-referrer). */
  withReferrer?: boolean;
  /** Zero-conversion: reference the original gzip layers through zran indexes (upstream --oci-ref). */
  ociRef?: boolean;
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
  refLayers: Map<string, Promise<RefLayerResult>>;
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

/** Source manifest descriptor (what the nydus manifest was converted from). */
interface SourceManifest {
  mediaType: string;
  digest: string;
  size: number;
}

/** Every digest of a source manifest, validated before any of them reaches a URL or a file name. */
function checkManifestDigests(m: Manifest, what: string): void {
  if (!m || typeof m !== 'object' || !m.config || !Array.isArray(m.layers)) throw new NydusError('ERR_FORMAT_INVALID', `${what}: not an image manifest (no config or layers)`);
  checkDigest(m.config.digest, `${what} config`);
  m.layers.forEach((l, i) => checkDigest(l?.digest, `${what} layer ${i + 1}`));
}

async function convertManifest(st: RunState, m: Manifest, platform: string, srcDesc: SourceManifest): Promise<{ desc: Descriptor; manifest: Manifest; config: ImageConfig }> {
  const { opts, src, srcRef } = st;
  checkManifestDigests(m, `source ${formatRef(srcRef)} (${platform})`);
  if (m.layers.at(-1)?.annotations?.[ANNO_NYDUS_BOOTSTRAP] === 'true') throw new NydusError('ERR_FORMAT_UNSUPPORTED', `source ${formatRef(srcRef)} (${platform}) is already a nydus image`);
  const config = JSON.parse((await src.getBlobBytes(srcRef.repo, m.config.digest, 16 << 20)).toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length) throw new NydusError('ERR_FORMAT_INVALID', `source config has ${diffIds.length} diff_ids for ${m.layers.length} layers`);
  const oci = opts.oci === true || m.mediaType === MT_OCI_MANIFEST || m.mediaType === undefined;
  if (opts.ociRef) {
    const { merged, blobLayers } = await convertRefLayers(st, m, platform);
    return finishManifest(st, config, oci, blobLayers, merged, srcDesc);
  }
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
    // Push while the other layers still build (pushBlob is single-flight per digest; the loop after
    // the merge awaits the same promise and reports its error).
    if (r.blob && !opts.backend) pushBlob(st, r.blob.digest, { path: r.blob.path, size: r.blob.size }).catch(() => {});
    const to = r.blob ? `nydus blob ${r.blob.digest.slice(7, 19)} ${humanBytes(r.blob.size)}` : 'no blob (no file data)';
    opts.progress?.(`[${platform}] layer ${i + 1}/${m.layers.length} ${l.digest.slice(7, 19)}: ${humanBytes(r.sourceSize)} → ${to}${reused ? ' (reused)' : ` in ${r.convertMs} ms`}`);
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
  return finishManifest(st, config, oci, blobLayers, merged, srcDesc);
}

/** Pushes the bootstrap layer and config; builds the nydus manifest over `blobLayers`. */
async function finishManifest(st: RunState, config: ImageConfig, oci: boolean, blobLayers: Descriptor[], merged: { bytes: Uint8Array; fsVersion: 5 | 6 }, srcDesc: SourceManifest): Promise<{ desc: Descriptor; manifest: Manifest; config: ImageConfig }> {
  const { opts, srcRef } = st;
  const boot = makeBootstrapLayer(merged.bytes);
  await pushBlob(st, boot.digest, boot.gz);
  const cfg = nydusConfig(config, blobLayers.map((d) => d.digest), boot.diffId, opts.backend !== undefined);
  const cfgBytes = toJsonBytes(cfg);
  const cfgDesc = configDescriptor(oci, cfgBytes);
  await pushBlob(st, cfgDesc.digest, cfgBytes);
  // Upstream's converter annotates each converted manifest with where it came from and what built it.
  const annotations: Record<string, string> = {
    // An external --nydus-image builder's version is not probed: the annotation is omitted then.
    ...(opts.build.nydusImage.length === 0 ? { [ANNO_NYDUS_BUILDER_VERSION]: opts.builderVersion ?? BUILDER_VERSION } : opts.builderVersion ? { [ANNO_NYDUS_BUILDER_VERSION]: opts.builderVersion } : {}),
    [ANNO_NYDUS_FS_VERSION]: String(merged.fsVersion),
    [ANNO_NYDUS_SOURCE_DIGEST]: srcDesc.digest,
    [ANNO_NYDUS_SOURCE_REFERENCE]: formatRef(srcRef),
  };
  const manifest = nydusManifest(oci, cfgDesc, [...blobLayers, bootstrapDescriptor(boot, merged.fsVersion, oci)], annotations);
  // OCI-only fields: a docker schema2 manifest has neither.
  if (oci && opts.mergePlatform) manifest.artifactType = NYDUS_MANIFEST_ARTIFACT_TYPE;
  if (oci && opts.withReferrer) manifest.subject = { mediaType: srcDesc.mediaType, digest: srcDesc.digest, size: srcDesc.size };
  const bytes = toJsonBytes(manifest);
  st.metrics.TargetImageSize += blobLayers.reduce((a, d) => a + d.size, 0) + boot.gz.length;
  return { desc: { mediaType: manifest.mediaType!, digest: '', size: bytes.length, ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}) }, manifest, config };
}

/**
 * --oci-ref: per layer a bootstrap and ref blob (the layer is read, not converted); the original
 * layers are made present in the target repository without uploading them when the registry
 * allows (already there, or a cross-repository mount), else copied.
 */
async function convertRefLayers(st: RunState, m: Manifest, platform: string): Promise<{ merged: { bytes: Uint8Array; fsVersion: 5 | 6 }; blobLayers: Descriptor[] }> {
  const { opts, src, srcRef, dst, dstRef } = st;
  if (opts.backend) throw new UsageError('--oci-ref cannot be used with --backend-type: the data stays in the registry');
  const results = await pool(m.layers, opts.concurrency ?? 3, async (l, i) => {
    const compression = layerCompression(l.mediaType);
    if (!compression) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `layer ${i + 1} (${l.digest}): unsupported media type '${l.mediaType}'`);
    let p = st.refLayers.get(l.digest);
    if (!p) {
      p = convertRefLayer({ index: i, digest: l.digest, size: l.size, compression, open: () => src.getBlob(srcRef.repo, l.digest) }, opts.workDir, opts.build);
      st.refLayers.set(l.digest, p);
    }
    const r = await p;
    st.pullMs = Math.max(st.pullMs, r.pullMs);
    opts.progress?.(`[${platform}] layer ${i + 1}/${m.layers.length} ${l.digest.slice(7, 19)}: ${(r.sourceSize / 1048576).toFixed(1)} MiB → ref blob ${r.refBlob.digest.slice(7, 19)} ${(r.refBlob.size / 1024).toFixed(1)} KiB in ${r.convertMs} ms`);
    return r;
  });
  const merged = await mergeLayerBootstraps(results.map((r) => ({ bootstrap: r.bootstrap, blobId: r.chunks ? r.layerId : '' })));
  const blobLayers: Descriptor[] = [];
  const sameRegistry = srcRef.host === dstRef.host;
  for (const [i, r] of results.entries()) {
    if (!merged.blobs.includes(r.layerId)) continue;
    const layerDigest = m.layers[i]!.digest;
    // The data: the original layer, in the target repository.
    let present = st.pushed.get(layerDigest);
    if (!present) {
      present = (async () => {
        if ((await dst.headBlob(dstRef.repo, layerDigest)) !== undefined) return true;
        if (sameRegistry && srcRef.repo !== dstRef.repo && (await dst.mountBlob(dstRef.repo, layerDigest, srcRef.repo))) return true;
        const path = join(opts.workDir, `copy-${r.layerId}`);
        const size = await downloadTo(await src.getBlob(srcRef.repo, layerDigest), path, layerDigest);
        await dst.uploadBlob(dstRef.repo, layerDigest, { path, size }, opts.pushChunkSize ?? 0);
        await rm(path, { force: true });
        log.warn(`layer ${layerDigest} was copied into ${dstRef.host}/${dstRef.repo} (no cross-repository mount possible)`);
        return false;
      })();
      st.pushed.set(layerDigest, present);
    }
    await present;
    const skipped = await pushBlob(st, r.refBlob.digest, { path: r.refBlob.path, size: r.refBlob.size });
    st.metrics.Layers.push({ SourceDigest: r.sourceDigest, SourceSize: r.sourceSize, TargetDigest: r.refBlob.digest, TargetSize: r.refBlob.size, Reused: false, PushSkipped: skipped, ConversionElapsed: ms2ns(r.convertMs) });
    const d = blobDescriptor(r.refBlob.digest, r.refBlob.size);
    d.annotations = { ...d.annotations, [ANNO_NYDUS_REF_LAYER]: layerDigest };
    blobLayers.push(d);
  }
  for (const r of results) st.metrics.SourceImageSize += r.sourceSize;
  return { merged, blobLayers };
}

/**
 * --merge-platform: the source manifest must live in the target repository too. Copies its config
 * and layers (a cross-repository mount on the same registry, else download and upload) and the
 * manifest bytes under their digest.
 */
async function copySourceManifest(st: RunState, m: Manifest, bytes: Buffer, desc: SourceManifest): Promise<void> {
  const { src, dst, srcRef, dstRef } = st;
  const sameRegistry = srcRef.host === dstRef.host;
  for (const d of [m.config, ...m.layers]) {
    checkDigest(d.digest, `source manifest ${desc.digest} blob`);
    if ((await dst.headBlob(dstRef.repo, d.digest)) !== undefined) continue;
    if (sameRegistry && srcRef.repo !== dstRef.repo && (await dst.mountBlob(dstRef.repo, d.digest, srcRef.repo))) continue;
    const { hex } = checkDigest(d.digest, 'source blob');
    const path = join(st.opts.workDir, `copy-${hex}`);
    await mkdir(st.opts.workDir, { recursive: true });
    const size = await downloadTo(await src.getBlob(srcRef.repo, d.digest), path, d.digest);
    await dst.uploadBlob(dstRef.repo, d.digest, { path, size }, st.opts.pushChunkSize ?? 0);
    await rm(path, { force: true });
  }
  await dst.putManifest(dstRef.repo, desc.digest, desc.mediaType, bytes);
}


function configPlatform(c: ImageConfig): Platform {
  return { os: c.os ?? 'unknown', architecture: c.architecture ?? 'unknown', ...(c.variant ? { variant: c.variant } : {}) };
}

export async function convertImage(opts: ConvertOptions): Promise<ConvertMetrics> {
  const t0 = Date.now();
  const srcRef = parseImageRef(opts.source);
  const dstRef = parseImageRef(opts.target);
  if (dstRef.digest) throw new UsageError('--target must be a tag reference, not a digest');
  await mkdir(opts.workDir, { recursive: true });
  const src = new RegistryClient(srcRef.host, { insecure: opts.sourceInsecure ?? false, plainHttp: opts.plainHttp ?? false, creds: opts.sourceCreds ?? dockerCredentials(srcRef.host), ...(opts.onBytes ? { onBytes: (n: number) => opts.onBytes!('pull', n) } : {}) });
  const dst = new RegistryClient(dstRef.host, { insecure: opts.targetInsecure ?? false, plainHttp: opts.plainHttp ?? false, creds: opts.targetCreds ?? dockerCredentials(dstRef.host), ...(opts.onBytes ? { onBytes: (n: number) => opts.onBytes!('push', n) } : {}) });
  const st: RunState = {
    opts, src, dst, srcRef, dstRef,
    layers: new Map(),
    refLayers: new Map(),
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
  const merge = opts.mergePlatform === true;
  if (isIndexType(top.mediaType)) {
    const idx = top.json as unknown as Index;
    if (!Array.isArray(idx.manifests)) throw new NydusError('ERR_FORMAT_INVALID', `${formatRef(srcRef)}: index without "manifests"`);
    idx.manifests.forEach((d, i) => checkDigest(d?.digest, `${formatRef(srcRef)} index entry ${i + 1}`));
    // Entries a previous --merge-platform added are outputs, not sources.
    const chosen = idx.manifests.filter((d) => !isNydusEntry(d) && platformMatches(d.platform, opts.platforms));
    if (!chosen.length) throw new NydusError('ERR_REGISTRY', `no manifest in ${formatRef(srcRef)} matches platform ${opts.platforms === 'all' ? 'any' : opts.platforms.join(',')}`);
    const converted: Descriptor[] = [];
    const sources: Descriptor[] = [];
    for (const d of chosen) {
      const pm = await src.getManifest(srcRef.repo, d.digest);
      if (isIndexType(pm.mediaType)) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `nested index ${d.digest} in ${formatRef(srcRef)}`);
      const plat = platformString(d.platform);
      st.metrics.Platforms.push(plat);
      const srcDesc = { mediaType: pm.mediaType, digest: pm.digest, size: pm.bytes.length };
      const { desc, manifest } = await convertManifest(st, pm.json as unknown as Manifest, plat, srcDesc);
      // A single platform collapses to a plain manifest under the tag (§4.6), unless merging.
      if (chosen.length === 1 && !merge) {
        st.metrics.TargetDigest = await pushManifest(manifest, tag);
        break;
      }
      const digest = await pushManifest(manifest, sha256Digest(toJsonBytes(manifest)));
      converted.push(nydusIndexEntry({ ...desc, digest }, d.platform!));
      if (merge) {
        await copySourceManifest(st, pm.json as unknown as Manifest, pm.bytes, srcDesc);
        sources.push({ ...srcDesc, platform: d.platform! });
      }
    }
    if (converted.length) {
      const out = merge ? nydusIndex(MT_OCI_INDEX, [...sources, ...converted]) : nydusIndex(idx.mediaType ?? top.mediaType ?? MT_OCI_INDEX, converted);
      st.metrics.TargetDigest = await pushManifest(out, tag);
    }
  } else {
    st.metrics.Platforms.push('default');
    const srcDesc = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    const { desc, manifest, config } = await convertManifest(st, top.json as unknown as Manifest, 'default', srcDesc);
    const plat = configPlatform(config);
    // A plain manifest has one platform: converting it "for" another is most likely a mistake.
    if (opts.platformsExplicit && opts.platforms !== 'all' && !platformMatches(plat, opts.platforms)) {
      log.warn(`--platform ${opts.platforms.join(',')} does not match the platform of ${formatRef(srcRef)} (${platformString(plat)}, a single-platform image): converting it anyway`);
    }
    if (merge) {
      const digest = await pushManifest(manifest, sha256Digest(toJsonBytes(manifest)));
      await copySourceManifest(st, top.json as unknown as Manifest, top.bytes, srcDesc);
      const out = nydusIndex(MT_OCI_INDEX, [{ ...srcDesc, platform: plat }, nydusIndexEntry({ ...desc, digest }, plat)]);
      st.metrics.TargetDigest = await pushManifest(out, tag);
    } else st.metrics.TargetDigest = await pushManifest(manifest, tag);
  }
  st.metrics.SourcePullElapsed = ms2ns(st.pullMs);
  st.metrics.TargetPushElapsed = ms2ns(st.pushMs);
  st.metrics.ConversionElapsed = ms2ns(Date.now() - t0);
  // The CLI prints the one success line; this is for library callers running with debug logs.
  log.debug(`converted ${formatRef(srcRef)} → ${formatRef(dstRef)} (${st.metrics.TargetDigest})`);
  return st.metrics;
}
