// Overlays per-layer image models (lower → upper) into one, applying OCI or overlayfs whiteouts
// (upstream `nydus-image merge`, upstream-features §1.5/§1.6), so no runtime overlay is needed.
import type { BlobInfo } from '../format/blob-info.js';
import { NydusError } from '../util/errors.js';
import { compareNames, isDir, S_IFCHR, S_IFMT, type ImageModel, type TreeNode } from '../format/image-model.js';
import { OCISPEC_WHITEOUT_OPAQUE, OCISPEC_WHITEOUT_PREFIX, OVERLAYFS_WHITEOUT_OPAQUE, removeOpaqueXattr, type WhiteoutSpec } from './source/whiteout.js';

export class MergeError extends NydusError {
  constructor(message: string) {
    super('ERR_BUILD', message);
  }
}

function nameStr(n: Uint8Array): string {
  return Buffer.from(n).toString('latin1');
}

function isOverlayWhiteout(n: TreeNode): boolean {
  return (n.mode & S_IFMT) === S_IFCHR && n.rdev === 0;
}

function isOverlayOpaque(n: TreeNode): boolean {
  return n.xattrs.some(([k, v]) => nameStr(k) === OVERLAYFS_WHITEOUT_OPAQUE && nameStr(v) === 'y');
}

/** Copies a layer's tree with blob indexes mapped through `remap` and hardlink keys made per-layer, so its nodes can live in the merged tree. */
function relocate(n: TreeNode, remap: readonly number[], layer: number): TreeNode {
  return {
    ...n,
    xattrs: [...n.xattrs],
    chunks: n.chunks.map((c) => ({ ...c, blobIndex: remap[c.blobIndex] ?? c.blobIndex })),
    children: n.children.map((c) => relocate(c, remap, layer)),
    ...(n.hardlinkKey !== undefined ? { hardlinkKey: `L${layer}:${n.hardlinkKey}` } : {}),
  };
}

/** Removes whiteout markers from a subtree that has no lower layer underneath (a fresh directory). */
function dropMarkers(n: TreeNode, spec: WhiteoutSpec): void {
  if (spec === 'none') return;
  n.children = n.children.filter((c) => {
    const s = nameStr(c.name);
    if (spec === 'oci') return !s.startsWith(OCISPEC_WHITEOUT_PREFIX);
    return !isOverlayWhiteout(c);
  });
  if (spec === 'overlayfs') removeOpaqueXattr(n);
  for (const c of n.children) if (isDir(c.mode)) dropMarkers(c, spec);
}

/** Applies upper directory `up` onto merged directory `dst` in place. */
function applyDir(dst: TreeNode, up: TreeNode, spec: WhiteoutSpec): void {
  const byName = new Map<string, TreeNode>(dst.children.map((c) => [nameStr(c.name), c]));
  const opaque =
    (spec === 'oci' && up.children.some((c) => nameStr(c.name) === OCISPEC_WHITEOUT_OPAQUE)) ||
    (spec === 'overlayfs' && isOverlayOpaque(up));
  if (opaque) byName.clear();
  // Whiteouts hide lower entries only: apply them before the layer's own entries.
  for (const c of up.children) {
    const s = nameStr(c.name);
    if (spec === 'oci' && s.startsWith(OCISPEC_WHITEOUT_PREFIX) && s !== OCISPEC_WHITEOUT_OPAQUE) byName.delete(s.slice(OCISPEC_WHITEOUT_PREFIX.length));
    else if (spec === 'overlayfs' && isOverlayWhiteout(c)) byName.delete(s);
  }
  for (const c of up.children) {
    const s = nameStr(c.name);
    if (spec === 'oci' && s.startsWith(OCISPEC_WHITEOUT_PREFIX)) continue;
    if (spec === 'overlayfs' && isOverlayWhiteout(c)) continue;
    const lower = byName.get(s);
    if (lower && isDir(lower.mode) && isDir(c.mode)) {
      // The upper directory's attributes win; its contents overlay the lower ones.
      const merged: TreeNode = { ...c, children: lower.children };
      applyDir(merged, c, spec);
      byName.set(s, merged);
    } else {
      if (isDir(c.mode)) dropMarkers(c, spec);
      byName.set(s, c);
    }
  }
  const { children: _ignored, ...attrs } = up;
  Object.assign(dst, attrs);
  if (spec === 'overlayfs') removeOpaqueXattr(dst);
  dst.children = [...byName.values()].sort((a, b) => compareNames(a.name, b.name));
}

/** Merges layers (lowest first). All layers must share chunk size, compressor and digester. */
export function mergeLayers(layers: ImageModel[], spec: WhiteoutSpec): ImageModel {
  const first = layers[0];
  if (!first) throw new MergeError('merge needs at least one source bootstrap');
  for (const [i, l] of layers.entries()) {
    if (l.chunkSize !== first.chunkSize || l.digester !== first.digester) {
      throw new MergeError(`source ${i + 1} is inconsistent with source 1: chunk size ${l.chunkSize}/${first.chunkSize}, digester ${l.digester}/${first.digester}`);
    }
  }
  const blobs: BlobInfo[] = [];
  const blobIndexById = new Map<string, number>();
  let root: TreeNode | undefined;
  for (const [i, layer] of layers.entries()) {
    // Layers may share blobs (e.g. a parent's blobs repeated in a child's table): keep one entry per id.
    const remap = layer.blobs.map((b) => {
      let idx = blobIndexById.get(b.blobId);
      if (idx === undefined) {
        idx = blobs.length;
        blobIndexById.set(b.blobId, idx);
        blobs.push({ ...b, blobIndex: idx });
      }
      return idx;
    });
    const rel = relocate(layer.root, remap, i);
    if (!root) {
      root = rel;
      dropMarkers(root, spec);
    } else applyDir(root, rel, spec);
  }
  return { ...first, root: root!, blobs, prefetchPaths: [], extraChunks: [] };
}
