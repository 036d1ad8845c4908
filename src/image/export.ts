// `nydus-image export --block`: a RAFS v6 image as one raw EROFS disk the kernel mounts by itself
// (spec §10 item 6, "flat mode"): the bootstrap zero-padded to the first device's mapped_blkaddr,
// then each blob's uncompressed chunk layout (<blob>.blob.data) at its own mapped_blkaddr.
// `writeBlobData` produces just the per-blob .blob.data files (the kernel's `device=` form).
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RafsV6Super } from '../rafs/v6.js';
import type { RafsSuper } from '../rafs/types.js';
import { FormatError } from '../util/errors.js';
import { LocalBlobs, type LocalBlobSource } from './local-blobs.js';
import { walkRafs } from './walk.js';
import { isReg } from '../format/image-model.js';

const BLOCK = 4096;

function writeAt(fd: number, data: Uint8Array, pos: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, pos + off);
}

/** Writes every referenced chunk of every blob, decompressed, at base + uncompressedOffset. */
function writeChunks(sb: RafsSuper, blobs: LocalBlobs, target: (blobIndex: number) => { fd: number; base: number }): number {
  const done = new Set<string>();
  let n = 0;
  walkRafs(sb, ({ inode }) => {
    if (!isReg(inode.mode)) return;
    for (const c of sb.fileChunks(inode.ino)) {
      const key = `${c.blobIndex}:${c.index}`;
      if (done.has(key)) continue;
      done.add(key);
      const t = target(c.blobIndex);
      writeAt(t.fd, blobs.readChunk(c, true), t.base + c.uncompressedOffset);
      n++;
    }
  });
  return n;
}

function requireV6(sb: RafsSuper): RafsV6Super {
  if (!(sb instanceof RafsV6Super)) throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'bootstrap', 'only RAFS v6 images can be exported as EROFS block images');
  return sb;
}

/** One `<blobId>.blob.data` per blob in `outDir`, sized to whole blocks (§10 item 4). Returns the paths in device order. */
export function writeBlobData(sb: RafsSuper, src: LocalBlobSource, outDir: string): string[] {
  const v6 = requireV6(sb);
  const blobs = new LocalBlobs(sb.blobs, src);
  const fds = v6.blobs.map((b) => openSync(join(outDir, `${b.blobId}.blob.data`), 'w'));
  try {
    v6.blobs.forEach((b, i) => ftruncateSync(fds[i]!, Math.max(v6.devices[i]!.blocks * BLOCK, Math.ceil(b.uncompressedSize / BLOCK) * BLOCK)));
    writeChunks(sb, blobs, (i) => ({ fd: fds[i]!, base: 0 }));
  } finally {
    fds.forEach((fd) => closeSync(fd));
    blobs.close();
  }
  return v6.blobs.map((b) => join(outDir, `${b.blobId}.blob.data`));
}

/** The flat disk image (the bootstrap is the one `sb` was opened from); returns its size in bytes. */
export function exportBlock(sb: RafsSuper, src: LocalBlobSource, output: string): number {
  const v6 = requireV6(sb);
  const bootstrap = v6.buf;
  const blobs = new LocalBlobs(sb.blobs, src);
  const fd = openSync(output, 'w');
  try {
    let size = Math.ceil(bootstrap.length / BLOCK) * BLOCK;
    for (const d of v6.devices) {
      if (d.mappedBlkaddr * BLOCK < bootstrap.length) throw new FormatError('ERR_FORMAT_INVALID', 'EROFS device slot', `mapped_blkaddr ${d.mappedBlkaddr} overlaps the bootstrap`);
      size = Math.max(size, (d.mappedBlkaddr + d.blocks) * BLOCK);
    }
    ftruncateSync(fd, size);
    writeAt(fd, bootstrap, 0);
    writeChunks(sb, blobs, (i) => ({ fd, base: v6.devices[i]!.mappedBlkaddr * BLOCK }));
    return size;
  } finally {
    closeSync(fd);
    blobs.close();
  }
}
