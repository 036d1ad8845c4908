// crc32c() (the native binding when it loads) and the JS fallback agree, including seeds (chained
// CRCs) and unaligned views; the RFC 3720 check value pins both.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32c, crc32cJs } from './digest.js';

test('crc32c: native and JS agree on sizes, offsets and seeds; check value 0xe3069283', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc32c(check), 0xe3069283);
  assert.equal(crc32cJs(check), 0xe3069283);
  const buf = randomBytes(300_000);
  for (const [start, end] of [[0, 0], [0, 1], [3, 70], [1, 4099], [5, 300_000], [0, 1 << 16]] as const) {
    const v = buf.subarray(start, end);
    assert.equal(crc32c(v), crc32cJs(v), `[${start}, ${end})`);
  }
  const a = buf.subarray(0, 12_345);
  const b = buf.subarray(12_345, 100_001);
  assert.equal(crc32c(b, crc32c(a)), crc32c(buf.subarray(0, 100_001)));
  assert.equal(crc32cJs(b, crc32cJs(a)), crc32c(buf.subarray(0, 100_001)));
});
