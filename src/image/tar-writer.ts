// A minimal ustar + PAX tar writer for `nydus-image unpack` (OCI layer tars): long names, xattrs
// (SCHILY.xattr.*), sub-second mtimes and large numbers go into a PAX 'x' header before the entry.
import { writeSync } from 'node:fs';

export const TAR_BLOCK = 512;

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';
const TYPEFLAG: Record<TarType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export interface TarEntry {
  /** Path bytes without a leading '/' (directories without trailing '/'; added here). */
  path: Uint8Array;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  linkname?: Uint8Array;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Array<[Uint8Array, Uint8Array]>;
}

function isAscii(b: Uint8Array): boolean {
  for (const c of b) if (c >= 0x80 || c === 0) return false;
  return true;
}

function octal(h: Buffer, off: number, len: number, v: number): boolean {
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  h.write(s.padStart(len - 1, '0'), off, 'ascii');
  h[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function header(name: Uint8Array, type: string, e: Omit<TarEntry, 'path' | 'type'>, size: number, linkname: Uint8Array | undefined): { block: Buffer; fits: boolean } {
  const h = Buffer.alloc(TAR_BLOCK);
  let fits = true;
  h.set(name.subarray(0, 100), 0);
  // Every field must be written even when an earlier one did not fit (`fits &&= f()` would skip
  // f() once fits is false and leave size/mode/mtime zero in the ustar header of long paths).
  const put = (ok: boolean): void => {
    fits = ok && fits;
  };
  put(name.length <= 100);
  put(octal(h, 100, 8, e.mode & 0o7777));
  put(octal(h, 108, 8, e.uid));
  put(octal(h, 116, 8, e.gid));
  put(octal(h, 124, 12, size));
  put(octal(h, 136, 12, Math.max(0, Math.floor(e.mtime))));
  h.fill(0x20, 148, 156);
  h.write(type, 156, 'ascii');
  if (linkname) {
    h.set(linkname.subarray(0, 100), 157);
    put(linkname.length <= 100);
  }
  h.write('ustar\u000000', 257, 'binary');
  octal(h, 329, 8, e.devMajor ?? 0);
  octal(h, 337, 8, e.devMinor ?? 0);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 'binary');
  return { block: h, fits };
}

/** Encodes the header block(s) of one entry (PAX header first when needed). */
export function encodeTarHeader(e: TarEntry): Buffer {
  const path = e.type === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : Buffer.from(e.path);
  const size = e.type === 'file' ? e.size : 0;
  const main = header(path, TYPEFLAG[e.type], e, size, e.linkname);
  const pax: Buffer[] = [];
  if (!main.fits || !isAscii(path)) pax.push(paxRecord('path', path));
  if (e.linkname && (e.linkname.length > 100 || !isAscii(e.linkname))) pax.push(paxRecord('linkpath', e.linkname));
  if (size > 0o77777777777) pax.push(paxRecord('size', Buffer.from(String(size))));
  if (e.uid > 0o7777777) pax.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > 0o7777777) pax.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (e.mtimeNsec) pax.push(paxRecord('mtime', Buffer.from(`${e.mtime}.${String(e.mtimeNsec).padStart(9, '0')}`)));
  for (const [k, v] of e.xattrs ?? []) pax.push(paxRecord(`SCHILY.xattr.${Buffer.from(k).toString('latin1')}`, v));
  if (pax.length === 0) return main.block;
  const body = Buffer.concat(pax);
  const paxName = Buffer.from(`PaxHeaders/${Buffer.from(path.subarray(-80)).toString('latin1').replace(/[^\x20-\x7e]/g, '_')}`);
  const ph = header(paxName.subarray(0, 100), 'x', { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: e.mtime, mtimeNsec: 0 }, body.length, undefined).block;
  return Buffer.concat([ph, body, Buffer.alloc(padding(body.length)), main.block]);
}

export function padding(n: number): number {
  return (TAR_BLOCK - (n % TAR_BLOCK)) % TAR_BLOCK;
}

/** Sequential tar output to a file descriptor. */
export class TarFileWriter {
  readonly #fd: number;
  #pending = 0;
  constructor(fd: number) {
    this.#fd = fd;
  }
  #write(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
  }
  entry(e: TarEntry): void {
    if (this.#pending) throw new Error('previous tar entry data incomplete');
    this.#write(encodeTarHeader(e));
    this.#pending = e.type === 'file' ? e.size : 0;
    if (this.#pending === 0) return;
  }
  data(b: Uint8Array): void {
    if (b.length > this.#pending) throw new Error('tar entry data longer than its declared size');
    this.#write(b);
    this.#pending -= b.length;
  }
  /** Pads the current entry's data to a block boundary. */
  endEntry(size: number): void {
    if (this.#pending) throw new Error(`tar entry data short by ${this.#pending} bytes`);
    const p = padding(size);
    if (p) this.#write(Buffer.alloc(p));
  }
  finish(): void {
    this.#write(Buffer.alloc(TAR_BLOCK * 2));
  }
}
