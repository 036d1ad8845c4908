// An oracle independent of our data path: the chunk digests the upstream builder stored in a
// fixture bootstrap (computed from the original file bytes) checked against bytes read back from a
// mount. Hashing here uses node:crypto / @napi-rs/blake-hash directly, not src/format/digest.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { RafsSuper } from '../../src/rafs/index.js';

const require = createRequire(import.meta.url);
const { blake3 } = require('@napi-rs/blake-hash') as { blake3(data: Uint8Array): Buffer };

function hashHex(data: Uint8Array, algo: string): string {
  if (algo === 'sha256') return createHash('sha256').update(data).digest('hex');
  if (algo === 'blake3') return blake3(data).toString('hex');
  throw new Error(`unknown digester ${algo}`);
}

/** Asserts `bytes` (a file's content as served) hashes chunk by chunk to the digests stored for inode `ino`. */
export function assertStoredChunkDigests(sb: RafsSuper, ino: number, bytes: Uint8Array, what: string): void {
  const chunks = sb.fileChunks(ino);
  assert.ok(chunks.length > 0, `${what}: has chunks`);
  for (const [i, c] of chunks.entries()) {
    assert.ok(c.fileOffset + c.uncompressedSize <= bytes.length, `${what}: chunk ${i} (at ${c.fileOffset}, ${c.uncompressedSize} B) lies beyond the ${bytes.length} bytes read`);
    const got = hashHex(bytes.subarray(c.fileOffset, c.fileOffset + c.uncompressedSize), sb.meta.digester);
    assert.equal(got, Buffer.from(c.digest).toString('hex'), `${what}: chunk ${i} differs from the digest the builder stored`);
  }
  const last = chunks.at(-1)!;
  assert.equal(bytes.length, last.fileOffset + last.uncompressedSize, `${what}: size equals the chunks' extent`);
}
