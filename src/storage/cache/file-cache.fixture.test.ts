// The upstream 2.2 RAFS v6 fixture (bootstrap + blob, spec §12) read through FileCache: chunk
// records from the bootstrap's chunk table, cross-checked against the blob's CI, digests verified,
// cache files laid out as nydusd writes them (§8).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../../../test/helpers/paths.js';
import { BLOB_CCT_HEADER_SIZE, encodeBlobMetaCache } from '../../format/blob/index.js';
import { RAFS_CHUNK_INFO_SIZE, decodeChunkInfo, type ChunkInfo } from '../../format/chunk-info.js';
import { decodeRafsV6Blob, rafsV6BlobToBlobInfo } from '../../format/rafs-v6/blob-table.js';
import { decodeRafsV6SuperBlockExt } from '../../format/rafs-v6/ext-superblock.js';
import { LocalFsBackend } from '../backend/localfs.js';
import { RecordingBackend } from '../test-support.js';
import { FileCache } from './file-cache.js';
import { testDir } from '../../../test/helpers/tmp.js';

const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
const blobBytes = new Uint8Array(readFileSync(FIXTURE_V6_22_BLOB));
const ext = decodeRafsV6SuperBlockExt(boot);
const blob = rafsV6BlobToBlobInfo(decodeRafsV6Blob(boot, ext.blobTableOffset));
const chunks: ChunkInfo[] = [];
for (let off = ext.chunkTableOffset; off < ext.chunkTableOffset + ext.chunkTableSize; off += RAFS_CHUNK_INFO_SIZE) chunks.push(decodeChunkInfo(boot, off));
const be = new RecordingBackend(new LocalFsBackend({ dir: dirname(FIXTURE_V6_22_BLOB) }));
after(() => be.close());

test('upstream v6 2.2 fixture: chunks read, verified and cached in the upstream layout', async () => {
  assert.equal(chunks.length, blob.chunkCount);
  const work = testDir('nydus-fixture-cache-');
  const fc = new FileCache({ workDir: work, backend: be, validate: true, useBlobMeta: true });
  const got = await fc.readChunks(blob, chunks);
  got.forEach((d, i) => assert.equal(d.length, chunks[i]!.uncompressedSize));
  await fc.close();

  const base = join(work, blob.blobId);
  assert.equal(statSync(`${base}.blob.data`).size, blob.uncompressedSize);
  const data = readFileSync(`${base}.blob.data`);
  chunks.forEach((c, i) => assert.deepEqual(data.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedSize), Buffer.from(got[i]!)));
  const map = readFileSync(`${base}.blob.data.chunk_map`);
  assert.equal(map.length, 4096 + 1);
  assert.equal(map.readUInt32LE(12), 0x4d4d4150, 'PAMM: complete');
  assert.equal(map[4096], 0b1100_0000);
  const ci = blobBytes.subarray(blob.metaCiOffset, blob.metaCiOffset + blob.metaCiCompressedSize);
  const hdr = blobBytes.subarray(blob.metaCiOffset + blob.metaCiCompressedSize, blob.metaCiOffset + blob.metaCiCompressedSize + BLOB_CCT_HEADER_SIZE);
  assert.deepEqual(readFileSync(`${base}.blob.meta`), Buffer.from(encodeBlobMetaCache(ci, hdr)));

  const before = be.requests.length;
  const fc2 = new FileCache({ workDir: work, backend: be, validate: true, useBlobMeta: true });
  const again = await fc2.readChunks(blob, chunks);
  assert.deepEqual(again.map((b) => Buffer.from(b)), got.map((b) => Buffer.from(b)));
  assert.equal(be.requests.length, before, 'warm restart: no backend reads');
  await fc2.close();
});
