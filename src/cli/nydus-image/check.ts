// nydus-image check BOOTSTRAP [-D BLOB_DIR | -b BLOB] [-v] [-J OUTPUT_JSON]
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { checkImage, blobFeatureNames } from '../../image/check.js';
import { loadBootstrap, writeJson, NYDUS_TS_VERSION, BOOTSTRAP_FLAG } from './load.js';

export const SPEC = {
  name: 'nydus-image check',
  summary: 'Validate every structure of a bootstrap and, with blobs, every chunk digest',
  args: ['[BOOTSTRAP]'],
  flags: {
    bootstrap: BOOTSTRAP_FLAG,
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'directory of blobs named by id: also verify every chunk' },
    blob: { short: 'b', arg: 'FILE', desc: 'one blob file: also verify every chunk' },
    verbose: { short: 'v', desc: 'print every inode' },
    'output-json': { short: 'J', arg: 'FILE', desc: 'write a JSON summary to FILE' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values, positionals } = p;
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
