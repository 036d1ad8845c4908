// Regression: nydusd hung on its first cold read under Node 22/24. The main thread loaded the BLAKE3
// addon lazily to verify a chunk; the addon's loader called process.report.getReport(), which waits for
// every worker thread, and the FUSE workers were blocked in read(2). preloadNativeAddons() must leave
// nothing for the read path to load later.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

// A fresh process (this one may have loaded the addons already): preload, park a worker in a blocking
// read(2) as a FUSE worker would be, forbid reports, then use every codec and digest on the main thread.
const CHILD = `
import { Worker } from 'node:worker_threads';
const { preloadNativeAddons } = await import(${JSON.stringify(new URL('./native.js', import.meta.url).href)});
const { compressChunk, decompress } = await import(${JSON.stringify(new URL('./compress.js', import.meta.url).href)});
const { digest } = await import(${JSON.stringify(new URL('./digest.js', import.meta.url).href)});
preloadNativeAddons();
const w = new Worker("require('worker_threads').parentPort.postMessage(0); require('fs').readSync(0, Buffer.alloc(1));", { eval: true, execArgv: [] });
await new Promise((r) => w.once('message', r));
process.report.getReport = () => { throw new Error('process.report.getReport() called after preload'); };
const data = new TextEncoder().encode('nydus '.repeat(1000));
for (const algo of ['zstd', 'lz4_block']) {
  const c = compressChunk(data, algo);
  if (decompress(c.data, algo, data.length).length !== data.length) throw new Error(algo);
}
digest(data, 'blake3');
// No process.exit(): it would wait for the blocked worker. The parent kills this process.
process.stdout.write('ok');
`;

test('preloadNativeAddons() leaves no addon load (and no process report) for a thread-blocked read path', async () => {
  // stdin stays an open, silent pipe: the worker's read(2) on it never returns.
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out === 'ok') child.kill('SIGKILL');
  });
  await exited;
  clearTimeout(timer);
  assert.equal(out, 'ok', `child did not finish in 30 s: ${err.slice(-2000)}`);
});
