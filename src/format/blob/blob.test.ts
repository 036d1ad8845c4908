// Golden tests of the blob-side codecs on the upstream 2.2 v6 blob (spec §7, §12) plus synthetic
// round trips (CI v2, chunk_map, .blob.meta cache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../../../test/helpers/paths.js';
import { Reader, hex } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { emptyBlobInfo, type BlobInfo } from '../blob-info.js';
import { BlobFeatures, COMPRESSOR_CODES } from '../constants.js';
import { decompress } from '../compress.js';
import { digest, sha256 } from '../digest.js';
import {
  BLOB_CCT_HEADER_SIZE, BLOB_CCT_MAGIC, CHUNK_MAP_HEADER_SIZE, CHUNK_V2_FLAG_HAS_CRC32, TAR_HEADER_SIZE, TOC_ENTRY_SIZE,
  allChunksReady, blobMetaCacheSize, blobMetaRange, ciEntryCrc32, createChunkMap, decodeBlobMeta, decodeBlobMetaCache,
  decodeBlobMetaHeader, decodeBlobToc, decodeChunkDigests, decodeChunkInfoV1, decodeChunkInfoV2, decodeChunkMap,
  decodeTarHeader, decodeTocEntry, encodeBlobMetaCache, encodeBlobMetaHeader, encodeChunkInfoV1, encodeChunkInfoV2,
  encodeChunkMapHeader, encodeTarHeader, encodeTocEntry, isChunkReady, setChunkReady, tocEntryCompressor, type CiEntry,
} from './index.js';

const blob = new Uint8Array(readFileSync(FIXTURE_V6_22_BLOB));
const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));

/** The fixture's RafsV6Blob entry (§5.5), decoded locally (the v6 codecs live elsewhere). */
function fixtureBlobInfo(): BlobInfo {
  const ext = new Reader(boot, 1152, 256, 'ext sb');
  const r = new Reader(boot, ext.u64(8), 256, 'blob table');
  const info = emptyBlobInfo(String.fromCharCode(...r.bytes(0, 64)), r.u32(64), r.u32(68), COMPRESSOR_CODES[r.u32(76)]!, 'blake3');
  return {
    ...info,
    chunkCount: r.u32(72),
    features: r.u32(84),
    compressedSize: r.u64(88),
    uncompressedSize: r.u64(96),
    blobTocSize: r.u32(104),
    metaCiCompressor: COMPRESSOR_CODES[r.u32(108)]!,
    metaCiOffset: r.u64(112),
    metaCiCompressedSize: r.u64(120),
    metaCiUncompressedSize: r.u64(128),
    blobTocDigest: r.bytes(136, 32).slice(),
  };
}
const info = fixtureBlobInfo();

test('fixture blob table entry matches the spec values (§2.3, §12)', () => {
  assert.equal(info.blobId, 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef');
  assert.equal(info.features, 0x7000_0021);
  assert.equal(info.chunkCount, 2);
  assert.equal(info.compressedSize, blob.length);
  assert.deepEqual([info.metaCiOffset, info.metaCiCompressedSize, info.metaCiUncompressedSize, info.metaCiCompressor], [8314, 32, 32, 'none']);
});

test('decodeBlobMeta() parses the fixture CI header and CI v1 entries', () => {
  const range = blobMetaRange(info)!;
  assert.deepEqual(range, { offset: 8314, size: 32 + 4096 });
  const meta = decodeBlobMeta(blob.subarray(range.offset, range.offset + range.size), info);
  assert.deepEqual(meta.header, {
    features: 0x7000_0021, ciCompressor: 'none', ciEntries: 2, ciOffset: 8314, ciCompressedSize: 32, ciUncompressedSize: 32,
    ciZranOffset: 0, ciZranSize: 0, ciZranCount: 0,
  });
  // Header re-encodes byte for byte.
  const hdrBytes = blob.subarray(8314 + 32, 8314 + 32 + BLOB_CCT_HEADER_SIZE);
  assert.deepEqual(encodeBlobMetaHeader(meta.header), hdrBytes);
  // Compressed offsets packed from 0, uncompressed offsets 4 KiB aligned (§3.4); sizes = file sizes.
  assert.deepEqual(meta.chunks.map((c) => [c.compressedOffset, c.compressedSize, c.uncompressedOffset, c.uncompressedSize, c.compressed]), [
    [0, 4828, 0, 16931, true],
    [4828, 2974, 20480, 13400, true],
  ]);
  let coff = 0, uoff = 0;
  meta.chunks.forEach((c, i) => {
    assert.equal(c.compressedOffset, coff);
    assert.equal(c.uncompressedOffset, uoff);
    coff += c.compressedSize;
    uoff = Math.ceil((uoff + c.uncompressedSize) / 4096) * 4096;
    assert.deepEqual(encodeChunkInfoV1(c), blob.subarray(8314 + 16 * i, 8314 + 16 * (i + 1)));
  });
  assert.equal(uoff, info.uncompressedSize);
});

test('decodeBlobMeta() rejects a header that disagrees with the blob table', () => {
  const range = blobMetaRange(info)!;
  const bytes = blob.slice(range.offset, range.offset + range.size);
  assert.throws(() => decodeBlobMeta(bytes, { ...info, chunkCount: 3 }), (e: unknown) => e instanceof FormatError && /ci_entries is 2/.test(e.message));
  bytes[32] = bytes[32]! ^ 1; // first magic
  assert.throws(() => decodeBlobMeta(bytes, info), (e: unknown) => e instanceof FormatError && e.code === 'ERR_FORMAT_BAD_MAGIC');
  assert.throws(() => decodeBlobMeta(bytes.subarray(0, 100), info), /ERR_FORMAT_TRUNCATED|need 4128/);
});

test('decodeBlobToc() reads the fixture ToC incl. the pre-rc.3 quirks (§7.6)', () => {
  const tail = blob.subarray(blob.length - 4096);
  const toc = decodeBlobToc(tail);
  assert.equal(toc.tocSize, info.blobTocSize);
  assert.equal(toc.tocSize, 4 * TOC_ENTRY_SIZE + TAR_HEADER_SIZE);
  assert.deepEqual(toc.tocDigest, info.blobTocDigest);
  const rows = toc.entries.map((e) => [e.name, tocEntryCompressor(e), e.compressedOffset, e.compressedSize, e.uncompressedSize]);
  assert.deepEqual(rows, [
    ['image.blob', 'none', 7802, 7802, 36864], // pre-rc.3: offset is the end of the data, not 0
    ['blob.meta', 'none', 8314, 32, 32],
    ['blob.meta.header', 'none', 8346, 4096, 4096],
    ['blob.digest', 'none', 12954, 64, 64],
  ]);
  const [raw, meta, mhdr, dig] = toc.entries as [typeof toc.entries[0], typeof toc.entries[0], typeof toc.entries[0], typeof toc.entries[0]];
  const h = (b: Uint8Array | undefined): string => hex(b!);
  assert.equal(h(raw.uncompressedDigest), h(sha256(blob.subarray(0, 7802 + 512))));
  assert.equal(h(meta.uncompressedDigest), h(sha256(blob.subarray(8314, 8346))));
  assert.equal(h(mhdr.uncompressedDigest), h(sha256(blob.subarray(8346, 8346 + 4096))));
  assert.equal(h(dig.uncompressedDigest), h(sha256(blob.subarray(12954, 13018))));
  // Entries re-encode identically except the reserved tail (garbage in this old image).
  const tocStart = blob.length - 512 - 512;
  toc.entries.forEach((e, i) => {
    const orig = blob.subarray(tocStart + 128 * i, tocStart + 128 * (i + 1));
    assert.deepEqual(encodeTocEntry(e).subarray(0, 80), orig.subarray(0, 80));
    assert.deepEqual(decodeTocEntry(orig), e);
  });
  assert.notDeepEqual(blob.subarray(tocStart + 124, tocStart + 128), new Uint8Array(4));
});

test('every fixture tar header decodes and re-encodes to identical bytes (§7.5)', () => {
  const expected: [number, string, number][] = [
    [7802, 'image.blob', 7802],
    [12442, 'blob.meta', 32 + 4096],
    [13018, 'blob.digest', 64],
    [14042, 'rafs.blob.toc', 512],
  ];
  for (const [off, name, size] of expected) {
    const h = decodeTarHeader(blob, off, name);
    assert.deepEqual(h, { name, size });
    assert.deepEqual(encodeTarHeader(h), blob.subarray(off, off + 512), name);
  }
  const bad = blob.slice(7802, 7802 + 512);
  bad[0] = 0x4a;
  assert.throws(() => decodeTarHeader(bad), /checksum/);
  assert.throws(() => decodeTarHeader(blob, 7802, 'image.boot'), /expected "image.boot"/);
});

test('digest array = blake3 of each decompressed chunk (§7.7); blob id rule (§7.8)', () => {
  const range = blobMetaRange(info)!;
  const { chunks } = decodeBlobMeta(blob.subarray(range.offset, range.offset + range.size), info);
  const digests = decodeChunkDigests(blob.subarray(12954, 13018), 2);
  chunks.forEach((c, i) => {
    const data = decompress(blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize), 'zstd', c.uncompressedSize);
    assert.equal(hex(digests[i]!), hex(digest(data, 'blake3')));
  });
  const h = createHash('sha256').update(blob.subarray(0, 12954)).update(blob.subarray(13018)).digest('hex');
  assert.equal(h, info.blobId);
  assert.notEqual(hex(sha256(blob)), info.blobId);
  assert.throws(() => decodeChunkDigests(blob.subarray(12954, 13018), 3), FormatError);
});

test('CI v1/v2 entries round trip, incl. large offsets and crc32', () => {
  const v1: CiEntry = { compressedOffset: 0xab_1234_5678, compressedSize: 0x100_0000, uncompressedOffset: 0xabc_1234_5000, uncompressedSize: 0x12_3456, compressed: true, flags: 1, data: 0n };
  assert.deepEqual(decodeChunkInfoV1(encodeChunkInfoV1(v1)), v1);
  assert.throws(() => encodeChunkInfoV1({ ...v1, uncompressedOffset: 100 }), /4 KiB aligned/);
  assert.throws(() => encodeChunkInfoV1({ ...v1, compressed: false }), /contradicts/);
  const v2: CiEntry = { ...v1, compressedSize: 0xff_ffff, flags: 1 | CHUNK_V2_FLAG_HAS_CRC32, data: 0xdead_beefn };
  const enc = encodeChunkInfoV2(v2);
  assert.equal(enc.length, 24);
  const back = decodeChunkInfoV2(enc);
  assert.deepEqual(back, v2);
  assert.equal(ciEntryCrc32(back), 0xdead_beef);
});

test('chunk_map: PAMB/PAMC header, MSB-first bits, all_ready, size check (§8)', () => {
  const map = createChunkMap(10);
  assert.equal(map.length, CHUNK_MAP_HEADER_SIZE + 2);
  assert.deepEqual([...map.subarray(0, 16)], [0x50, 0x41, 0x4d, 0x42, 1, 0, 0, 0, 0x50, 0x41, 0x4d, 0x43, 0, 0, 0, 0]);
  const { header, bitmap } = decodeChunkMap(map, 10);
  assert.equal(header.allReady, false);
  setChunkReady(bitmap, 0);
  setChunkReady(bitmap, 9);
  assert.deepEqual([...bitmap], [0x80, 0x40]);
  assert.ok(isChunkReady(bitmap, 9) && !isChunkReady(bitmap, 8));
  for (let i = 0; i < 10; i++) setChunkReady(bitmap, i);
  assert.ok(allChunksReady(bitmap, 10));
  encodeChunkMapHeader({ version: 1, allReady: true }, map);
  assert.deepEqual([...map.subarray(12, 16)], [0x50, 0x41, 0x4d, 0x4d]); // "PAMM"
  assert.equal(decodeChunkMap(map, 10).header.allReady, true);
  assert.throws(() => decodeChunkMap(map, 17), /expected 4099/);
});

test('.blob.meta cache layout: CI padded to 4 KiB + header copy (§8)', () => {
  const range = blobMetaRange(info)!;
  const meta = decodeBlobMeta(blob.subarray(range.offset, range.offset + range.size), info);
  const file = encodeBlobMetaCache(meta.ciData, encodeBlobMetaHeader(meta.header));
  assert.equal(file.length, blobMetaCacheSize(32));
  assert.equal(file.length, 8192);
  assert.equal(new DataView(file.buffer).getUint32(4096, true), BLOB_CCT_MAGIC);
  const back = decodeBlobMetaCache(file, info);
  assert.deepEqual(back.chunks, meta.chunks);
  assert.deepEqual(decodeBlobMetaHeader(file, 4096), meta.header);
  assert.throws(() => decodeBlobMetaCache(file.subarray(0, 8000), info), FormatError);
  assert.equal(info.features & BlobFeatures.CHUNK_INFO_V2, 0);
});
