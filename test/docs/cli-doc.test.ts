// docs/cli.md shows every command's --help verbatim (scripts/gen-cli-doc.mjs writes those blocks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

test('docs/cli.md help blocks equal each command\'s --help', () => {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/gen-cli-doc.mjs'), '--check'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
});
