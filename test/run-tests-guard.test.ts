// Issue 15, acceptance 1: a green run can be trusted. scripts/run-tests.js fails when anything
// (a suite or a test) was skipped unless NYDUS_TS_ALLOW_SKIP=1, and a build whose nydusd,
// nydus-image or nydusify throws at start-up turns harness-based suites red (they used to skip
// themselves after probing `nydusd --help`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { skipReason } from './api/harness.js';
import { fuseUsable } from './daemon/nydusd-proc.js';
import { REPO_ROOT } from './helpers/paths.js';
import { testDir } from './helpers/tmp.js';

const RUN_TESTS = join(REPO_ROOT, 'scripts/run-tests.js');

function runTests(cwd: string, filters: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  // The outer runner's context and permission must not leak into the run under test.
  delete env.NODE_TEST_CONTEXT;
  if (!('NYDUS_TS_ALLOW_SKIP' in extraEnv)) delete env.NYDUS_TS_ALLOW_SKIP;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [RUN_TESTS, ...filters], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

function tinyProject(files: Record<string, string>): string {
  const d = testDir('run-tests-guard-');
  mkdirSync(join(d, 'dist'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, 'dist', name), text);
  return d;
}

describe('run-tests skip policy', () => {
  it('a skipped suite fails the run; NYDUS_TS_ALLOW_SKIP=1 accepts it', { timeout: 120_000 }, async () => {
    // node's own summary reports "# skipped 0" for this file: only the suite is marked SKIP.
    const d = tinyProject({
      'suite.test.js': "import { describe, it } from 'node:test';\ndescribe('needs a thing', { skip: 'thing missing' }, () => { it('uses it', () => {}); });\nit('passes', () => {});\n",
    });
    const red = await runTests(d, []);
    assert.equal(red.code, 3, red.out);
    assert.match(red.out, /1 suite\(s\)\/test\(s\) skipped/);
    assert.match(red.out, /needs a thing # SKIP thing missing/);
    const allowed = await runTests(d, [], { NYDUS_TS_ALLOW_SKIP: '1' });
    assert.equal(allowed.code, 0, allowed.out);
  });

  it('a skipped test inside a passing suite, and t.skip(), fail the run', { timeout: 120_000 }, async () => {
    const d = tinyProject({
      'a.test.js': "import { describe, it } from 'node:test';\ndescribe('s', () => { it('x', { skip: true }, () => {}); it('y', () => {}); });\n",
      'b.test.js': "import { test } from 'node:test';\ntest('runtime skip', (t) => { t.skip('nope'); });\n",
    });
    const red = await runTests(d, []);
    assert.equal(red.code, 3, red.out);
    assert.match(red.out, /2 suite\(s\)\/test\(s\) skipped/);
  });

  it('a clean run passes and a failing test keeps its own exit status', { timeout: 120_000 }, async () => {
    assert.equal((await runTests(tinyProject({ 'ok.test.js': "import { test } from 'node:test';\ntest('fine', () => {});\n" }), [])).code, 0);
    const bad = await runTests(tinyProject({ 'bad.test.js': "import { test } from 'node:test';\ntest('broken', () => { throw new Error('x'); });\n" }), []);
    assert.equal(bad.code, 1, bad.out);
  });
});

/** A copy of the built tree (bin, dist, package.json; node_modules linked) with `broken` CLIs throwing at start-up. */
function brokenBuild(broken: string[]): string {
  const d = testDir('broken-build-');
  cpSync(join(REPO_ROOT, 'package.json'), join(d, 'package.json'));
  cpSync(join(REPO_ROOT, 'bin'), join(d, 'bin'), { recursive: true });
  cpSync(join(REPO_ROOT, 'dist'), join(d, 'dist'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(d, 'node_modules'));
  for (const name of broken) writeFileSync(join(d, 'dist/src/cli', `${name}.js`), `throw new Error('BROKEN-FOR-GUARD ${name}');\n`);
  return d;
}

describe('a build that cannot start turns the suite red', () => {
  // Where the environment allows the suite it must fail (exit 1, with the marker proving the
  // failure came from the broken start-up), not skip; elsewhere the skip alone makes it red (exit 3).
  for (const [cli, file, envMissing] of [
    ['nydusd', 'dist/test/api/metrics.test.js', skipReason()],
    ['nydus-image', 'dist/test/api/metrics.test.js', skipReason()],
    ['nydusify', 'dist/test/e2e/nydusify-s3.test.js', fuseUsable()],
  ] as const) {
    it(`${cli} throwing at start-up fails ${file.replace('dist/', '')}`, { timeout: 240_000 }, async () => {
      const d = brokenBuild([cli]);
      const r = await runTests(d, [file]);
      if (envMissing) return assert.equal(r.code, 3, r.out);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, new RegExp(`BROKEN-FOR-GUARD ${cli}`));
    });
  }
});
