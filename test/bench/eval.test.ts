// Issue 13 acceptance 3: the evaluation script runs end to end at reduced size (EVAL_SIZE=tiny: the
// python3 tree cut to what the workload imports, one mount per row, no delay line) and writes the
// report with every row and one SVG chart per measure, each chart naming the rows it plots.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { erofsMountUnavailable } from '../kernel/erofs-mount.js';
import { holdersOf, loopsLeft } from '../kernel/erofs-ondemand-proc.js';
import { mountsUnder } from '../remote/harness.js';

const ROWS = ['native directory', 'FUSE + local', 'FUSE + remote, first', 'FUSE + remote, cached', 'EROFS + local', 'EROFS on-demand, first', 'EROFS on-demand, cached', 'squashfuse_ll', 'OCI pull + untar (skopeo + umoci)'];
const CHARTS = ['mount_ms', 'walk_ms', 'read_ms', 'workload_ms', 'fetched_bytes', 'rss_kib'];

function missingTool(): string | undefined {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  const why = erofsMountUnavailable();
  if (why) return why;
  for (const t of ['squashfuse_ll', 'mksquashfs', 'skopeo', 'umoci']) {
    if (!process.env.PATH?.split(':').some((d) => existsSync(join(d, t)))) return `${t} missing (scripts/setup.sh installs it)`;
  }
  return undefined;
}

test('bench/eval runs at reduced size and writes REPORT.md and SVG charts with every row', { skip: missingTool(), timeout: 600_000 }, async () => {
  const out = mkdtempSync('/tmp/eval-test-');
  try {
    const r = await new Promise<{ code: number | null; err: string; stdout: string }>((resolve) => {
      const c = spawn(process.execPath, [join(REPO_ROOT, 'dist/bench/eval/eval.js')], { env: { ...process.env, EVAL_SIZE: 'tiny', EVAL_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => c.kill('SIGKILL'), 540_000);
      c.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, err, stdout });
      });
    });
    assert.equal(r.code, 0, r.err);
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    for (const row of ROWS) assert.match(report, new RegExp(`^\\| ${row.replace(/[+()]/g, '\\$&')} \\|( [^|]+ \\|){6}$`, 'm'), `row ${row} in the report table`);
    assert.match(report, /## Targets/);
    assert.match(report, /## Reduced size/);
    const { results, root } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { root: string; results: Array<{ row: string; values: Record<string, number> }> };
    assert.deepEqual(results.map((x) => x.row), ROWS);
    for (const x of results.filter((x) => x.row !== 'native directory')) {
      for (const k of ['mount_ms', 'walk_ms', 'read_ms', 'workload_ms']) assert.ok(x.values[k]! > 0, `${x.row}: ${k} = ${x.values[k]}`);
    }
    // A first access fetches something; the cached rows fetch nothing.
    const by = (row: string): Record<string, number> => results.find((x) => x.row === row)!.values;
    assert.ok(by('EROFS on-demand, first').fetched_bytes! > 0);
    assert.equal(by('EROFS on-demand, cached').fetched_bytes, 0);
    assert.equal(by('FUSE + remote, cached').fetched_bytes, 0);
    assert.deepEqual(readdirSync(join(out, 'charts')).sort(), CHARTS.map((c) => `${c}.svg`).sort());
    for (const c of CHARTS) {
      const svg = readFileSync(join(out, 'charts', `${c}.svg`), 'utf8');
      assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.ok(svg.includes('EROFS on-demand, first'), `${c}.svg plots the EROFS on-demand row`);
      assert.ok(report.includes(`(charts/${c}.svg)`), `the report links ${c}.svg`);
    }
    // This run's own temp dir (another evaluation may be running on the machine).
    assert.match(root, /^\/tmp\/nydus-eval-/);
    assert.deepEqual(mountsUnder(root), [], 'the bench left mounts behind');
    assert.deepEqual(await loopsLeft([root]), [], `the bench left loop devices behind (other mount namespaces: ${holdersOf(root).join(', ') || 'none'})`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
