#!/usr/bin/env node
// Fails when a source file imports a folder its layer may not use (docs/architecture.md table).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const ALLOWED = {
  util: [],
  format: ['util'],
  config: ['util'],
  rafs: ['format', 'util'],
  storage: ['format', 'config', 'util'],
  builder: ['format', 'rafs', 'util', 'config'],
  image: ['rafs', 'format', 'storage', 'builder', 'util'],
  fuse: ['util'],
  daemon: ['fuse', 'rafs', 'storage', 'config', 'format', 'util'],
  api: ['daemon/control', 'util'],
  convert: ['builder', 'image', 'rafs', 'storage', 'format', 'config', 'util'],
  proxy: ['util'],
  distribute: ['api', 'config', 'util', 'cli/main'],
  snapshotter: ['convert', 'api', 'fuse/mount', 'util'],
  cli: null,
};
const root = resolve('src');
const bad = [];
function walk(d) {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) check(p);
  }
}
function check(file) {
  const area = relative(root, file).split('/')[0];
  const allowed = ALLOWED[area];
  if (allowed === null || allowed === undefined) return;
  const src = readFileSync(file, 'utf8');
  for (const m of src.matchAll(/from '(\.[^']+)'/g)) {
    const target = relative(root, resolve(dirname(file), m[1])).replace(/\.js$/, '');
    const tArea = target.split('/')[0];
    if (tArea === area || target.startsWith('..')) continue;
    if (!allowed.some((a) => target === a || target.startsWith(a + '/') || tArea === a)) bad.push(`${relative('.', file)} imports ${m[1]} (${area} → ${tArea})`);
  }
}
walk(root);
if (bad.length) {
  console.error(`layering violations:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
console.log('layering: ok');
