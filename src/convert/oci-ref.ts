// `nydusify convert --oci-ref`: each gzip layer stays as it is in the registry; the converter only
// builds its bootstrap and ref blob (CI + zran contexts, builder/zran.ts) and pushes the ref blobs
// and the merged bootstrap. Manifest shape as upstream's converter with OCIRef: one nydus blob
// layer per ref blob, annotated `containerd.io/snapshot/nydus-ref: <original layer digest>`, then
// the bootstrap layer; the bootstrap's blob table names the original layers (sha256 hex), which
// must be readable from the target repository (cross-repository mount on the same registry).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ZranBuildOptions } from '../builder/zran.js';
import { NydusError } from '../util/errors.js';
import type { BuildParams } from './builder-cli.js';
import type { LayerCompression } from './media-types.js';
import { checkDigest } from './reference.js';
import { downloadTo } from './download.js';
import type { ZranWorkerResult } from './zran-worker.js';

/** Runs one layer's zran build in a worker thread (CPU-bound: inflate, tar, digests). */
function buildInWorker(o: ZranBuildOptions): Promise<ZranWorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./zran-worker.js', import.meta.url), { workerData: o });
    let done = false;
    w.once('message', (m: { ok?: ZranWorkerResult; error?: { message: string; code: NydusError['code'] } }) => {
      done = true;
      if (m.ok) resolve(m.ok);
      else reject(new NydusError(m.error!.code, m.error!.message));
    });
    w.once('error', (e) => {
      done = true;
      reject(e);
    });
    w.once('exit', (code) => {
      if (!done) reject(new NydusError('ERR_BUILD', `zran worker exited with code ${code}`));
    });
  });
}

/** The annotation upstream (nydus-snapshotter label.NydusRefLayer) puts on a ref blob layer. */
export const ANNO_NYDUS_REF_LAYER = 'containerd.io/snapshot/nydus-ref';

export interface RefLayerInput {
  index: number;
  digest: string;
  size: number;
  compression: LayerCompression;
  open: () => Promise<NodeJS.ReadableStream>;
}

export interface RefLayerResult {
  sourceDigest: string;
  sourceSize: number;
  /** The ref blob (blob meta of the layer): pushed as this layer's nydus blob. */
  refBlob: { path: string; digest: string; size: number };
  /** Hex digest of the original layer = the data blob id in the bootstrap. */
  layerId: string;
  /** Chunks of the layer (0: no file data, no blob in the bootstrap). */
  chunks: number;
  bootstrap: Uint8Array;
  pullMs: number;
  convertMs: number;
}

export async function convertRefLayer(input: RefLayerInput, workDir: string, params: BuildParams): Promise<RefLayerResult> {
  const what = `layer ${input.index + 1} (${input.digest})`;
  if (input.compression !== 'gzip') throw new NydusError('ERR_FORMAT_UNSUPPORTED', `${what}: --oci-ref needs gzip layers, this one is ${input.compression}`);
  if (params.fsVersion !== 6) throw new NydusError('ERR_FORMAT_UNSUPPORTED', '--oci-ref requires --fs-version 6');
  const { hex } = checkDigest(input.digest, what);
  await mkdir(workDir, { recursive: true });
  const path = join(workDir, `ref-layer-${hex}`);
  const t0 = Date.now();
  try {
    // The layer is read twice (download, then one inflate pass): the file stays on local disk.
    const size = await downloadTo(await input.open(), path, input.digest);
    const t1 = Date.now();
    const r = await buildInWorker({ source: path, name: what, chunkSize: params.chunkSize, digester: 'blake3', explicitUidGid: true, whiteoutSpec: 'oci', blobId: hex });
    const refPath = join(workDir, `ref-blob-${r.metaBlobId}`);
    await writeFile(refPath, r.metaBlob);
    return {
      sourceDigest: input.digest,
      sourceSize: size,
      refBlob: { path: refPath, digest: `sha256:${r.metaBlobId}`, size: r.metaBlob.length },
      layerId: hex,
      chunks: r.chunks,
      bootstrap: r.bootstrap,
      pullMs: t1 - t0,
      convertMs: Date.now() - t1,
    };
  } finally {
    await rm(path, { force: true });
  }
}
