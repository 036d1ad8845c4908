// Worker thread of the chunk pool: digest + CRC-32C + compression of one chunk (spec §3.2, §3.3).
// Buffers arrive and leave as transferred ArrayBuffers, so nothing is structured-cloned.
import { parentPort } from 'node:worker_threads';
import { compressChunk } from '../format/compress.js';
import { crc32c, digest } from '../format/digest.js';
import type { ChunkJob, ChunkJobResult } from './compress-pool.js';

const port = parentPort;
if (!port) throw new Error('compress-worker must run in a worker thread');

port.on('message', (job: ChunkJob) => {
  try {
    const data = new Uint8Array(job.buf, 0, job.length);
    const d = digest(data, job.digester);
    const dig = new Uint8Array(32);
    dig.set(d.subarray(0, 32));
    const crc = crc32c(data);
    const c = compressChunk(data, job.compressor);
    let out: Uint8Array;
    if (c.compressed) {
      // Native compressors return buffers we may not detach: copy into a transferable one.
      out = new Uint8Array(c.data.length);
      out.set(c.data);
    } else {
      out = data;
    }
    const res: ChunkJobResult = { id: job.id, digest: dig.buffer, crc32: crc, compressed: c.compressed, buf: out.buffer as ArrayBuffer, length: out.length };
    port.postMessage(res, [res.buf, res.digest]);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message });
  }
});
