// nydus-snapshotter's command line on bad input: one line naming the file/key/socket, no stack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN } from '../helpers/paths.js';

const run = (args: string[]): { code: number | null; stderr: string; stdout: string } => {
  const r = spawnSync(process.execPath, [BIN('nydus-snapshotter'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
};

test('bad config, bad flags, unreachable containerd: one clear line, non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snap-cli-'));
  try {
    const cfg = join(dir, 'c.toml');
    writeFileSync(cfg, 'root = "/x"\n[daemon]\nnydusd_confg = "/y"\n');
    let r = run(['--config', cfg]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `nydus-snapshotter: ${cfg}: unknown key "daemon.nydusd_confg"\n`);
    r = run(['--config', join(dir, 'none.toml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^nydus-snapshotter: cannot read config .*none\.toml: ENOENT\n$/);
    r = run(['--daemon-mode', 'many']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid value 'many' for --daemon-mode/);
    r = run(['pull']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pull needs exactly one IMAGE reference/);
    assert.match(run(['--help']).stdout, /nydus-snapshotter pull/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
