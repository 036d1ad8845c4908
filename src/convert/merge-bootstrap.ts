// Merges per-layer bootstraps (lower → upper, OCI whiteouts) into the image's bootstrap, doing
// what `nydus-image merge --blob-digests` does for nydusify (spec §7.4): each layer's inline-meta
// blob gets its real id (the blob layer's sha256), INLINED_FS_META is cleared, and the blob table
// keeps only blobs some chunk references, numbered by first reference in breadth-first order.
import { mergeLayers } from '../builder/merge.js';
import { encodeBootstrapV5 } from '../builder/writer/v5.js';
import { encodeBootstrapV6 } from '../builder/writer/v6.js';
import { isDir, isReg, type ImageModel, type TreeNode } from '../format/image-model.js';
import { BlobFeatures } from '../format/constants.js';
import { detectRafsVersion, openBootstrap } from '../rafs/index.js';
import { treeFromRafs } from '../rafs/tree-from-rafs.js';
import { NydusError } from '../util/errors.js';

/** Upstream's placeholder id in a bootstrap embedded in its own blob. */
export const PLACEHOLDER_BLOB_ID = 'x'.repeat(64);

export interface LayerBootstrap {
  bootstrap: Uint8Array;
  /** The builder's model of this bootstrap, when at hand (else the bootstrap is parsed). */
  model?: ImageModel | undefined;
  /** sha256 hex of the layer's nydus blob. */
  blobId: string;
  /** Directories the layer tar names itself ('' = root); others were made up by the builder. */
  explicitDirs?: ReadonlySet<string> | undefined;
}

export interface MergedBootstrap {
  bytes: Uint8Array;
  /** Blob ids in blob-table order (merge `--output-json` `blobs`). */
  blobs: string[];
  fsVersion: 5 | 6;
}

function layerModel(l: LayerBootstrap, i: number): { model: ImageModel; version: 5 | 6 } {
  let model: ImageModel;
  let version: 5 | 6;
  if (l.model) {
    // Shallow copy with fresh blob entries: a layer shared by two platforms is merged twice.
    model = { ...l.model, root: structuredClone(l.model.root), blobs: l.model.blobs.map((b) => ({ ...b })) };
    version = openBootstrapVersion(l.bootstrap);
  } else {
    const sb = openBootstrap(l.bootstrap, `layer ${i + 1} bootstrap`);
    model = treeFromRafs(sb);
    version = sb.meta.version;
  }
  let own = model.blobs.filter((b) => b.blobId === PLACEHOLDER_BLOB_ID || (b.features & BlobFeatures.INLINED_FS_META) !== 0);
  // A layer built without a blob (no file data) has none of its own; otherwise a builder that
  // wrote the real id instead of the placeholder still produced exactly one blob.
  if (!l.blobId) own = [];
  else if (own.length === 0 && model.blobs.length === 1) own = model.blobs;
  if (own.length > 1) throw new NydusError('ERR_BUILD', `layer ${i + 1} bootstrap has ${own.length} inline-meta blobs`);
  for (const b of own) {
    b.blobId = l.blobId;
    b.features = (b.features & ~BlobFeatures.INLINED_FS_META) >>> 0;
  }
  return { model, version };
}

function openBootstrapVersion(b: Uint8Array): 5 | 6 {
  const v = detectRafsVersion(b);
  if (!v) throw new NydusError('ERR_FORMAT_BAD_MAGIC', 'layer bootstrap is not RAFS');
  return v;
}

/** Keeps referenced blobs only, in order of first reference walking the tree breadth-first. */
function pruneBlobs(m: ImageModel): void {
  const order: number[] = [];
  const newIndex = new Map<number, number>();
  const queue: TreeNode[] = [m.root];
  for (let q = 0; q < queue.length; q++) {
    const n = queue[q]!;
    if (isReg(n.mode)) {
      for (const c of n.chunks) {
        if (!newIndex.has(c.blobIndex)) {
          newIndex.set(c.blobIndex, order.length);
          order.push(c.blobIndex);
        }
      }
    }
    if (isDir(n.mode)) queue.push(...n.children);
  }
  const blobs = order.map((old, i) => ({ ...m.blobs[old]!, blobIndex: i }));
  const seen = new Set<TreeNode>();
  for (const n of queue) {
    if (!isReg(n.mode) || seen.has(n)) continue;
    seen.add(n);
    n.chunks = n.chunks.map((c) => ({ ...c, blobIndex: newIndex.get(c.blobIndex)! }));
  }
  m.blobs = blobs;
}

function existingPaths(root: TreeNode, patterns: string[]): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const parts = p.split('/').filter(Boolean);
    let n: TreeNode | undefined = root;
    for (const part of parts) n = n && isDir(n.mode) ? n.children.find((c) => Buffer.from(c.name).toString('utf8') === part) : undefined;
    if (n) out.push(parts.length ? `/${parts.join('/')}` : '/');
  }
  return out;
}

/**
 * A layer that only names `a/f` still carries a directory `a`, which the builder made up with
 * default attributes (0755, root). Overlaying it would clobber the lower layer's `a`; OCI appliers
 * (and umoci) leave the lower attributes alone, so copy them into the made-up node first.
 */
function keepLowerDirAttrs(models: ImageModel[], layers: LayerBootstrap[]): void {
  const seen = new Map<string, TreeNode>();
  for (const [i, m] of models.entries()) {
    const explicit = layers[i]!.explicitDirs;
    const visit = (n: TreeNode, path: string): void => {
      if (!isDir(n.mode)) return;
      const lower = seen.get(path);
      if (explicit && !explicit.has(path) && lower) {
        n.mode = lower.mode;
        n.uid = lower.uid;
        n.gid = lower.gid;
        n.mtime = lower.mtime;
        n.mtimeNsec = lower.mtimeNsec;
        n.xattrs = lower.xattrs;
      }
      seen.set(path, n);
      for (const c of n.children) visit(c, path ? `${path}/${Buffer.from(c.name).toString('utf8')}` : Buffer.from(c.name).toString('utf8'));
    };
    visit(m.root, '');
  }
}

export async function mergeLayerBootstraps(layers: LayerBootstrap[], prefetchPatterns: string[] = []): Promise<MergedBootstrap> {
  if (!layers.length) throw new NydusError('ERR_BUILD', 'image has no layers to merge');
  const loaded = layers.map(layerModel);
  const version = loaded[0]!.version;
  const bad = loaded.findIndex((l) => l.version !== version);
  if (bad >= 0) throw new NydusError('ERR_BUILD', `layer ${bad + 1} is RAFS v${loaded[bad]!.version}, layer 1 is v${version}`);
  keepLowerDirAttrs(loaded.map((l) => l.model), layers);
  const merged = mergeLayers(loaded.map((l) => l.model), 'oci');
  pruneBlobs(merged);
  merged.prefetchPaths = existingPaths(merged.root, prefetchPatterns);
  const bytes = version === 6 ? encodeBootstrapV6(merged) : encodeBootstrapV5(merged);
  return { bytes, blobs: merged.blobs.map((b) => b.blobId), fsVersion: version };
}
