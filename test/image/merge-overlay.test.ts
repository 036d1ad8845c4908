// `merge` of three layers with whiteouts equals a real overlayfs mount of the same layers:
// OCI tar layers (`.wh.name`, deleted directory, `.wh..wh..opq`, re-creation after deletion,
// hardlinks within a layer) and overlayfs-spec directory layers (char 0/0 whiteouts, opaque xattr).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { erofsMountUnavailable, withErofsMount } from '../kernel/erofs-mount.js';
import { asObject, cli, describe, hardlinkGroups, IS_ROOT, type Rec } from './tree-helpers.js';

const w = (p: string, s: string | Buffer): void => {
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, s);
};

/** Three layer directories (lowest first) in OCI form: whiteouts are `.wh.` files. */
function makeOciLayers(root: string): string[] {
  const [l1, l2, l3] = ['l1', 'l2', 'l3'].map((n) => join(root, n)) as [string, string, string];
  w(join(l1, 'etc/passwd'), 'root:x:0:0\n');
  w(join(l1, 'etc/removed'), 'bye');
  w(join(l1, 'etc/kept'), 'kept');
  w(join(l1, 'gone/a'), 'a');
  w(join(l1, 'gone/b/c'), 'c');
  w(join(l1, 'opq/old1'), 'old1');
  w(join(l1, 'opq/old2/x'), 'x');
  w(join(l1, 'recreate/f'), 'v1');
  w(join(l1, 'hl/a'), 'shared by a and b');
  linkSync(join(l1, 'hl/a'), join(l1, 'hl/b'));
  symlinkSync('etc/passwd', join(l1, 'sym'));
  // Layer 2: delete a file, a whole directory, make opq/ opaque, delete recreate/f, add a hardlink pair.
  w(join(l2, 'etc/.wh.removed'), '');
  w(join(l2, '.wh.gone'), '');
  w(join(l2, 'opq/.wh..wh..opq'), '');
  w(join(l2, 'opq/new1'), 'new1');
  w(join(l2, 'recreate/.wh.f'), '');
  w(join(l2, 'hl2/x'), 'l2 pair');
  linkSync(join(l2, 'hl2/x'), join(l2, 'hl2/y'));
  w(join(l2, '.wh.sym'), '');
  // Layer 3: re-create the deleted file and directory, change a file, add to the opaque dir.
  w(join(l3, 'recreate/f'), 'v3');
  w(join(l3, 'gone/fresh'), 'fresh');
  w(join(l3, 'etc/passwd'), 'root:x:0:0\nuser:x:1000:1000\n');
  w(join(l3, 'opq/l3'), 'l3');
  w(join(l3, 'sym'), 'now a file');
  let t = 1_600_000_000;
  for (const l of [l1, l2, l3]) {
    const all: string[] = [];
    const walk = (p: string): void => {
      for (const n of readdirSync(p)) {
        all.push(join(p, n));
        if (lstatSync(join(p, n)).isDirectory()) walk(join(p, n));
      }
    };
    walk(l);
    for (const p of all.reverse()) if (!lstatSync(p).isSymbolicLink()) utimesSync(p, (t += 61), t);
  }
  return [l1, l2, l3];
}

/** OCI whiteouts → overlayfs ones, in place; keeps the parent directories' mtimes. */
function ociToOverlay(dir: string): void {
  const walk = (d: string): void => {
    const st = lstatSync(d);
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (n === '.wh..wh..opq') {
        unlinkSync(p);
        execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', d]);
      } else if (n.startsWith('.wh.')) {
        unlinkSync(p);
        execFileSync('mknod', [join(d, n.slice(4)), 'c', '0', '0']);
      } else if (lstatSync(p).isDirectory()) walk(p);
    }
    utimesSync(d, st.atime, st.mtime);
  };
  walk(dir);
}

function tarLayer(dir: string, out: string): void {
  execFileSync('tar', ['--numeric-owner', '-cf', out, '-C', dir, ...readdirSync(dir)]);
}

function extract(tarPath: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarPath, '-C', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** overlayfs reports nlink 1 for merged directories and the root is implicit in tars. */
const view = (root: string): Record<string, Rec> => asObject(describe(root), (k) => k === '/');

async function withOverlay<T>(lowers: string[], fn: (mnt: string) => Promise<T> | T): Promise<T> {
  const mnt = mkdtempSync(join(tmpdir(), 'nydus-ovl-'));
  let mounted = false;
  try {
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lowers].reverse().join(':')}`, mnt], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `mount -t overlay: ${r.stderr}`);
    mounted = true;
    return await fn(mnt);
  } finally {
    if (mounted && spawnSync('umount', [mnt], { timeout: 10_000 }).status !== 0) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
    rmSync(mnt, { recursive: true, force: true });
  }
}

function overlayUnavailable(): string | undefined {
  if (!IS_ROOT) return 'needs root';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) spawnSync('modprobe', ['overlay']);
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'no overlayfs';
  return undefined;
}

/** Merges `boots` (lowest first), unpacks with every layer's blob in `blobDir`, extracts. */
function mergeAndExtract(d: string, boots: string[], blobDir: string, spec: string, tag: string): { merged: string; x: string } {
  const merged = join(d, `${tag}.merged`);
  const m = cli(['merge', ...boots, '-B', merged, '--whiteout-spec', spec]);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(cli(['check', merged, '-D', blobDir]).code, 0);
  const u = cli(['unpack', merged, '-D', blobDir, '--output', join(d, `${tag}.tar`)]);
  assert.equal(u.code, 0, u.stderr);
  const x = join(d, `${tag}.x`);
  extract(join(d, `${tag}.tar`), x);
  return { merged, x };
}

for (const fsVersion of ['5', '6']) {
  test(`v${fsVersion}: merge of three OCI tar-rafs layers equals overlayfs over the extracted layers`, async (t) => {
    const skip = overlayUnavailable();
    if (skip) return t.skip(skip);
    const d = mkdtempSync(join(tmpdir(), 'nydus-merge-ovl-'));
    try {
      const layers = makeOciLayers(join(d, 'src'));
      const blobDir = join(d, 'blobs');
      mkdirSync(blobDir);
      const boots: string[] = [];
      const lowers: string[] = [];
      for (const [i, l] of layers.entries()) {
        const tarPath = join(d, `layer${i + 1}.tar`);
        tarLayer(l, tarPath);
        const boot = join(d, `layer${i + 1}.boot`);
        const c = cli(['create', '--type', 'tar-rafs', '--fs-version', fsVersion, '-B', boot, '-D', blobDir, tarPath]);
        assert.equal(c.code, 0, c.stderr);
        boots.push(boot);
        const low = join(d, `ovl${i + 1}`);
        extract(tarPath, low);
        ociToOverlay(low);
        lowers.push(low);
      }
      const { merged, x } = mergeAndExtract(d, boots, blobDir, 'oci', 'oci');
      const got = view(x);
      // Spot checks that make a wrong-but-equal comparison unlikely.
      assert.equal(readFileSync(join(x, 'recreate/f'), 'utf8'), 'v3');
      assert.deepEqual(readdirSync(join(x, 'opq')).sort(), ['l3', 'new1']);
      assert.deepEqual(readdirSync(join(x, 'gone')), ['fresh']);
      assert.deepEqual(readdirSync(join(x, 'etc')).sort(), ['kept', 'passwd']);
      assert.deepEqual(hardlinkGroups(x), [['/hl/a', '/hl/b'], ['/hl2/x', '/hl2/y']]);
      await withOverlay(lowers, async (mnt) => {
        assert.deepEqual(got, view(mnt));
        assert.deepEqual(hardlinkGroups(mnt), hardlinkGroups(x));
        if (fsVersion === '6' && !erofsMountUnavailable()) {
          // The merged v6 bootstrap itself, in the kernel, with one device per layer blob.
          const ex = cli(['export', '--block', merged, '-D', blobDir, '--blob-data-dir', d]);
          assert.equal(ex.code, 0, ex.stderr);
          const devices = ex.stdout.trim().split('\n');
          assert.equal(devices.length, 3);
          await withErofsMount(merged, devices, (emnt) => {
            assert.deepEqual(view(emnt), view(mnt));
            assert.deepEqual(hardlinkGroups(emnt), hardlinkGroups(mnt));
          });
        }
      });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
}

/** The three layers in overlayfs form (char 0/0 whiteouts, opaque xattr) and the overlayfs view of them. */
async function withOverlayLayers(tag: string, fn: (d: string, layers: string[], blobDir: string, want: Record<string, Rec>) => void): Promise<void> {
  const d = mkdtempSync(join(tmpdir(), `nydus-merge-${tag}-`));
  try {
    const layers = makeOciLayers(join(d, 'src'));
    for (const l of layers) ociToOverlay(l);
    const blobDir = join(d, 'blobs');
    mkdirSync(blobDir);
    await withOverlay(layers, (mnt) => {
      const want = view(mnt);
      assert.deepEqual(readdirSync(join(mnt, 'opq')).sort(), ['l3', 'new1']);
      fn(d, layers, blobDir, want);
    });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

// Regression: create used to strip trusted.overlay.opaque before the layer was merged (tar-rafs
// builds, and dir builds onto --parent-bootstrap), so the lowest layer's opq/* entries survived.
test('--whiteout-spec overlayfs: overlayfs-form layer tars built with tar-rafs and merged equal overlayfs', async (t) => {
  const skip = overlayUnavailable();
  if (skip) return t.skip(skip);
  await withOverlayLayers('ovltar', (d, layers, blobDir, want) => {
    const boots = layers.map((l, i) => {
      const tarPath = join(d, `ovl${i + 1}.tar`);
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', tarPath, '-C', l, ...readdirSync(l)]);
      const boot = join(d, `ovl${i + 1}.boot`);
      const c = cli(['create', '--type', 'tar-rafs', '--whiteout-spec', 'overlayfs', '-B', boot, '-D', blobDir, tarPath]);
      assert.equal(c.code, 0, c.stderr);
      return boot;
    });
    const { x } = mergeAndExtract(d, boots, blobDir, 'overlayfs', 'ovl');
    assert.deepEqual(view(x), want);
  });
});

test('--whiteout-spec overlayfs: directory layers chained with --parent-bootstrap equal overlayfs', async (t) => {
  const skip = overlayUnavailable();
  if (skip) return t.skip(skip);
  await withOverlayLayers('ovlchain', (d, layers, blobDir, want) => {
    let parent: string | undefined;
    for (const [i, l] of layers.entries()) {
      const boot = join(d, `chain${i + 1}.boot`);
      const c = cli(['create', '--whiteout-spec', 'overlayfs', '-B', boot, '-D', blobDir, ...(parent ? ['--parent-bootstrap', parent] : []), l]);
      assert.equal(c.code, 0, c.stderr);
      parent = boot;
    }
    assert.equal(cli(['check', parent!, '-D', blobDir]).code, 0);
    const u = cli(['unpack', parent!, '-D', blobDir, '--output', join(d, 'chain.tar')]);
    assert.equal(u.code, 0, u.stderr);
    extract(join(d, 'chain.tar'), join(d, 'chain.x'));
    assert.deepEqual(view(join(d, 'chain.x')), want);
  });
});
