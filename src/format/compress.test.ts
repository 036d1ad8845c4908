import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressChunk, decompress } from './compress.js';
import { crc32c, digest } from './digest.js';
import { hex } from '../util/bytes.js';

test('compressChunk() round-trips every compressor and stores incompressible data raw', () => {
  const text = new TextEncoder().encode('nydus '.repeat(5000));
  const random = crypto.getRandomValues(new Uint8Array(8192));
  for (const algo of ['none', 'lz4_block', 'zstd', 'gzip'] as const) {
    const c = compressChunk(text, algo);
    assert.equal(c.compressed, algo !== 'none');
    if (c.compressed) assert.ok(c.data.length < text.length / 10, `${algo}: ${c.data.length} bytes for ${text.length}`);
    assert.deepEqual(Buffer.from(decompress(c.data, c.compressed ? algo : 'none', text.length)), Buffer.from(text));
    // Incompressible input is stored raw (COMPRESSED clear), byte for byte, by every compressor.
    const r = compressChunk(random, algo);
    assert.equal(r.compressed, false, `${algo} keeps random data raw`);
    assert.deepEqual(Buffer.from(r.data), Buffer.from(random), algo);
    assert.deepEqual(Buffer.from(decompress(r.data, 'none', random.length)), Buffer.from(random));
  }
});

test('decompress() rejects corrupt input with a FormatError', () => {
  assert.throws(() => decompress(new Uint8Array([1, 2, 3, 4]), 'zstd', 10), /cannot decompress/);
  assert.throws(() => decompress(new Uint8Array([0xf0, 1]), 'lz4_block', 100), /zstd|lz4/);
});

test('digests match known vectors', () => {
  assert.equal(hex(digest(new TextEncoder().encode('abc'), 'sha256')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hex(digest(new TextEncoder().encode('abc'), 'blake3')), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  // CRC-32C check value
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
});
