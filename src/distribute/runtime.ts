// Self-contained client bundles (`server start --bundle`): <bundle>/nydus/ holds a Node runtime,
// the bundled nydus-distribute + nydusd (dist/bundle, made by scripts/bundle.mjs) and the native
// addons the read path loads, so a node needs only Linux with FUSE and overlayfs. zstd comes from
// node:zlib there (the shipped runtime has it), so the compiled zstd-napi addon is not shipped.
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { NydusError } from '../util/errors.js';
import { RUNTIME_DIR, type Created } from './layout.js';
import { installRoot } from './proc.js';

/** Native addons nydusd may load (format/digest.ts, format/compress.ts); each with its platform package. */
const ADDONS = ['@napi-rs/blake-hash', 'lz4-napi', '@node-rs/crc32'];

/** The installed package directory of `name` as `from` resolves it (walks up from its main file). */
function packageDir(name: string, from: string): string | undefined {
  let main: string;
  try {
    main = createRequire(join(from, 'package.json')).resolve(name);
  } catch {
    return undefined;
  }
  for (let d = dirname(main); d !== dirname(d); d = dirname(d)) {
    const p = join(d, 'package.json');
    if (existsSync(p) && (JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === name) return d;
  }
  return undefined;
}

/** An addon and the platform packages of it installed here (its optionalDependencies that resolve). */
function addonDirs(name: string, root: string): Map<string, string> {
  const dir = packageDir(name, root);
  if (!dir) throw new NydusError('ERR_IO', `--bundle: the native addon ${name} is not installed in ${root}`);
  const out = new Map([[name, dir]]);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
    const d = packageDir(dep, dir);
    if (d) out.set(dep, d);
  }
  return out;
}

/** Every path under `p` (itself included). */
function pathsUnder(p: string, out: string[] = []): string[] {
  out.push(p);
  if (statSync(p).isDirectory()) for (const n of readdirSync(p)) pathsUnder(join(p, n), out);
  return out;
}

/**
 * Writes <bundleDir>/nydus/: node, *.cjs launchers, bundled modules, node_modules/<addons>. Every
 * path is recorded in `created` (server clean removes them). Returns the runtime's size in bytes.
 */
export function installRuntime(bundleDir: string, created: Created, nodeBinary = process.execPath): number {
  const root = installRoot();
  const from = join(root, 'dist', 'bundle');
  if (!existsSync(join(from, 'nydusd.cjs'))) throw new NydusError('ERR_IO', `--bundle: ${from} is missing or incomplete; run 'npm run build' in ${root}`);
  const dest = join(bundleDir, RUNTIME_DIR);
  created.mkdirp(dest, (d) => mkdirSync(d));
  for (const f of readdirSync(from)) {
    created.willCreate(join(dest, f));
    copyFileSync(join(from, f), join(dest, f));
  }
  created.willCreate(join(dest, 'node'));
  copyFileSync(nodeBinary, join(dest, 'node'));
  chmodSync(join(dest, 'node'), 0o755);
  const modules = join(dest, 'node_modules');
  created.mkdirp(modules, (d) => mkdirSync(d));
  for (const name of ADDONS) {
    for (const [pkg, dir] of addonDirs(name, root)) {
      const to = join(modules, pkg);
      created.mkdirp(dirname(to), (d) => mkdirSync(d));
      created.willCreate(to);
      cpSync(dir, to, { recursive: true, dereference: true });
    }
  }
  // Copied trees hold directories of their own: record them all, or clean would keep them.
  const paths = pathsUnder(dest);
  for (const p of paths) created.record(p);
  return paths.reduce((n, p) => n + (statSync(p).isFile() ? statSync(p).size : 0), 0);
}
