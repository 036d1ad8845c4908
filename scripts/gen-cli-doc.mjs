#!/usr/bin/env node
// Rewrites the help blocks of docs/cli.md: every "## `CMD ...`" heading followed by a ```text block
// gets that block replaced with the output of `CMD ... --help` (run from bin/, after `npm run build`).
// --check: change nothing, exit 1 naming the commands whose block differs.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'docs', 'cli.md');
const text = readFileSync(file, 'utf8');
const stale = [];
const out = text.replace(/^(#{2,3} `([^`]+)`\n\n(?:[^\n]*\n\n)?```text\n)([^]*?)(```)/gm, (_all, head, cmd, block, fence) => {
  const [prog, ...sub] = cmd.split(' ');
  const r = spawnSync(process.execPath, [join(root, 'bin', `${prog}.js`), ...sub, '--help'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} --help: exit ${r.status}: ${r.stderr}`);
  if (r.stdout !== block) stale.push(cmd);
  return head + r.stdout + fence;
});
if (process.argv.includes('--check')) {
  if (stale.length) {
    process.stderr.write(`docs/cli.md is out of date for: ${stale.join(', ')} (run: node scripts/gen-cli-doc.mjs)\n`);
    process.exit(1);
  }
} else writeFileSync(file, out);
