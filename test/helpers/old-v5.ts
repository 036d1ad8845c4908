// RAFS v5 bootstraps in the layout of older upstream builders (before the extended blob table):
// no extended blob table and every chunk record's `index` 0 (§4.6). Made by re-encoding a real
// bootstrap (an upstream fixture or one nydus-image built), so inodes, digests and chunk places are
// those of the real image; only the two old-layout traits change.
import { encodeBootstrapV5 } from '../../src/builder/writer/v5.js';
import type { TreeNode } from '../../src/format/image-model.js';
import { BlobFeatures } from '../../src/format/constants.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { treeFromRafs } from '../../src/rafs/tree-from-rafs.js';

export function toOldLayoutV5(bootstrap: Uint8Array): Uint8Array {
  const model = treeFromRafs(openBootstrap(bootstrap, 'bootstrap'));
  const stack: TreeNode[] = [model.root];
  while (stack.length) {
    const n = stack.pop()!;
    for (const c of n.chunks) c.index = 0;
    stack.push(...n.children);
  }
  for (const b of model.blobs) b.features = BlobFeatures._V5_NO_EXT_BLOB_TABLE;
  return encodeBootstrapV5(model, { recordOrder: 'index' });
}
