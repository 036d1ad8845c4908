// Acceptance (issue 6, item 1 + daemon states): the seed's curl commands verbatim against a daemon
// started without --bootstrap; two pseudo mounts served at once; umount of one; socket mode; daemon
// info without secrets; log level; PUT /daemon/exit unmounts and exits 0.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isFuseMounted, withTimeout } from '../../src/fuse/mount.js';
import { assertTree, curl, makeWorkspace, skipReason, startDaemon, stopDaemon, until, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();

type Info = { state: string; backend_collection: Record<string, { backend_type: string; mountpoint: string; config: unknown }> };

describe('pseudo mounts over the API (seed 001)', { skip }, () => {
  it('mounts, serves, umounts and exits as upstream does', { timeout: 300_000 }, async (t) => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('pseudo', 2);
      const ws = w;
      const [img1, img2] = ws.images as [typeof ws.images[0], typeof ws.images[0]];
      d = await startDaemon(ws);
      const sock = ws.sock;

      await t.test('states: INIT/READY before FUSE init, RUNNING after; the socket is 0600', () => {
        // Every state the daemon reported while starting is one of upstream's, in order, ending at RUNNING.
        const order = ['INIT', 'READY', 'RUNNING'];
        const idx = d!.statesSeen.map((s) => order.indexOf(s));
        assert.ok(idx.every((i, k) => i >= 0 && (k === 0 || i > idx[k - 1]!)), `states seen: ${d!.statesSeen.join(' → ')}`);
        assert.equal(d!.statesSeen.at(-1), 'RUNNING');
        assert.ok(isFuseMounted(ws.mnt), 'RUNNING is reported only once FUSE is mounted');
        assert.equal(statSync(sock).mode & 0o777, 0o600);
        assert.ok(statSync(sock).isSocket());
      });

      await t.test('seed curl: config as a PATH (verbatim) and as the file CONTENTS', async () => {
        // Verbatim shape of the seed: -d '{"source":"/path/to/bootstrap","config":"/path/to/config.json"}'
        const r1 = await curl(sock, 'POST', '/api/v1/mount?mountpoint=/pseudo_1', { data: `{"source":"${img1.bootstrap}","config":"${ws.configPath}"}` });
        assert.equal(r1.status, 204, r1.text);
        // Upstream's own code path (nydusctl, snapshotter): config carries the file contents.
        const r2 = await curl(sock, 'POST', '/api/v1/mount?mountpoint=/pseudo_2', { data: JSON.stringify({ source: img2.bootstrap, fs_type: 'rafs', config: ws.configText }) });
        assert.equal(r2.status, 204, r2.text);
        // A config path that does not exist is the client's mistake, reported as such.
        const r3 = await curl(sock, 'POST', '/api/v1/mount?mountpoint=/pseudo_3', { data: JSON.stringify({ source: img2.bootstrap, config: join(ws.root, 'missing.json') }) });
        assert.equal(r3.status, 400, r3.text);
        assert.equal(typeof (r3.json as { message: string }).message, 'string');
      });

      await t.test('both mounts read correctly at once', () => {
        assertTree(join(ws.mnt, 'pseudo_1'), img1.tree, '/pseudo_1');
        assertTree(join(ws.mnt, 'pseudo_2'), img2.tree, '/pseudo_2');
      });

      await t.test('daemon info: RUNNING, both mounts, no secrets', async () => {
        // A third mount whose registry config holds credentials: they must never be echoed back.
        const secret = Buffer.from('alice:s3cr3t-TOKEN').toString('base64');
        const regCfg = JSON.stringify({ device: { backend: { type: 'registry', config: { host: '127.0.0.1:1', repo: 'x/y', scheme: 'http', auth: secret, registry_token: 'tok-SECRET' } }, cache: { type: 'blobcache', config: { work_dir: ws.cache } } }, mode: 'direct' });
        const rm = await curl(sock, 'POST', '/api/v1/mount?mountpoint=/secret', { data: JSON.stringify({ source: img1.bootstrap, fs_type: 'rafs', config: regCfg }) });
        assert.equal(rm.status, 204, rm.text);
        const r = await curl(sock, 'GET', '/api/v1/daemon');
        assert.equal(r.status, 200);
        const info = r.json as Info;
        assert.equal(info.state, 'RUNNING');
        assert.deepEqual(Object.keys(info.backend_collection).sort(), ['/pseudo_1', '/pseudo_2', '/secret']);
        for (const mp of ['/pseudo_1', '/pseudo_2']) {
          assert.equal(info.backend_collection[mp]!.backend_type, 'Rafs');
          assert.equal(info.backend_collection[mp]!.mountpoint, mp);
        }
        const cfg = await curl(sock, 'GET', '/api/v1/config?id=/secret');
        assert.equal(cfg.status, 200, cfg.text);
        for (const [what, text] of [['GET /api/v1/daemon', r.text], ['GET /api/v1/config', cfg.text], ['GET /api/v2/daemon', (await curl(sock, 'GET', '/api/v2/daemon')).text]] as const) {
          assert.ok(!text.includes(secret), `${what} leaks the registry auth`);
          assert.ok(!text.includes('tok-SECRET'), `${what} leaks the registry token`);
        }
        assert.equal((await curl(sock, 'DELETE', '/api/v1/mount?mountpoint=/secret')).status, 204);
      });

      await t.test('umount of one leaves the other readable', async () => {
        const r = await curl(sock, 'DELETE', '/api/v1/mount?mountpoint=/pseudo_1');
        assert.equal(r.status, 204, r.text);
        const info = (await curl(sock, 'GET', '/api/v1/daemon')).json as Info;
        assert.deepEqual(Object.keys(info.backend_collection), ['/pseudo_2']);
        // The kernel may keep a negative-free dentry for entry_timeout (1 s): poll, don't sleep.
        await until('/pseudo_1 to disappear', () => {
          try {
            statSync(join(ws.mnt, 'pseudo_1', 'hello.txt'));
            return undefined;
          } catch (e) {
            return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESTALE' || undefined;
          }
        }, 10_000);
        assertTree(join(ws.mnt, 'pseudo_2'), img2.tree, '/pseudo_2 after umount of /pseudo_1');
        const again = await curl(sock, 'DELETE', '/api/v1/mount?mountpoint=/pseudo_1');
        assert.equal(again.status, 404, again.text);
      });

      await t.test('PUT /api/v1/daemon log_level', async () => {
        assert.equal((await curl(sock, 'PUT', '/api/v1/daemon', { data: '{"log_level":"debug"}' })).status, 204);
        const bad = await curl(sock, 'PUT', '/api/v1/daemon', { data: '{"log_level":"loud"}' });
        assert.equal(bad.status, 400);
        assert.deepEqual(Object.keys(bad.json as object).sort(), ['code', 'message']);
        assert.equal((await curl(sock, 'PUT', '/api/v1/daemon', { data: '{"log_level":"warn"}' })).status, 204);
      });

      await t.test('PUT /api/v1/daemon/exit unmounts and exits 0', async () => {
        const r = await curl(sock, 'PUT', '/api/v1/daemon/exit');
        assert.equal(r.status, 204, r.text);
        const code = await withTimeout(d!.exited, 60_000, 'nydusd exit after PUT /daemon/exit');
        assert.equal(code, 0, d!.log());
        assert.ok(!isFuseMounted(ws.mnt), 'the FUSE mount is gone');
      });
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
