// `nydusify build`: directory → `<name>.meta` + blob renamed to its id + `output.json` (seed 002:
// `nydus-image create --bootstrap O/N.meta --whiteout-spec oci --output-json O/output.json
// --blob O/N.blob …`), optionally pushed to a localfs or S3 backend (`meta_prefix`, `blob_prefix`).
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createImage, createOutputJson } from '../builder/index.js';
import { signV4 } from '../storage/backend/sigv4.js';
import { NydusError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { buildDirectory, type BuildParams } from './builder-cli.js';
import { HttpClient } from '../storage/backend/http.js';
import { sha256File } from './layer.js';

const log = logger('build');

export interface BuildOptions {
  name: string;
  sourceDir: string;
  outputDir: string;
  params: BuildParams;
  backend?: { type: 'localfs' | 's3' | 'oss'; config: Record<string, unknown> } | undefined;
}

export interface BuildResult {
  bootstrap: string;
  blobId: string | undefined;
  blobPath: string | undefined;
  /** Where the push put things (backend URLs or paths). */
  pushed: string[];
}

async function pushS3(cfg: Record<string, unknown>, key: string, file: string): Promise<string> {
  const str = (k: string): string => {
    const v = cfg[k];
    if (typeof v !== 'string' || !v) throw new UsageError(`s3 backend config needs "${k}"`);
    return v;
  };
  const bucket = str('bucket_name');
  const scheme = typeof cfg.scheme === 'string' ? cfg.scheme : 'https';
  const endpoint = typeof cfg.endpoint === 'string' && cfg.endpoint ? cfg.endpoint : `s3.${str('region')}.amazonaws.com`;
  // Path-style addressing works with every S3 implementation (virtual hosts need DNS).
  const url = new URL(`${scheme}://${endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
  const size = (await stat(file)).size;
  const signed = signV4({
    method: 'PUT',
    url,
    headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
    payloadHash: await sha256File(file),
    region: typeof cfg.region === 'string' && cfg.region ? cfg.region : 'us-east-1',
    service: 's3',
    accessKeyId: str('access_key_id'),
    secretAccessKey: str('access_key_secret'),
    contentSha256Header: true,
  });
  const client = new HttpClient({ backend: 's3', connectTimeoutMs: 30_000, timeoutMs: 120_000, skipVerify: false });
  let res;
  let body: Buffer;
  try {
    res = await client.request({ method: 'PUT', url, headers: signed.headers, body: () => createReadStream(file, { highWaterMark: 1 << 20 }), deadline: false });
    body = await res.readAll(1 << 20);
  } finally {
    client.close();
  }
  if (res.status !== 200) throw new NydusError('ERR_BACKEND_HTTP_STATUS', `s3 PUT ${bucket}/${key}: HTTP ${res.status} ${body.toString('utf8').slice(0, 200)}`);
  return url.href;
}

async function push(b: NonNullable<BuildOptions['backend']>, key: string, file: string): Promise<string> {
  if (b.type === 'localfs') {
    const dir = b.config.dir;
    if (typeof dir !== 'string' || !dir) throw new UsageError('localfs backend config needs "dir"');
    const dst = join(dir, key);
    await mkdir(join(dst, '..'), { recursive: true });
    await copyFile(file, dst);
    return dst;
  }
  if (b.type === 's3') return pushS3(b.config, key, file);
  throw new UsageError('--backend-type oss is not supported by build yet (s3 and localfs are)');
}

export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  if (!/^[\w.-]+$/.test(o.name)) throw new UsageError(`invalid --name '${o.name}': use letters, digits, '.', '_' and '-'`);
  await mkdir(o.outputDir, { recursive: true });
  const bootstrap = join(o.outputDir, `${o.name}.meta`);
  const blob = join(o.outputDir, `${o.name}.blob`);
  const outputJson = join(o.outputDir, 'output.json');
  const p = o.params;
  if (p.nydusImage.length) await buildDirectory(o.sourceDir, bootstrap, blob, outputJson, p);
  else {
    const r = await createImage({ source: o.sourceDir, sourceType: 'dir-rafs', bootstrap, blob, whiteoutSpec: 'oci', fsVersion: p.fsVersion, compressor: p.compressor as 'zstd', chunkSize: p.chunkSize, ...(p.batchSize ? { batchSize: p.batchSize } : {}), ...(p.chunkDictPath ? { chunkDict: p.chunkDictPath } : {}) });
    await writeFile(outputJson, JSON.stringify(createOutputJson(r), null, 2) + '\n');
  }
  const out = JSON.parse(await readFile(outputJson, 'utf8')) as { blobs?: string[] };
  // The blob this build wrote is the last table entry (a chunk dict's blobs come first).
  const blobId = out.blobs?.at(-1);
  let blobPath: string | undefined;
  if (blobId && (await stat(blob).then(() => true, () => false))) {
    blobPath = join(o.outputDir, blobId);
    log.info('rename blob file into sha256 csum');
    await rename(blob, blobPath);
  }
  const pushed: string[] = [];
  if (o.backend) {
    const blobPrefix = typeof o.backend.config.blob_prefix === 'string' ? o.backend.config.blob_prefix : '';
    const metaPrefix = typeof o.backend.config.meta_prefix === 'string' ? o.backend.config.meta_prefix : '';
    if (blobId && blobPath) pushed.push(await push(o.backend, `${blobPrefix}${blobId}`, blobPath));
    pushed.push(await push(o.backend, `${metaPrefix}${o.name}`, bootstrap));
  }
  return { bootstrap, blobId, blobPath, pushed };
}
