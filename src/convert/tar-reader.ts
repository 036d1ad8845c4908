// Streaming tar parser for OCI layers (ustar, GNU long names, PAX records incl. SCHILY.xattr):
// push-style, so a multi-GiB layer is processed chunk by chunk and file data never accumulates.
// Header sizes are checked against hard limits; PAX/long-name payloads are capped at 1 MiB.
import { NydusError } from '../util/errors.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as written (after PAX/GNU long-name resolution). */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devMajor: number;
  devMinor: number;
  xattrs: Map<string, Buffer>;
}

export interface TarVisitor {
  entry(h: TarHeader): void;
  data?(chunk: Buffer): void;
  end?(h: TarHeader): void;
}

const BLOCK = 512;
const META_LIMIT = 1 << 20;
const TYPES: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

function tarError(msg: string): NydusError {
  return new NydusError('ERR_FORMAT_INVALID', `layer tar: ${msg}`);
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

/** Octal (space/NUL terminated) or GNU base-256 numbers. */
function num(b: Buffer, off: number, len: number, field: string): number {
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    if ((b[off]! & 0x7f) !== 0 || !Number.isSafeInteger(v)) throw tarError(`${field} in base-256 is out of range`);
    return v;
  }
  const s = b.subarray(off, off + len).toString('latin1').replace(/[\0 ]+$/g, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw tarError(`${field} '${s}' is not an octal number`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return num(h, 148, 8, 'checksum') === sum;
}

function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let p = 0;
  while (p < buf.length) {
    const sp = buf.indexOf(0x20, p);
    if (sp < 0) throw tarError('malformed PAX record');
    const len = Number(buf.subarray(p, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= sp - p || p + len > buf.length) throw tarError('malformed PAX record length');
    const rec = buf.subarray(sp + 1, p + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw tarError('PAX record without "="');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    p += len;
  }
  return out;
}

export class TarParser {
  readonly #v: TarVisitor;
  #buf: Buffer = Buffer.alloc(0);
  /** Bytes of the current entry's data still to deliver, then padding to skip. */
  #remaining = 0;
  #pad = 0;
  #cur: TarHeader | undefined;
  /** Pending PAX / GNU long-name metadata entry being collected. */
  #meta: { kind: string; size: number; parts: Buffer[]; got: number } | undefined;
  #pax = new Map<string, Buffer>();
  #longName: string | undefined;
  #longLink: string | undefined;
  #zeroBlocks = 0;
  #done = false;

  constructor(visitor: TarVisitor) {
    this.#v = visitor;
  }

  write(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      if (this.#done) {
        this.#buf = Buffer.alloc(0);
        return;
      }
      if (this.#remaining > 0) {
        if (!this.#buf.length) return;
        const n = Math.min(this.#remaining, this.#buf.length);
        const part = this.#buf.subarray(0, n);
        this.#buf = this.#buf.subarray(n);
        this.#remaining -= n;
        if (this.#meta) {
          this.#meta.parts.push(Buffer.from(part));
          this.#meta.got += n;
        } else this.#v.data?.(part);
        if (this.#remaining > 0) return;
        if (this.#meta) this.#finishMeta();
        else if (this.#cur) this.#v.end?.(this.#cur);
        this.#cur = undefined;
      }
      if (this.#pad > 0) {
        const n = Math.min(this.#pad, this.#buf.length);
        this.#buf = this.#buf.subarray(n);
        this.#pad -= n;
        if (this.#pad > 0) return;
      }
      if (this.#buf.length < BLOCK) return;
      const h = this.#buf.subarray(0, BLOCK);
      this.#buf = this.#buf.subarray(BLOCK);
      this.#header(h);
    }
  }

  /** Call at end of stream: a truncated entry is an error (the archive lied about a size). */
  end(): void {
    if (this.#remaining > 0 || this.#meta) throw tarError(`truncated archive: entry '${this.#cur?.name ?? '(metadata)'}' is missing ${this.#remaining} bytes`);
  }

  #finishMeta(): void {
    const m = this.#meta!;
    this.#meta = undefined;
    const data = Buffer.concat(m.parts);
    if (m.kind === 'x') for (const [k, v] of parsePax(data)) this.#pax.set(k, v);
    else if (m.kind === 'L') this.#longName = cstr(data, 0, data.length);
    else if (m.kind === 'K') this.#longLink = cstr(data, 0, data.length);
    // 'g' (global PAX) carries no per-entry facts we use.
  }

  #header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      // Two zero blocks end the archive; anything after them is ignored (as GNU tar does).
      if (++this.#zeroBlocks >= 2) this.#done = true;
      return;
    }
    this.#zeroBlocks = 0;
    if (!checksumOk(h)) throw tarError('header checksum mismatch (not a tar archive or corrupt)');
    const flag = String.fromCharCode(h[156]!);
    const size = num(h, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_LIMIT) throw tarError(`${flag === 'x' || flag === 'g' ? 'PAX' : 'GNU long-name'} header of ${size} bytes exceeds ${META_LIMIT}`);
      this.#meta = { kind: flag, size, parts: [], got: 0 };
      this.#remaining = size;
      this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (size === 0) this.#finishMeta();
      return;
    }
    const type = TYPES[flag];
    if (!type) throw tarError(`unsupported entry type '${flag === '\0' ? '\\0' : flag}' for '${cstr(h, 0, 100)}'`);
    const magic = h.subarray(257, 263).toString('latin1');
    const prefix = magic.startsWith('ustar') && magic !== 'ustar ' ? cstr(h, 345, 155) : '';
    let name = this.#longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    let linkname = this.#longLink ?? cstr(h, 157, 100);
    let eSize = size;
    let uid = num(h, 108, 8, 'uid');
    let gid = num(h, 116, 8, 'gid');
    let mtime = num(h, 136, 12, 'mtime');
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of this.#pax) {
      const s = v.toString('utf8');
      if (k === 'path') name = s;
      else if (k === 'linkpath') linkname = s;
      else if (k === 'size') eSize = this.#paxNum(k, s);
      else if (k === 'uid') uid = this.#paxNum(k, s);
      else if (k === 'gid') gid = this.#paxNum(k, s);
      else if (k === 'mtime') mtime = Math.floor(Number(s));
      else if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) xattrs.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(s, 'base64'));
    }
    this.#pax = new Map();
    this.#longName = undefined;
    this.#longLink = undefined;
    // Only regular files carry data; a size on a link/dir header is ignored by tar readers.
    const dataSize = type === 'file' ? eSize : type === 'link' || type === 'symlink' || type === 'dir' ? 0 : eSize;
    const hdr: TarHeader = { name, type, mode: num(h, 100, 8, 'mode') & 0o7777, uid, gid, size: type === 'file' ? eSize : 0, mtime, linkname, devMajor: num(h, 329, 8, 'devmajor'), devMinor: num(h, 337, 8, 'devminor'), xattrs };
    this.#cur = hdr;
    this.#v.entry(hdr);
    this.#remaining = dataSize;
    this.#pad = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    if (dataSize === 0) {
      this.#v.end?.(hdr);
      this.#cur = undefined;
    }
  }

  #paxNum(k: string, s: string): number {
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw tarError(`PAX ${k} '${s}' is not a valid number`);
    return Number(s);
  }
}

/** Normalizes an entry path ("./a//b/" → "a/b"); refuses absolute paths, ".." and NUL. */
export function safeEntryPath(name: string, what = 'entry'): string {
  if (name.includes('\0')) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: ${what} '${name}' contains NUL`);
  if (name.startsWith('/')) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: ${what} '${name}' is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: ${what} '${name}' contains '..'`);
  return parts.join('/');
}

/**
 * Tracks one layer's entries to refuse paths that go through a symlink the same layer created
 * (an extractor would write outside the tree) and hardlinks whose target is unsafe.
 */
export class LayerPathGuard {
  readonly #symlinks = new Set<string>();

  check(h: TarHeader): string {
    const p = safeEntryPath(h.name);
    this.#throughSymlink(p, `entry '${h.name}'`);
    if (h.type === 'link') {
      const t = safeEntryPath(h.linkname, `hardlink target of '${h.name}'`);
      if (t === '') throw new NydusError('ERR_TAR_UNSAFE', `layer tar: hardlink '${h.name}' points at the root`);
      this.#throughSymlink(t, `hardlink target '${h.linkname}'`);
      if (this.#symlinks.has(t)) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: hardlink '${h.name}' points at symlink '${h.linkname}'`);
    }
    if (h.type === 'symlink') this.#symlinks.add(p);
    else this.#symlinks.delete(p);
    return p;
  }

  #throughSymlink(p: string, what: string): void {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.#symlinks.has(dir)) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: ${what} goes through symlink '${dir}'`);
    }
  }
}
