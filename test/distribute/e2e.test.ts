// Acceptance test of nydus-distribute over network namespaces: one server, three nodes, each node
// on its own 100 Mbit/s, 10 ms link (user-space delay line). Two directories are distributed with
// the seed scripts (serverstart.sh, start.sh, clean.sh, serverclean.sh). Items:
//  (1) each node's mount equals the source (content + metadata); writes land in that node's upper dir
//  (2) with prefetch, once complete, the server is stopped and the links cut: every file still reads
//  (3) without prefetch, an uncached read with the server unreachable fails with EIO promptly and
//      succeeds once the link is back
//  (4) clean on server and nodes leaves no mounts, processes, units or files behind
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { SERVER_IP, StarTestbed, listNetns, netnsUsable } from './netns.js';
import { filesOf, makeTree, snapshot, type Entry } from './tree.js';

const ENV = { ...process.env, NYDUS_DISTRIBUTE_SERVICE: 'process' };
const IMAGES = ['rootfs1', 'rootfs2'] as const;

// Only the environment decides (never a probe of our own nydusd: a broken daemon must fail here).
const skip = netnsUsable() ?? (existsSync('/dev/fuse') ? undefined : 'no /dev/fuse');

function sh(argv: string[], timeoutMs = 120_000): { code: number | null; out: string; err: string; ms: number } {
  const t = Date.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: ENV, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : ''), ms: Date.now() - t };
}

function mountsUnder(root: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(root));
}

function pidsIn(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, f), 'utf8'))).filter((n) => n > 1);
}

function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function compare(src: Map<string, Entry>, got: Map<string, Entry>, what: string): void {
  // The overlay root's own attributes come from the upper dir; everything below from the image.
  const norm = (m: Map<string, Entry>): Map<string, Entry> => new Map([...m].map(([k, v]) => [k, k === '.' ? { type: v.type, mode: v.mode, uid: 0, gid: 0 } : v]));
  assert.deepEqual(norm(got), norm(src), `${what} differs from its source`);
}

describe('nydus-distribute over network namespaces (1 server, 3 nodes, 100 Mbit/s, 10 ms)', { skip }, () => {
  it('distributes two directories; survives the server going away; cleans up', { timeout: 240_000 }, async (t) => {
    const root = mkdtempSync('/tmp/ndist-e2e-');
    chmodSync(root, 0o755);
    const tb = new StarTestbed(3, join(root, 'net'));
    const W = join(root, 'server', 'nydusdfile');
    const nodeDir = (i: number): string => join(root, `node${i + 1}`);
    const bundle = (i: number, img: string): string => join(nodeDir(i), img);
    const mnt = (i: number, img: string): string => join(nodeDir(i), `mnt-${img}`);
    const inNs = (ns: string, argv: string[], ms?: number) => sh([...tb.inNs(ns), ...argv], ms);
    const seen = new Set<number>();
    const src = new Map<string, Map<string, Entry>>();
    try {
      for (const [k, img] of IMAGES.entries()) {
        const d = join(root, 'src', img);
        mkdirSync(d, { recursive: true });
        chmodSync(d, 0o755);
        makeTree(d, img, k === 0 ? 3 : 2);
        src.set(img, snapshot(d));
      }
      tb.up();

      // Server: the seed command line, run inside the server namespace.
      mkdirSync(join(root, 'server'));
      const dirs = IMAGES.map((i) => join(root, 'src', i)).join(',');
      const s = sh([...tb.inNs(tb.serverNs), 'sh', '-c', `cd ${join(root, 'server')} && sh ${REPO_ROOT}/scripts/distribute/serverstart.sh -i ${SERVER_IP} -d ${dirs} --bundle`]);
      assert.equal(s.code, 0, s.err);
      for (const p of pidsIn(join(W, 'serverfile'))) seen.add(p);

      // "scp" the bundles: unpack the tarballs into each node's directory.
      for (let i = 0; i < 3; i++) {
        mkdirSync(nodeDir(i));
        for (const img of IMAGES) assert.equal(sh(['tar', '-xzf', join(W, `${img}.tar.gz`), '-C', nodeDir(i)]).code, 0);
      }
      const bundleFiles = readdirSync(bundle(0, 'rootfs1')).sort();
      assert.deepEqual(bundleFiles, ['clean.sh', 'httpserver.json', 'nydus', 'rootfs.meta', 'start.sh']);

      // Nodes 1 and 2 prefetch everything; node 3 loads on demand only.
      for (let i = 0; i < 3; i++) {
        for (const img of IMAGES) {
          const r = inNs(tb.nodeNs[i]!, ['sh', join(bundle(i, img), 'start.sh'), mnt(i, img), ...(i < 2 ? ['--prefetch'] : [])]);
          assert.equal(r.code, 0, `node${i + 1} ${img}: ${r.err}`);
          for (const p of pidsIn(bundle(i, img))) seen.add(p);
        }
      }

      await t.test('(3) no prefetch: uncached read with the server unreachable fails with EIO promptly, then recovers', () => {
        const target = join(mnt(2, 'rootfs2'), 'last.bin');
        tb.linkDown(2);
        const r = sh(['cat', target], 60_000);
        assert.notEqual(r.code, 0, 'read must fail while the server is unreachable');
        assert.match(r.err, /Input\/output error/);
        assert.ok(r.ms < 30_000, `EIO took ${r.ms} ms`);
        t.diagnostic(`EIO after ${r.ms} ms`);
        tb.linkUp(2);
        const ok = sh(['sha256sum', target], 60_000);
        assert.equal(ok.code, 0, ok.err);
        assert.equal(ok.out.split(' ')[0], src.get('rootfs2')!.get('last.bin')!.sha256);
      });

      await t.test('(1) every node mount equals its source; writes land in that node upper dir only', () => {
        for (let i = 0; i < 3; i++) for (const img of IMAGES) compare(src.get(img)!, snapshot(mnt(i, img)), `node${i + 1}:${img}`);
        writeFileSync(join(mnt(0, 'rootfs1'), 'etc/hosts'), 'changed on node1\n');
        writeFileSync(join(mnt(0, 'rootfs1'), 'new-file'), 'new\n');
        const upper = join(bundle(0, 'rootfs1'), 'overlay', 'upper');
        assert.equal(readFileSync(join(upper, 'etc/hosts'), 'utf8'), 'changed on node1\n');
        assert.equal(readFileSync(join(upper, 'new-file'), 'utf8'), 'new\n');
        assert.equal(readFileSync(join(root, 'src', 'rootfs1', 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'source untouched');
        assert.equal(readFileSync(join(mnt(1, 'rootfs1'), 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'other nodes untouched');
        assert.ok(!existsSync(join(mnt(1, 'rootfs1'), 'new-file')));
      });

      await t.test('(2) prefetch completes; with the server gone and links cut every file still reads', async () => {
        const deadline = Date.now() + 90_000;
        const status = (i: number, img: string): { dataAllReady: boolean; serverNeeded: boolean; percent: number } =>
          JSON.parse(sh([process.execPath, BIN('nydus-distribute'), 'node', 'status', '--json', '--bundle-dir', bundle(i, img)]).out);
        for (let i = 0; i < 2; i++) {
          for (const img of IMAGES) {
            while (!status(i, img).dataAllReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
            const st = status(i, img);
            assert.ok(st.dataAllReady && !st.serverNeeded, `node${i + 1}:${img} prefetch incomplete (${st.percent}%)`);
          }
        }
        const c = inNs(tb.serverNs, ['sh', join(W, 'serverfile', 'serverclean.sh')]);
        assert.equal(c.code, 0, c.err);
        for (let i = 0; i < 3; i++) tb.linkDown(i);
        for (let i = 0; i < 2; i++) {
          for (const img of IMAGES) {
            const got = snapshot(mnt(i, img));
            for (const f of filesOf(src.get(img)!)) {
              if (i === 0 && img === 'rootfs1' && (f === 'etc/hosts' || f === 'etc/hosts.hardlink')) continue; // changed in (1)
              assert.equal(got.get(f)?.sha256, src.get(img)!.get(f)!.sha256, `node${i + 1}:${img}/${f}`);
            }
          }
        }
      });

      await t.test('(4) clean leaves no mounts, processes or files behind', () => {
        for (let i = 0; i < 3; i++) {
          for (const img of IMAGES) {
            const r = inNs(tb.nodeNs[i]!, ['sh', join(bundle(i, img), 'clean.sh')]);
            assert.equal(r.code, 0, r.err);
            assert.deepEqual(readdirSync(bundle(i, img)).sort(), bundleFiles, `node${i + 1}:${img} bundle back to what was copied`);
            assert.ok(!existsSync(mnt(i, img)), 'mount point created by start is removed');
          }
        }
        assert.deepEqual(mountsUnder(root), []);
        assert.deepEqual([...seen].filter(alive), [], 'supervisors, nydusd and proxy processes are gone');
        assert.ok(!existsSync(W), 'server work dir removed');
        assert.deepEqual(readdirSync(join(root, 'server')), []);
      });
    } finally {
      // Best effort, bounded: nothing may outlive the test even when an assertion failed.
      for (let i = 0; i < 3; i++) for (const img of IMAGES) if (existsSync(join(bundle(i, img), '.nydus-distribute-node.json'))) sh([process.execPath, BIN('nydus-distribute'), 'node', 'clean', '--bundle-dir', bundle(i, img)], 60_000);
      if (existsSync(W)) sh([process.execPath, BIN('nydus-distribute'), 'server', 'clean', '--work-dir', W], 60_000);
      for (const m of mountsUnder(root).reverse()) sh(['umount', '-l', m], 10_000);
      for (const p of seen) if (alive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      tb.down();
      assert.deepEqual(listNetns().filter((n) => tb.namespaces().includes(n)), []);
      if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
    }
  });
});
