// Self-contained client bundle (`server start --bundle`): a node with only Linux, FUSE and overlayfs
// runs start.sh. The node is a network namespace (its own link to the server) plus a private mount
// namespace in which this repo, the Node that runs the tests and every `node` on PATH are hidden
// (tmpfs / an empty file mounted over them), with a clean HOME and no node_modules: the bundle's own
// runtime must mount the image, and every file read through the overlay must equal its source.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { SERVER_IP, StarTestbed, listNetns, netnsUsable } from './netns.js';
import { makeTree, snapshot } from './tree.js';

const ENV = { ...process.env, NYDUS_DISTRIBUTE_SERVICE: 'process' };
const skip = netnsUsable() ?? (existsSync('/dev/fuse') ? undefined : 'no /dev/fuse');
const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sh(argv: string[], timeoutMs = 180_000): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: ENV, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function mountsUnder(root: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(root));
}

function pidsIn(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, f), 'utf8'))).filter((n) => n > 1);
}

/** Every executable named `name` on the host's PATH (and the node binary running this test). */
function hostBinaries(name: string): string[] {
  const dirs = `${process.env.PATH ?? ''}:${NODE_PATH}`.split(':').filter(Boolean);
  return [...new Set(dirs.map((d) => join(d, name)).filter((p) => existsSync(p)).map((p) => realpathSync(p)))];
}

describe('self-contained --bundle (a node without nydus-ts, node or node_modules)', { skip }, () => {
  it('start.sh mounts with the bundled runtime; files read through the mount equal the source', { timeout: 300_000 }, async (t) => {
    const root = mkdtempSync('/tmp/ndist-bundle-');
    chmodSync(root, 0o755);
    const tb = new StarTestbed(1, join(root, 'net'));
    const W = join(root, 'server', 'nydusdfile');
    const srcDir = join(root, 'src', 'rootfs');
    const nodeDir = join(root, 'node1');
    const bundle = join(nodeDir, 'rootfs');
    const seen = new Set<number>();
    try {
      mkdirSync(srcDir, { recursive: true });
      chmodSync(srcDir, 0o755);
      makeTree(srcDir, 'bundle', 2);
      const src = snapshot(srcDir);
      tb.up();
      mkdirSync(join(root, 'server'));
      const s = sh([...tb.inNs(tb.serverNs), process.execPath, BIN('nydus-distribute'), 'server', 'start', '-i', SERVER_IP, '-d', srcDir, '--work-dir', W, '--bundle']);
      assert.equal(s.code, 0, s.err);
      for (const p of pidsIn(join(W, 'serverfile'))) seen.add(p);
      const tarball = join(W, 'rootfs.tar.gz');
      t.diagnostic(`bundle ${(statSync(tarball).size / 2 ** 20).toFixed(1)} MiB compressed`);

      mkdirSync(nodeDir);
      assert.equal(sh(['tar', '-xzf', tarball, '-C', nodeDir]).code, 0);
      assert.ok(existsSync(join(bundle, 'nydus', 'node')), 'the bundle carries a Node runtime');

      // What the node must not see: this checkout, the test's Node, any node / nydus-ts on PATH.
      const empty = join(root, 'empty');
      writeFileSync(empty, '');
      // A runtime inside the checkout (setup's .node/) is hidden with it: mounting over it after the
      // checkout's tmpfs would name a path that no longer exists.
      const hideDirs = [REPO_ROOT, dirname(realpathSync(process.execPath))].filter((d, i, all) => !all.some((o, j) => j !== i && d.startsWith(`${o}/`)));
      const hideFiles = ['node', 'nodejs', 'npm', 'npx', 'nydus-distribute', 'nydusd'].flatMap(hostBinaries).filter((f) => !hideDirs.some((d) => f.startsWith(`${d}/`)));
      const home = join(root, 'home');
      mkdirSync(home);
      const mnt = join(nodeDir, 'mnt');
      const sums = join(root, 'sums');
      const cmdline = join(root, 'nydusd.cmdline');
      const script = join(root, 'node.sh');
      writeFileSync(script, `set -eu
${hideDirs.map((d) => `mount -t tmpfs -o size=1m,mode=0755 none '${d}'`).join('\n')}
${hideFiles.map((f) => `mount --bind '${empty}' '${f}'`).join('\n')}
exec env -i PATH='${NODE_PATH}' HOME='${home}' NYDUS_DISTRIBUTE_SERVICE=process sh -eu -c '
  if command -v node >/dev/null || command -v nydus-distribute >/dev/null; then echo "node or nydus-distribute still reachable" >&2; exit 97; fi
  if [ -e "${REPO_ROOT}/package.json" ]; then echo "the checkout is still visible" >&2; exit 98; fi
  trap "sh ${bundle}/clean.sh ${mnt} >&2 || true" EXIT
  sh ${bundle}/start.sh ${mnt}
  for f in ${bundle}/*.child.pid; do tr "\\000" " " < /proc/$(cat "$f")/cmdline; echo; done > ${cmdline}
  cd ${mnt} && find . -type f | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done > ${sums}
'
`);
      const r = sh([...tb.inNs(tb.nodeNs[0]!), 'unshare', '--mount', '--propagation', 'private', 'sh', script]);
      assert.equal(r.code, 0, `node: ${r.err}`);

      const ran = readFileSync(cmdline, 'utf8');
      assert.match(ran, new RegExp(`^${join(bundle, 'nydus', 'node')} ${join(bundle, 'nydus', 'nydusd.cjs')} `, 'm'), `nydusd ran from the bundle: ${ran}`);
      const got = new Map(readFileSync(sums, 'utf8').trim().split('\n').map((l) => {
        const [sum, path] = [l.slice(0, 64), l.slice(66)];
        return [path.replace(/^\.\//, ''), sum] as const;
      }));
      const want = new Map([...src].filter(([, e]) => e.type === 'file').map(([p, e]) => [p, e.sha256!] as const));
      assert.ok(want.size > 5);
      assert.deepEqual(got, want, 'files read through the node mount equal the source');
      assert.deepEqual(mountsUnder(root), [], 'clean.sh unmounted (the mounts lived in the node namespace)');
      for (const p of pidsIn(bundle)) seen.add(p);
      assert.ok(!existsSync(join(bundle, '.nydus-distribute-node.json')), 'clean.sh removed the node state');
      assert.deepEqual(readdirSync(bundle).sort(), ['clean.sh', 'httpserver.json', 'nydus', 'rootfs.meta', 'start.sh']);

      const c = sh([process.execPath, BIN('nydus-distribute'), 'server', 'clean', '--work-dir', W]);
      assert.equal(c.code, 0, c.err);
      assert.ok(!existsSync(W), 'server clean removes the bundled runtime with everything else');
    } finally {
      for (const p of pidsIn(bundle)) seen.add(p);
      if (existsSync(W)) sh([process.execPath, BIN('nydus-distribute'), 'server', 'clean', '--work-dir', W], 60_000);
      for (const p of seen) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      tb.down();
      assert.deepEqual(listNetns().filter((n) => tb.namespaces().includes(n)), []);
      if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
    }
  });
});
