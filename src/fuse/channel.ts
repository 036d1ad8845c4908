// /dev/fuse I/O for one worker: blocking and non-blocking request reads, reply writes.
// The kernel returns one whole request per read(2) and takes one whole reply per write(2)/writev(2).
import * as fs from 'node:fs';
import type { DeviceWriter } from './dispatch.js';

/** A read ended because the connection is gone (umount or abort): ENODEV from the kernel. */
export const SESSION_ENDED = -1;

function code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

/** read(2) errors that just mean "try again": ENOENT = the request was interrupted before we got it. */
function retryable(c: string | undefined): boolean {
  return c === 'ENOENT' || c === 'EINTR' || c === 'EAGAIN';
}

export class FuseChannel implements DeviceWriter {
  /** Replies that failed with something other than ENOENT (dropped). */
  writeErrors = 0;
  ended = false;

  constructor(readonly fd: number) {}

  /** Blocking read of one request into `buf`; SESSION_ENDED on ENODEV. Blocks this thread only. */
  readSync(buf: Buffer): number {
    for (;;) {
      try {
        return fs.readSync(this.fd, buf, 0, buf.length, null);
      } catch (e) {
        const c = code(e);
        if (retryable(c)) continue;
        if (c === 'ENODEV' || c === 'EBADF') {
          this.ended = true;
          return SESSION_ENDED;
        }
        throw e;
      }
    }
  }

  /** Same, on the libuv pool, so this thread's event loop keeps running (pending async replies). */
  read(buf: Buffer, cb: (err: unknown, n: number) => void): void {
    fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        const c = code(err);
        if (retryable(c)) return this.read(buf, cb);
        if (c === 'ENODEV' || c === 'EBADF') {
          this.ended = true;
          return cb(null, SESSION_ENDED);
        }
        return cb(err, 0);
      }
      cb(null, n);
    });
  }

  write(b: Buffer): void {
    try {
      fs.writeSync(this.fd, b);
    } catch (e) {
      this.writeFailed(e);
    }
  }

  writev(parts: Buffer[]): void {
    try {
      fs.writevSync(this.fd, parts);
    } catch (e) {
      this.writeFailed(e);
    }
  }

  private writeFailed(e: unknown): void {
    const c = code(e);
    // ENOENT: the request was interrupted/aborted and the kernel no longer wants the reply.
    if (c === 'ENOENT') return;
    if (c === 'ENODEV' || c === 'EBADF') {
      this.ended = true;
      return;
    }
    this.writeErrors++;
  }
}
