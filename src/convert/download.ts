// Downloads a registry blob to a file, checking its digest on the way.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NydusError } from '../util/errors.js';
import { checkDigest } from './reference.js';

/** Writes `stream` to `path`; throws ERR_DIGEST_MISMATCH unless its content has `digest`. Returns the size. */
export async function downloadTo(stream: NodeJS.ReadableStream, path: string, digest: string): Promise<number> {
  const h = createHash(checkDigest(digest, 'source blob').algorithm);
  let size = 0;
  const tap = new Transform({
    transform(c: Buffer, _e, cb) {
      h.update(c);
      size += c.length;
      cb(null, c);
    },
  });
  await pipeline(stream, tap, createWriteStream(path));
  const got = `${checkDigest(digest, 'source blob').algorithm}:${h.digest('hex')}`;
  if (got !== digest) throw new NydusError('ERR_DIGEST_MISMATCH', `source blob ${digest}: downloaded content has digest ${got}`);
  return size;
}
