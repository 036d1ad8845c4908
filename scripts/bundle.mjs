#!/usr/bin/env node
// Bundles the programs a file-distribution node runs (nydus-distribute, nydusd and the FUSE
// worker modules nydusd loads by URL) from the compiled dist/src into dist/bundle/: one flat
// directory of ES modules (code shared between entries goes into chunk files, so a class has one
// identity across them), plus CommonJS launchers. `nydus-distribute server start --bundle` copies
// it, a Node runtime and the native addons into each client bundle (src/distribute/runtime.ts).
// Flat on purpose: the daemon finds its worker modules with `new URL('./worker.js', import.meta.url)`,
// which esbuild leaves as written, so every output must sit next to every chunk.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bundle');
const src = join(root, 'dist', 'src');

// name of each output -> compiled module; worker modules keep the names the code asks for.
const entries = {
  'nydus-distribute': 'cli/nydus-distribute.js',
  nydusd: 'cli/nydusd.js',
  worker: 'fuse/worker.js',
  'fuse-fs': 'daemon/fuse-fs.js',
  'blob-data-fs': 'daemon/blob-data-fs.js',
};

rmSync(out, { recursive: true, force: true });
const result = await build({
  entryPoints: Object.entries(entries).map(([o, i]) => ({ out: o, in: join(src, i) })),
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunk-[hash]',
  // Native addons are loaded through createRequire at run time (esbuild leaves those calls alone);
  // anything else that is not bundled would be missing on the node, so none is marked external.
  logLevel: 'warning',
  metafile: true,
  // CommonJS dependencies bundled into ESM (undici, prom-client) require() node builtins; esbuild's
  // shim calls a global require when there is one, so give it one (builtins resolve from anywhere).
  banner: { js: "import { createRequire as __nydusCreateRequire } from 'node:module'; globalThis.require ??= __nydusCreateRequire(import.meta.url);" },
});

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// packageVersion() walks up to the first package.json with a name: this one.
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', private: true }, null, 2)}\n`);
// Launchers: the bin/ shims pointed at the bundled modules (CommonJS, so nydusd sizes libuv's
// thread pool before any ES module starts it; see bin/nydusd.js).
for (const tool of ['nydus-distribute', 'nydusd']) {
  const shim = readFileSync(join(root, 'bin', `${tool}.js`), 'utf8').replace(/^#!.*\n/, '');
  const launcher = shim.replace(`'../dist/src/cli/${tool}.js'`, `'./${tool}.js'`);
  if (launcher === shim) throw new Error(`bin/${tool}.js does not import ../dist/src/cli/${tool}.js`);
  writeFileSync(join(out, `${tool}.cjs`), launcher);
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (process.argv.includes('--verbose')) process.stderr.write(`dist/bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB\n`);
