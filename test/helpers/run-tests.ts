// Runs scripts/run-tests.js in another tree (a tiny project, or a copy of the build with a planted
// defect) to prove the suite's guards: the outer runner's context and skip permission do not leak in.
import { spawn } from 'node:child_process';
import { cpSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { testDir } from './tmp.js';

export function runTestsIn(cwd: string, filters: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NYDUS_TS_ALLOW_SKIP;
  Object.assign(env, extraEnv);
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(REPO_ROOT, 'scripts/run-tests.js'), ...filters], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

/** A temp copy of the built tree (package.json, bin, dist; node_modules linked) to plant a defect in. */
export function buildCopy(prefix: string): string {
  const d = testDir(prefix);
  cpSync(join(REPO_ROOT, 'package.json'), join(d, 'package.json'));
  cpSync(join(REPO_ROOT, 'bin'), join(d, 'bin'), { recursive: true });
  cpSync(join(REPO_ROOT, 'dist'), join(d, 'dist'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(d, 'node_modules'));
  return d;
}
