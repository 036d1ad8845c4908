// The shape of a converted nydus image (upstream-features §4.6): blob layers, the bootstrap layer
// (gzip of a tar holding image/ and image/image.boot), the rewritten config and manifest/index.
import { gunzipSync, gzipSync } from 'node:zlib';
import { encodeTarHeader, padding } from '../image/tar-writer.js';
import { NydusError } from '../util/errors.js';
import {
  ANNO_NYDUS_BLOB,
  ANNO_NYDUS_BOOTSTRAP,
  ANNO_NYDUS_FS_VERSION,
  MT_DOCKER_CONFIG,
  MT_DOCKER_LAYER_GZIP,
  MT_DOCKER_MANIFEST,
  MT_NYDUS_BLOB,
  MT_OCI_CONFIG,
  MT_OCI_INDEX,
  MT_OCI_LAYER_GZIP,
  MT_OCI_MANIFEST,
  NYDUS_OS_FEATURE,
  type Descriptor,
  type ImageConfig,
  type Index,
  type Manifest,
} from './media-types.js';
import { sha256Digest } from './registry.js';
import { TarParser } from '../format/tar-reader.js';

export const BOOTSTRAP_PATH = 'image/image.boot';

export interface BootstrapLayer {
  gz: Buffer;
  digest: string;
  diffId: string;
}

/** Deterministic (mtime 0, root-owned) so equal bootstraps give equal layer digests. */
export function makeBootstrapLayer(bootstrap: Uint8Array): BootstrapLayer {
  const base = { uid: 0, gid: 0, mtime: 0, mtimeNsec: 0 };
  const dir = encodeTarHeader({ path: Buffer.from('image'), type: 'dir', mode: 0o755, size: 0, ...base });
  const file = encodeTarHeader({ path: Buffer.from(BOOTSTRAP_PATH), type: 'file', mode: 0o444, size: bootstrap.length, ...base });
  const tar = Buffer.concat([dir, file, bootstrap, Buffer.alloc(padding(bootstrap.length)), Buffer.alloc(1024)]);
  const gz = gzipSync(tar, { level: 6 });
  return { gz, digest: sha256Digest(gz), diffId: sha256Digest(tar) };
}

/** Pulls image/image.boot out of a bootstrap layer (gzip or plain tar). */
export function extractBootstrap(layer: Buffer): Buffer {
  const tar = layer[0] === 0x1f && layer[1] === 0x8b ? gunzipSync(layer) : layer;
  let want = false;
  const parts: Buffer[] = [];
  let found = false;
  const p = new TarParser({
    entry: (h) => {
      want = h.type === 'file' && h.path.toString('utf8').replace(/^\.?\//, '') === BOOTSTRAP_PATH;
      if (want) found = true;
    },
    data: (c) => {
      if (want) parts.push(Buffer.from(c));
    },
  });
  p.write(tar);
  p.end();
  if (!found) throw new NydusError('ERR_FORMAT_INVALID', `bootstrap layer has no ${BOOTSTRAP_PATH}`);
  return Buffer.concat(parts);
}

export function blobDescriptor(digest: string, size: number): Descriptor {
  return { mediaType: MT_NYDUS_BLOB, digest, size, annotations: { [ANNO_NYDUS_BLOB]: 'true' } };
}

export function bootstrapDescriptor(l: BootstrapLayer, fsVersion: 5 | 6, oci: boolean, extra: Record<string, string> = {}): Descriptor {
  return {
    mediaType: oci ? MT_OCI_LAYER_GZIP : MT_DOCKER_LAYER_GZIP,
    digest: l.digest,
    size: l.gz.length,
    annotations: { [ANNO_NYDUS_BOOTSTRAP]: 'true', [ANNO_NYDUS_FS_VERSION]: String(fsVersion), ...extra },
  };
}

export const NYDUS_HISTORY = { created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' };

/** Source config with diff_ids rewritten (blob layers are stored uncompressed: diff id = digest). */
export function nydusConfig(src: ImageConfig, blobDigests: string[], bootstrapDiffId: string, externalBackend: boolean): ImageConfig {
  const cfg: ImageConfig = JSON.parse(JSON.stringify(src)) as ImageConfig;
  cfg.rootfs = { type: 'layers', diff_ids: [...(externalBackend ? [] : blobDigests), bootstrapDiffId] };
  const history = externalBackend ? [] : [...(cfg.history ?? [])];
  history.push({ ...NYDUS_HISTORY });
  cfg.history = history;
  return cfg;
}

export function nydusManifest(oci: boolean, config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): Manifest {
  const m: Manifest = { schemaVersion: 2, mediaType: oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST, config, layers };
  if (annotations && Object.keys(annotations).length) m.annotations = annotations;
  return m;
}

export function configDescriptor(oci: boolean, bytes: Buffer): Descriptor {
  return { mediaType: oci ? MT_OCI_CONFIG : MT_DOCKER_CONFIG, digest: sha256Digest(bytes), size: bytes.length };
}

/** Index entry of a converted platform manifest, marked with the nydus OS feature. */
export function nydusIndexEntry(d: Descriptor, platform: NonNullable<Descriptor['platform']>): Descriptor {
  const features = [...new Set([...(platform['os.features'] ?? []), NYDUS_OS_FEATURE])];
  return { ...d, platform: { ...platform, 'os.features': features } };
}

export function nydusIndex(mediaType: string, entries: Descriptor[]): Index {
  return { schemaVersion: 2, mediaType: mediaType || MT_OCI_INDEX, manifests: entries };
}

export function toJsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}
