// OCI / docker media types and the nydus annotations of a converted image (upstream-features §4.6).
export const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MT_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MT_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MT_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MT_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MT_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MT_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const MT_NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';

export const ANNO_NYDUS_BLOB = 'containerd.io/snapshot/nydus-blob';
export const ANNO_NYDUS_BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';
export const ANNO_NYDUS_FS_VERSION = 'containerd.io/snapshot/nydus-fs-version';
export const ANNO_NYDUS_REF_BLOB_IDS = 'containerd.io/snapshot/nydus-reference-blob-ids';
export const NYDUS_OS_FEATURE = 'nydus.remoteimage.v1';
/** nydus-snapshotter's ManifestArtifactTypeNydus: marks the nydus manifest next to OCI ones. */
export const NYDUS_MANIFEST_ARTIFACT_TYPE = 'application/vnd.nydus.image.manifest.v1+json';
// Manifest annotations upstream's converter (acceleration-service nydus driver) writes.
export const ANNO_NYDUS_SOURCE_DIGEST = 'containerd.io/snapshot/nydus-source-digest';
export const ANNO_NYDUS_SOURCE_REFERENCE = 'containerd.io/snapshot/nydus-source-reference';
export const ANNO_NYDUS_BUILDER_VERSION = 'containerd.io/snapshot/nydus-builder-version';

export const MANIFEST_ACCEPT = [MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST];

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image config fields we touch; everything else is carried through untouched. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs: { type: string; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  [k: string]: unknown;
}

export const isIndexType = (mt: string | undefined): boolean => mt === MT_OCI_INDEX || mt === MT_DOCKER_LIST;
export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Compression of a source layer from its media type, or undefined when we cannot convert it. */
export function layerCompression(mt: string): LayerCompression | undefined {
  switch (mt) {
    case MT_OCI_LAYER:
    case MT_DOCKER_LAYER:
      return 'none';
    case MT_OCI_LAYER_GZIP:
    case MT_DOCKER_LAYER_GZIP:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
      return 'gzip';
    case MT_OCI_LAYER_ZSTD:
      return 'zstd';
    default:
      return undefined;
  }
}
