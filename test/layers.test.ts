// The layering of docs/architecture.md, enforced: lower layers never import upper ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/paths.js';

test('no source file imports a layer above its own', () => {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/check-layers.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
