// nydus-distribute without network namespaces or nydusd: config/layout helpers, chunk-map progress,
// clean bookkeeping, and the server side end to end on loopback (conversion, supervised proxy,
// idempotence, restart, one-line errors, clean leaves nothing behind).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Created, nydusdConfig, removeCreated, runtimeConfig } from '../../src/distribute/layout.js';
import { chunkMapProgress, nodePaths, nodeServiceName } from '../../src/distribute/node.js';
import { unitText } from '../../src/distribute/service.js';
import { BIN } from '../helpers/paths.js';

process.env.NYDUS_DISTRIBUTE_SERVICE = 'process';
const tmp = mkdtempSync(join(tmpdir(), 'ndist-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], cwd = tmp): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-distribute'), ...args], { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NYDUS_DISTRIBUTE_SERVICE: 'process' } });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** Zombies count as gone: the reaper of orphaned daemons here may be slow or absent. */
function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

describe('layout and config', () => {
  it('bundle config reaches the proxy through the registry backend, cache relative to the bundle', () => {
    const c = nydusdConfig('198.18.0.254', 8000, 'rootfs');
    assert.deepEqual(c.device.backend.config.host, '198.18.0.254:8000');
    assert.equal(c.device.backend.config.repo, 'rootfs');
    assert.equal(c.device.backend.config.scheme, 'http');
    assert.equal(c.device.cache.type, 'blobcache');
    assert.equal(c.device.cache.config.work_dir, './cache');
    assert.equal(c.fs_prefetch.enable, false);
    assert.equal(nydusdConfig('::1', 80, 'x').device.backend.config.host, '[::1]:80');
    const r = runtimeConfig(c, '/opt/b', true);
    assert.equal(r.device.cache.config.work_dir, '/opt/b/cache');
    assert.equal(r.fs_prefetch.enable, true);
    assert.equal(r.fs_prefetch.prefetch_all, true);
    assert.equal(c.fs_prefetch.enable, false, 'bundle config not mutated');
  });

  it('node paths, service names and unit text', () => {
    const p = nodePaths('/srv/rootfs1');
    assert.equal(p.lower, '/srv/rootfs1/lower');
    assert.equal(p.upper, '/srv/rootfs1/overlay/upper');
    assert.equal(p.apisock, '/srv/rootfs1/nydusd.sock');
    assert.match(nodePaths(`/${'d'.repeat(120)}`).apisock, /^\/run\/nydus-distribute-[0-9a-f]{12}\.sock$/);
    assert.match(nodeServiceName('/srv/rootfs1'), /^nydusd-rootfs1-[0-9a-f]{8}$/);
    assert.notEqual(nodeServiceName('/a/rootfs1'), nodeServiceName('/b/rootfs1'));
    const u = unitText({ name: 'x', description: 'd', argv: ['/usr/bin/node', '/a b/c.js', '--x'], cwd: '/w', stateDir: '/w', restart: 'always' });
    assert.match(u, /^ExecStart=\/usr\/bin\/node "\/a b\/c.js" --x$/m);
    assert.match(u, /^Restart=always$/m);
    assert.match(u, /^WorkingDirectory=\/w$/m);
  });

  it('chunk map progress: bits MSB first, all-ready magic, missing file', () => {
    const f = join(tmp, 'b.blob.data.chunk_map');
    const buf = Buffer.alloc(4096 + 2);
    buf.writeUInt32LE(0x424d4150, 0);
    buf.writeUInt32LE(1, 4);
    buf.writeUInt32LE(0x434d4150, 8);
    buf[4096] = 0b1010_0000;
    buf[4097] = 0b1000_0000;
    writeFileSync(f, buf);
    assert.deepEqual(chunkMapProgress(f, 9), { ready: 3, total: 9, allReady: false });
    buf[4096] = 0xff;
    writeFileSync(f, buf);
    assert.deepEqual(chunkMapProgress(f, 9), { ready: 9, total: 9, allReady: true });
    buf[4096] = 0;
    buf.writeUInt32LE(0x4d4d4150, 12);
    writeFileSync(f, buf);
    assert.equal(chunkMapProgress(f, 9).allReady, true);
    assert.deepEqual(chunkMapProgress(join(tmp, 'none'), 4), { ready: 0, total: 4, allReady: false });
  });

  it('clean removes only what was created and keeps directories holding foreign files', () => {
    const base = join(tmp, 'created');
    mkdirSync(base);
    writeFileSync(join(base, 'preexisting'), 'x');
    const c = new Created();
    c.willCreate(join(base, 'preexisting'));
    c.mkdirp(join(base, 'a', 'b'), (d) => mkdirSync(d));
    c.willCreate(join(base, 'a', 'b', 'f'));
    writeFileSync(join(base, 'a', 'b', 'f'), 'ours');
    writeFileSync(join(base, 'a', 'foreign'), 'theirs');
    assert.deepEqual(c.paths, [join(base, 'a'), join(base, 'a', 'b'), join(base, 'a', 'b', 'f')]);
    const left = removeCreated(c.paths);
    assert.deepEqual(left, [join(base, 'a')]);
    assert.deepEqual(readdirSync(join(base, 'a')), ['foreign']);
    assert.ok(existsSync(join(base, 'preexisting')));
  });
});

describe('server start/clean on loopback (process mode)', () => {
  it('converts, serves, is idempotent, restarts a dead proxy, errors in one line, cleans up', async () => {
    const src1 = join(tmp, 'rootfs1');
    const src2 = join(tmp, 'rootfs2');
    mkdirSync(join(src1, 'etc'), { recursive: true });
    mkdirSync(src2);
    writeFileSync(join(src1, 'etc', 'hosts'), '127.0.0.1 localhost\n');
    writeFileSync(join(src2, 'data.bin'), Buffer.alloc(300_000, 7));
    const port = await freePort();
    const w = join(tmp, 'nydusdfile');

    const missing = cli(['server', 'start', '-i', '127.0.0.1', '-d', `${src1},${join(tmp, 'nope')}`, '--port', String(port)]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), `nydus-distribute: directory ${join(tmp, 'nope')} does not exist`);
    assert.ok(!existsSync(w), 'a failed start creates nothing');

    const busy = createServer();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
    const b = cli(['server', 'start', '-i', '127.0.0.1', '-d', src1, '--port', String(port)]);
    await new Promise<void>((r) => busy.close(() => r()));
    assert.equal(b.code, 1);
    assert.match(b.stderr.trim(), /^nydus-distribute: port \d+ on 127\.0\.0\.1 is already in use .*$/);
    assert.equal(b.stderr.trim().split('\n').length, 1);

    const s = cli(['server', 'start', '-i', '127.0.0.1', '-d', `${src1},${src2}`, '--port', String(port), '--bundle']);
    assert.equal(s.code, 0, s.stderr);
    for (const n of ['rootfs1', 'rootfs2']) {
      for (const f of ['rootfs.meta', 'httpserver.json', 'start.sh', 'clean.sh']) assert.ok(existsSync(join(w, n, f)), `${n}/${f}`);
      assert.ok(existsSync(join(w, `${n}.tar.gz`)));
      const cfg = JSON.parse(readFileSync(join(w, n, 'httpserver.json'), 'utf8'));
      assert.equal(cfg.device.backend.config.repo, n);
      assert.doesNotMatch(readFileSync(join(w, n, 'start.sh'), 'utf8'), /__NYDUS_TS_HOME__/);
    }
    const blobs = readdirSync(join(w, 'serverfile', 'nydusblobs'));
    assert.equal(blobs.length, 2);
    const res = await fetch(`http://127.0.0.1:${port}/v2/rootfs2/blobs/sha256:${blobs[0]}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    const pidFile = join(w, 'serverfile', 'nydusd_http_server.pid');
    const sup = Number(readFileSync(pidFile, 'utf8'));
    const child = Number(readFileSync(join(w, 'serverfile', 'nydusd_http_server.child.pid'), 'utf8'));

    const again = cli(['server', 'start', '-i', '127.0.0.1', '-d', `${src1},${src2}`, '--port', String(port)]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nydusd_http_server running/);
    assert.equal(Number(readFileSync(pidFile, 'utf8')), sup, 'no second supervisor');

    process.kill(child, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    let restarted = false;
    while (Date.now() < deadline && !restarted) {
      await new Promise((r) => setTimeout(r, 200));
      try {
        const c2 = Number(readFileSync(join(w, 'serverfile', 'nydusd_http_server.child.pid'), 'utf8'));
        restarted = c2 !== child && (await fetch(`http://127.0.0.1:${port}/metrics`)).ok;
      } catch { /* not yet */ }
    }
    assert.ok(restarted, 'the supervisor restarted the killed proxy');

    writeFileSync(join(w, 'foreign.txt'), 'not ours');
    const c = cli(['server', 'clean', '--work-dir', w]);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(!alive(sup), 'supervisor gone');
    assert.deepEqual(readdirSync(w), ['foreign.txt'], 'clean removes only what start created');
    assert.ok(existsSync(join(src1, 'etc', 'hosts')) && existsSync(join(src2, 'data.bin')), 'sources untouched');
    rmSync(w, { recursive: true });
    const none = cli(['server', 'clean', '--work-dir', w]);
    assert.equal(none.code, 0);
  });

  it('node start refuses a directory that is not a bundle, in one line', () => {
    const r = cli(['node', 'start', join(tmp, 'mnt'), '--bundle-dir', tmp]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `nydus-distribute: ${tmp} is not a nydus-distribute bundle: rootfs.meta is missing (use --bundle-dir)`);
    assert.ok(!existsSync(join(tmp, 'mnt')));
  });
});
