// GET /api/v1/metrics/inflight lists the reads waiting on the backend (upstream's FuseInflight
// records: inode, opcode, unique, timestamp_secs), so a hang is visible from outside; empty again
// (204) once they finish. Real nydusd, registry backend served by a blob server that stalls.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startFaultServer } from '../helpers/http-faults.js';
import { buildImage, hashTree, mountsUnder, nydusdSkip, Nydusd, readHash, registryBackend, v1Config, waitFor } from '../remote/harness.js';
import { makeSmallTree } from '../remote/tree.js';
import { curl } from './harness.js';

const skip = nydusdSkip();

describe('metrics/inflight', { skip }, () => {
  it('shows a read stalled at the backend, and nothing once it is over', { timeout: 90_000 }, async () => {
    const root = mkdtempSync('/tmp/api-inflight-');
    const d = new Nydusd(root, join(root, 'mnt'));
    const origin = await startFaultServer();
    try {
      makeSmallTree(join(root, 'src'));
      const img = buildImage(join(root, 'src'), join(root, 'img'));
      origin.blobs.set(img.blobId, readFileSync(img.blobPath));
      const want = hashTree(join(root, 'src'));
      const cfg = { ...v1Config({ backend: registryBackend(`127.0.0.1:${origin.port}`, 'r', { timeout: 3, connect_timeout: 3, retry_limit: 0 }), workDir: join(root, 'cache') }), amplify_io: 0 };
      await d.start(cfg, img.boot);
      assert.equal((await curl(d.apisock, 'GET', '/api/v1/metrics/inflight')).status, 204, 'nothing in flight at rest');
      const rel = 'bin/big';
      const ino = statSync(join(d.mnt, rel)).ino;
      origin.faults.push(...Array.from({ length: 20 }, () => ({ kind: 'stall' as const })));
      const pending = readHash(join(d.mnt, rel), 60_000);
      const t0 = Math.floor(Date.now() / 1000);
      const rec = await waitFor('the stalled read to show in /metrics/inflight', 10_000, async () => {
        const r = await curl(d.apisock, 'GET', '/api/v1/metrics/inflight');
        const list = r.status === 200 ? (r.json as Array<{ inode: number; opcode: number; unique: number; timestamp_secs: number }>) : [];
        return list.find((x) => x.inode === ino);
      });
      assert.equal(rec.opcode, 15, 'FUSE_READ');
      assert.ok(rec.unique > 0);
      assert.ok(Math.abs(rec.timestamp_secs - t0) <= 5, `timestamp ${rec.timestamp_secs} vs ${t0}`);
      origin.faults.length = 0;
      const p = await pending;
      assert.ok(!p.timedOut, 'the read ends (EIO or data) once the stall times out');
      if (p.hash !== undefined) assert.equal(`f:${p.hash}`, want.get(rel));
      await waitFor('inflight to drain', 10_000, async () => (await curl(d.apisock, 'GET', '/api/v1/metrics/inflight')).status === 204);
    } finally {
      await d.stop();
      await origin.close();
      if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
    }
  });
});
