// Locations tests share. Compiled tests run from dist/test/..., so resolve from the repo root.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';

function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('repo root not found');
    d = up;
  }
  return d;
}
export const REPO_ROOT = findRoot();
export const FIXTURES = join(REPO_ROOT, 'test/fixtures/nydus-upstream/tests/texture');
export const FIXTURE_V6_22_BOOT = join(FIXTURES, 'bootstrap/rafs-v6-2.2.boot');
export const FIXTURE_V6_22_BLOB = join(FIXTURES, 'blobs/be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef');
export const FIXTURE_REPEATABLE_DIR = join(FIXTURES, 'repeatable');
export const FIXTURE_V5_SHA256 = join(FIXTURES, 'repeatable/sha256-nocompress-repeatable');
export const FIXTURE_V5_BLAKE3 = join(FIXTURES, 'repeatable/blake3-lz4_block-non_repeatable');
export const FIXTURE_V5_BLOB_DIR = join(FIXTURES, 'repeatable/blobs');
export const BIN = (name: string): string => resolve(REPO_ROOT, 'bin', `${name}.js`);
