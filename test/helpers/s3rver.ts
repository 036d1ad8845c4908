// Starts s3rver (npm devDependency) as a child process on a free 127.0.0.1 port with one bucket,
// behind an independent SigV4-verifying proxy (sigv4-verify.ts, its own child process): s3rver does
// not verify signatures (dependencies.md §4), the proxy does, so a signing bug fails the S3 tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { freePort } from './registry.js';

export interface S3rverHandle {
  /** The verifying proxy: every request must be correctly signed with the credentials below. */
  endpoint: string;
  /** s3rver itself (no signature check), for seeding and listing from the test. */
  rawEndpoint: string;
  /** Requests the proxy verified / rejected, and why the last one was rejected. */
  stats(): Promise<{ verified: number; rejected: number; lastRejection: string }>;
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
  const rawEndpoint = `127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/s3rver/bin/s3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket], { stdio: 'ignore' });
  const verifier = spawn(process.execPath, [join(REPO_ROOT, 'dist/test/helpers/sigv4-verify.js'), rawEndpoint, 'S3RVER'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const verifierPort = new Promise<number>((resolve, reject) => {
    let out = '';
    verifier.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.split('\n')[0]));
    });
    verifier.once('exit', (code) => reject(new Error(`sigv4-verify exited (${code})`)));
  });
  const stopChild = async (c: typeof child): Promise<void> => {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  };
  const stop = async (): Promise<void> => {
    await Promise.all([stopChild(child), stopChild(verifier)]);
    rmSync(dir, { recursive: true, force: true });
  };
  // A generous start-up deadline: node start-up on a loaded 2-core machine takes seconds.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://${rawEndpoint}/${bucket}`, { method: 'HEAD' }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error('s3rver did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const endpoint = `127.0.0.1:${await verifierPort.catch(async (e: Error) => {
    await stop();
    throw e;
  })}`;
  return {
    endpoint,
    rawEndpoint,
    stats: async () => (await fetch(`http://${endpoint}/__sigv4/stats`)).json() as Promise<{ verified: number; rejected: number; lastRejection: string }>,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    put: async (key, data) => {
      const r = await fetch(`http://${rawEndpoint}/${bucket}/${key}`, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`s3rver PUT ${key}: HTTP ${r.status}`);
    },
    close: stop,
  };
}
