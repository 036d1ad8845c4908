// `nydusify check`: validates a converted image (upstream-features §4.7): manifest rules, bootstrap
// rules (blob table ⊆ manifest blob layers), then, with a source, file-by-file equality of the OCI
// image (layers applied with whiteouts) and the nydus image (merged bootstrap + downloaded blobs).
import { createWriteStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openBootstrap } from '../rafs/index.js';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import type { Credentials } from './docker-config.js';
import { applyOciLayer, compareTrees, nydusTree, type FsTree } from './fs-tree.js';
import { decompressor, sha256File } from './layer.js';
import { extractBootstrap } from './manifest.js';
import { ANNO_NYDUS_BLOB, ANNO_NYDUS_BOOTSTRAP, isIndexType, layerCompression, MT_NYDUS_BLOB, type Index } from './media-types.js';
import { hostPlatform, isNydusEntry, openImage, platformMatches, type ResolvedImage } from './resolve.js';

/** --multi-platform: one OCI and one nydus manifest for the platform in the target index. */
function mergedIndexRules(target: ResolvedImage, platform: string): string[] {
  if (!isIndexType(target.top.mediaType)) return ['--multi-platform: the target is a single manifest, not an index with OCI and nydus manifests'];
  const entries = (target.top.json as unknown as Index).manifests.filter((d) => platformMatches(d.platform, [platform]));
  const errs: string[] = [];
  if (!entries.some(isNydusEntry)) errs.push(`--multi-platform: no nydus manifest (os.features nydus.remoteimage.v1) for ${platform} in the index`);
  if (!entries.some((d) => !isNydusEntry(d))) errs.push(`--multi-platform: no OCI manifest for ${platform} in the index`);
  return errs;
}

const log = logger('check');

export interface CheckOptions {
  source?: string | undefined;
  target: string;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  plainHttp?: boolean;
  sourceCreds?: Credentials;
  targetCreds?: Credentials;
  platform?: string | undefined;
  /** Upstream --multi-platform: the target must be an index holding the OCI and the nydus manifest. */
  multiPlatform?: boolean;
  workDir: string;
}

export interface CheckReport {
  manifest: string[];
  bootstrap: string[];
  filesystem: string[];
  files: number;
}

function manifestRules(t: ResolvedImage, src: ResolvedImage | undefined): string[] {
  const errs: string[] = [];
  const layers = t.manifest.layers;
  const last = layers.at(-1);
  if (!last || last.annotations?.[ANNO_NYDUS_BOOTSTRAP] !== 'true') errs.push('last layer is not a nydus bootstrap layer');
  for (const [i, l] of layers.slice(0, -1).entries()) {
    if (l.mediaType !== MT_NYDUS_BLOB || l.annotations?.[ANNO_NYDUS_BLOB] !== 'true') errs.push(`layer ${i + 1} (${l.digest}) is not a nydus blob layer`);
  }
  const diffIds = t.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) errs.push(`config has ${diffIds.length} diff_ids for ${layers.length} layers`);
  for (const [i, l] of layers.slice(0, -1).entries()) if (diffIds[i] !== undefined && diffIds[i] !== l.digest) errs.push(`diff_id ${i + 1} ${diffIds[i]} != blob digest ${l.digest}`);
  if (t.indexEntry && !(t.indexEntry.platform?.['os.features'] ?? []).includes('nydus.remoteimage.v1')) errs.push('index entry lacks os.features nydus.remoteimage.v1');
  if (src) {
    // Everything but rootfs and history must be carried over unchanged.
    const strip = (c: Record<string, unknown>): string => JSON.stringify({ ...c, rootfs: undefined, history: undefined });
    if (strip(src.config) !== strip(t.config)) errs.push('config differs from the source config beyond rootfs/history');
  }
  return errs;
}

async function download(img: ResolvedImage, digest: string, path: string): Promise<void> {
  if (await stat(path).then((s) => s.isFile(), () => false)) if (`sha256:${await sha256File(path)}` === digest) return;
  await pipeline(await img.client.getBlob(img.ref.repo, digest), createWriteStream(path));
  if (`sha256:${await sha256File(path)}` !== digest) throw new NydusError('ERR_DIGEST_MISMATCH', `blob ${digest} downloaded with a different digest`);
}

export async function checkImage(o: CheckOptions): Promise<CheckReport> {
  await mkdir(o.workDir, { recursive: true });
  const platform = o.platform ? { platform: o.platform } : {};
  const target = await openImage(o.target, { insecure: o.targetInsecure ?? false, plainHttp: o.plainHttp ?? false, creds: o.targetCreds, ...platform, nydus: true });
  const source = o.source ? await openImage(o.source, { insecure: o.sourceInsecure ?? false, plainHttp: o.plainHttp ?? false, creds: o.sourceCreds, ...platform, nydus: false }) : undefined;
  await writeFile(join(o.workDir, 'nydus_manifest.json'), target.manifestBytes);
  await writeFile(join(o.workDir, 'nydus_config.json'), JSON.stringify(target.config, null, 2));
  if (source) {
    await writeFile(join(o.workDir, 'oci_manifest.json'), source.manifestBytes);
    await writeFile(join(o.workDir, 'oci_config.json'), JSON.stringify(source.config, null, 2));
  }
  const report: CheckReport = { manifest: [...(o.multiPlatform ? mergedIndexRules(target, o.platform ?? hostPlatform()) : []), ...manifestRules(target, source)], bootstrap: [], filesystem: [], files: 0 };
  const bootLayer = target.manifest.layers.at(-1);
  if (!bootLayer || report.manifest.length) return report;

  const bootDir = join(o.workDir, 'nydus_bootstrap');
  await mkdir(bootDir, { recursive: true });
  const boot = extractBootstrap(await target.client.getBlobBytes(target.ref.repo, bootLayer.digest, 1 << 30));
  await writeFile(join(bootDir, 'image.boot'), boot);
  const sb = openBootstrap(boot, 'nydus bootstrap');
  try {
    sb.validate();
  } catch (e) {
    report.bootstrap.push((e as Error).message);
    return report;
  }
  const blobLayers = new Set(target.manifest.layers.slice(0, -1).map((l) => l.digest.replace(/^sha256:/, '')));
  for (const b of sb.blobs) if (!blobLayers.has(b.blobId)) report.bootstrap.push(`blob ${b.blobId} of the bootstrap is not a layer of the manifest`);
  if (report.bootstrap.length || !source) return report;

  // Filesystem: nydus side from downloaded blobs, OCI side streamed layer by layer.
  const blobDir = join(o.workDir, 'nydus_blobs');
  await mkdir(blobDir, { recursive: true });
  for (const b of sb.blobs) await download(target, `sha256:${b.blobId}`, join(blobDir, b.blobId));
  const nydus = nydusTree(sb, blobDir);
  const oci: FsTree = new Map();
  for (const [i, l] of source.manifest.layers.entries()) {
    const c = layerCompression(l.mediaType);
    if (!c) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `source layer ${i + 1}: unsupported media type '${l.mediaType}'`);
    const raw = await source.client.getBlob(source.ref.repo, l.digest);
    const dec = decompressor(c);
    const tar = dec ? raw.pipe(dec) : raw;
    raw.on('error', (e) => tar.destroy(e));
    await applyOciLayer(oci, tar, `source layer ${i + 1}`);
  }
  report.files = nydus.size;
  report.filesystem = compareTrees(oci, nydus);
  log.debug(`compared ${oci.size} OCI entries with ${nydus.size} nydus entries`);
  return report;
}
