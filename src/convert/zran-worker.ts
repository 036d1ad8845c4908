// Worker thread for `nydusify convert --oci-ref`: one layer's zran build (inflate, tar, digests)
// off the main thread, so two layers use both cores. Answers the bootstrap and the ref blob.
import { parentPort, workerData } from 'node:worker_threads';
import { buildZranRef, type ZranBuildOptions } from '../builder/zran.js';
import { encodeBootstrapV6 } from '../builder/writer/v6.js';
import { NydusError } from '../util/errors.js';

export interface ZranWorkerResult {
  bootstrap: Uint8Array;
  metaBlob: Uint8Array;
  metaBlobId: string;
  chunks: number;
}

const o = workerData as ZranBuildOptions;
try {
  const r = await buildZranRef(o);
  const out: ZranWorkerResult = { bootstrap: encodeBootstrapV6(r.model), metaBlob: r.metaBlob, metaBlobId: r.metaBlobId, chunks: r.chunks };
  parentPort!.postMessage({ ok: out });
} catch (e) {
  parentPort!.postMessage({ error: { message: (e as Error).message, code: e instanceof NydusError ? e.code : 'ERR_BUILD' } });
}
