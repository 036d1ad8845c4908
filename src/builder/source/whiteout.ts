// Whiteout markers (upstream builder/src/core/overlay.rs, upstream-features §1.5): OCI `.wh.<name>`
// and `.wh..wh..opq`; overlayfs char device 0/0 and `trusted.overlay.opaque=y` on a directory.
import { S_IFCHR, S_IFMT, isDir, type TreeNode } from '../../format/image-model.js';

export type WhiteoutSpec = 'oci' | 'overlayfs' | 'none';
export type WhiteoutType = 'oci-removal' | 'oci-opaque' | 'overlayfs-removal' | 'overlayfs-opaque';

export const OCISPEC_WHITEOUT_PREFIX = '.wh.';
export const OCISPEC_WHITEOUT_OPAQUE = '.wh..wh..opq';
export const OVERLAYFS_WHITEOUT_OPAQUE = 'trusted.overlay.opaque';

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export function whiteoutType(n: TreeNode, spec: WhiteoutSpec): WhiteoutType | undefined {
  if (spec === 'oci') {
    const s = latin1(n.name);
    if (s === OCISPEC_WHITEOUT_OPAQUE) return 'oci-opaque';
    if (s.startsWith(OCISPEC_WHITEOUT_PREFIX)) return 'oci-removal';
  } else if (spec === 'overlayfs') {
    if ((n.mode & S_IFMT) === S_IFCHR && n.rdev === 0) return 'overlayfs-removal';
    if (isDir(n.mode) && n.xattrs.some(([k, v]) => latin1(k) === OVERLAYFS_WHITEOUT_OPAQUE && latin1(v) === 'y')) return 'overlayfs-opaque';
  }
  return undefined;
}

export function removeOpaqueXattr(n: TreeNode): void {
  n.xattrs = n.xattrs.filter(([k]) => latin1(k) !== OVERLAYFS_WHITEOUT_OPAQUE);
}

/**
 * Single-layer rules applied to a freshly built tree, as upstream does. `dropMarkers` (the
 * directory builder without a parent) removes whiteout entries; the tar builder keeps them for
 * a later merge. Both strip the overlayfs opaque xattr.
 */
export function applySingleLayerWhiteouts(root: TreeNode, spec: WhiteoutSpec, dropMarkers: boolean): void {
  if (spec === 'none') return;
  const walk = (d: TreeNode): void => {
    if (dropMarkers) d.children = d.children.filter((c) => {
      const t = whiteoutType(c, spec);
      return t === undefined || t === 'overlayfs-opaque';
    });
    for (const c of d.children) {
      // Only a final single-layer build drops the markers; otherwise a later merge (or the
      // parent overlay) needs the opaque xattr to hide the lower directory's entries.
      if (dropMarkers && whiteoutType(c, spec) === 'overlayfs-opaque') removeOpaqueXattr(c);
      if (isDir(c.mode)) walk(c);
    }
  };
  walk(root);
}
