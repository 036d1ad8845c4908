// nydus-image check BOOTSTRAP [-D BLOB_DIR | -b BLOB] [-v] [-J OUTPUT_JSON]
import { parseFlags } from '../main.js';
import { checkImage, blobFeatureNames } from '../../image/check.js';
import { loadBootstrap, writeJson, NYDUS_TS_VERSION } from './load.js';

export const usage = 'nydus-image check [-B] BOOTSTRAP [-D BLOB_DIR | -b BLOB] [-v] [-J OUTPUT_JSON]';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    bootstrap: { type: 'string', short: 'B' },
    'blob-dir': { type: 'string', short: 'D' },
    blob: { type: 'string', short: 'b' },
    verbose: { type: 'boolean', short: 'v' },
    'output-json': { type: 'string', short: 'J' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  });
  const path = values.bootstrap ?? positionals[0];
  const t0 = performance.now();
  const sb = loadBootstrap(path);
  const src = values['blob-dir'] || values.blob ? { ...(values['blob-dir'] ? { blobDir: values['blob-dir'] } : {}), ...(values.blob ? { blobPath: values.blob } : {}) } : undefined;
  const res = checkImage(sb, src, values.verbose ? (l) => console.log(l) : undefined);
  console.log(`RAFS v${sb.meta.version} filesystem: ${res.inodes} inodes, ${res.files} files, chunk size 0x${sb.meta.chunkSize.toString(16)}, ${sb.meta.compressor}/${sb.meta.digester}`);
  for (const b of sb.blobs) {
    console.log(`${b.blobIndex}: ${b.blobId}, compressed size 0x${b.compressedSize.toString(16)}, uncompressed size 0x${b.uncompressedSize.toString(16)}, chunk size 0x${b.chunkSize.toString(16)}, chunk count ${b.chunkCount}, features: ${blobFeatureNames(b.features).join(' ')}`);
  }
  if (src) console.log(`verified ${res.chunksVerified} chunks (${res.bytesVerified} bytes)`);
  if (values['output-json']) {
    await writeJson(
      values['output-json'],
      {
        version: NYDUS_TS_VERSION,
        bootstrap: path,
        blobs: sb.blobs.map((b) => b.blobId),
        external_bootstrap: '',
        external_blobs: [],
        trace: { consumed_time: { total_check: (performance.now() - t0) / 1000 }, registered_events: {} },
        fs_version: String(sb.meta.version),
        compressor: sb.meta.compressor,
      },
      false,
    );
  }
  return 0;
}
