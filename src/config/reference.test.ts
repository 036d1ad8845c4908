import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_SCHEMAS, V1, V2 } from './daemon-config.js';
import { configReference, keyRows } from './reference.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}

test('every key the validator accepts is documented', () => {
  for (const [name, f] of [['v1', V1], ['v2', V2], ...Object.entries(BACKEND_SCHEMAS)] as const) {
    const rows = keyRows(f);
    assert.ok(rows.length >= 3, name);
    assert.deepEqual(rows.filter((r) => !r.text).map((r) => r.path), [], `${name}: keys without a line of documentation`);
  }
  const v1 = new Map(keyRows(V1).map((r) => [r.path, r]));
  assert.equal(v1.get('fs_prefetch.prefetch_all')?.default, 'true');
  assert.match(v1.get('device.cache.config.enable_encryption')?.honoured ?? '', /refused/);
  assert.ok(keyRows(BACKEND_SCHEMAS.registry!).some((r) => r.path === 'proxy.dragonfly_scheduler_endpoint'), 'proxy object keys are listed');
});

test('docs/config.md is generated from the schema (run: npm run build && node scripts/gen-config-doc.mjs)', () => {
  assert.equal(readFileSync(join(repoRoot(), 'docs/config.md'), 'utf8'), configReference());
});
