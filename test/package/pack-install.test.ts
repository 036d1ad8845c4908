// npm pack → global install into a temp prefix from the tarball → every command answers --help and
// -V. Catches a tarball without dist/ or with a missing runtime file (the commands would exit 70).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; files: string[]; scripts: Record<string, string> };
// npm and the installed commands run on this test's node (the one setup chose), not the machine's.
const nodeDir = dirname(process.execPath);
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${nodeDir}:${process.env.PATH ?? ''}` };
// A node installed from the npm registry carries its headers: native addons build against them offline.
if (existsSync(join(nodeDir, '..', 'include', 'node', 'node.h'))) env.npm_config_nodedir = join(nodeDir, '..');

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, env, encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, `npm ${args.join(' ')} failed (exit ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack ships the build, and a global install from the tarball runs every command', { timeout: 300_000 }, () => {
  assert.ok(pkg.scripts.prepack, 'prepack builds before packing');
  const d = testDir('nydus-pack-');
  // --ignore-scripts: dist/ is already built (tests run from it); prepack would rewrite it under running tests.
  npm(['pack', '--ignore-scripts', '--pack-destination', d], REPO_ROOT);
  const tgz = readdirSync(d).find((n) => n.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack wrote a tarball');
  const list = spawnSync('tar', ['tzf', join(d, tgz)], { encoding: 'utf8' }).stdout.split('\n');
  assert.ok(list.includes('package/dist/src/cli/nydus-image.js'), 'tarball has dist/');
  assert.ok(list.includes('package/dist/bundle/nydusd.cjs'), 'tarball has the node bundle that server start --bundle ships');
  assert.ok(!list.some((f) => f.startsWith('package/test/') || f.startsWith('package/bench/') || f.endsWith('.test.js')), 'no tests in the tarball');
  // Dependencies come from the local cache that `npm ci` filled; only packuments may need the registry.
  // --ignore-scripts as npm 11 does for a global install (zstd-napi's build is not in its allowScripts):
  // zstd must then work through node:zlib, checked below.
  const prefix = join(d, 'prefix');
  npm(['install', '-g', '--prefer-offline', '--ignore-scripts', '--prefix', prefix, join(d, tgz)], d);
  for (const name of Object.keys(pkg.bin)) {
    const exe = join(prefix, 'bin', name);
    for (const flag of ['--help', '-V']) {
      const r = spawnSync(exe, [flag], { env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${name} ${flag}: exit ${r.status}\n${r.stderr}`);
      if (flag === '-V') assert.match(r.stdout, new RegExp(`\\b${pkg.version.replace(/\./g, '\\.')}\\b`), `${name} -V prints the package version`);
      else assert.match(r.stdout, /Usage:/i, `${name} --help prints usage`);
    }
  }
  // The installed builder compresses and verifies a zstd image.
  const img = spawnSync(join(prefix, 'bin', 'nydus-image'), ['create', '--compressor', 'zstd', '-B', join(d, 'boot'), '-D', join(d, 'blobs'), join(REPO_ROOT, 'docs')], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(img.status, 0, img.stderr);
  const chk = spawnSync(join(prefix, 'bin', 'nydus-image'), ['check', join(d, 'boot'), '-D', join(d, 'blobs')], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(chk.status, 0, chk.stderr);
  assert.match(chk.stdout, /verified [1-9]\d* chunks/);
});
