#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's built-in runner.
// Usage: node scripts/run-tests.js [filter-substring ...]
//
// A run that skipped anything fails (exit 3) unless NYDUS_TS_ALLOW_SKIP=1: node's summary does not
// count skipped suites, so a daemon that cannot start used to leave a green run. The TAP stream
// (written next to the human-readable spec output) is scanned for `# SKIP` on suites and tests.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** `ok N - name # SKIP reason` lines (suites and tests, any nesting) of a TAP stream. */
function skippedInTap(tap) {
  return tap.split('\n').filter((l) => /^\s*(?:not )?ok \d+ - .*# SKIP\b/i.test(l)).map((l) => l.trim());
}

const filters = process.argv.slice(2);
const files = walk('dist', []).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/');
  process.exit(1);
}
const tapDir = mkdtempSync(join(tmpdir(), 'run-tests-'));
const tapFile = join(tapDir, 'run.tap');
// A parent test runner's context would make the child emit its internal protocol instead of reports.
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...files],
  { stdio: 'inherit', env },
);
let skipped = [];
try {
  skipped = skippedInTap(readFileSync(tapFile, 'utf8'));
} catch (e) {
  console.error(`run-tests: cannot read the TAP report (${e.message})`);
  process.exit(r.status || 1);
} finally {
  rmSync(tapDir, { recursive: true, force: true });
}
if (r.status !== 0) process.exit(r.status ?? 1);
if (skipped.length > 0) {
  const allow = process.env.NYDUS_TS_ALLOW_SKIP === '1';
  console.error(`run-tests: ${skipped.length} suite(s)/test(s) skipped${allow ? ' (allowed by NYDUS_TS_ALLOW_SKIP=1)' : '; set NYDUS_TS_ALLOW_SKIP=1 to accept a partial run'}:`);
  for (const l of skipped) console.error(`  ${l}`);
  if (!allow) process.exit(3);
}
process.exit(0);
