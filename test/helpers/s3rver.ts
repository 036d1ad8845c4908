// Starts s3rver (npm devDependency) as a child process on a free 127.0.0.1 port with one bucket.
// s3rver does not verify SigV4 signatures (dependencies.md §4): use it for behaviour only.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { freePort } from './registry.js';

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  /** s3rver's fixed credentials. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Unsigned PUT (s3rver accepts it) to seed objects. */
  put(key: string, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

export async function startS3rver(bucket = 'nydus-blobs'): Promise<S3rverHandle> {
  const dir = mkdtempSync(join(tmpdir(), 's3rver-'));
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/s3rver/bin/s3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${endpoint}/${bucket}`, { method: 'HEAD' }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (i > 100 || child.exitCode !== null) {
      await stop();
      throw new Error('s3rver did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    endpoint,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    put: async (key, data) => {
      const r = await fetch(`http://${endpoint}/${bucket}/${key}`, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`s3rver PUT ${key}: HTTP ${r.status}`);
    },
    close: stop,
  };
}
