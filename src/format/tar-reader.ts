// The one tar reader (layer tars for `create -t tar-rafs`, nydusify's layer pipeline and `check`):
// ustar/GNU/PAX headers, GNU long names ('L'/'K'), PAX records (path, linkpath, size, mtime, uid,
// gid, SCHILY.xattr.*, LIBARCHIVE.xattr.*; global 'g' records apply to every later entry), base-256
// numbers. Names are the raw bytes as stored. Never buffers an entry body. Two drivers share one
// header decoder, so the builder and nydusify's safety tap see exactly the same entries:
//  - readTar(): pull, an async iterable of entries whose bodies stream from the input's own chunks;
//  - TarParser: push (write/end) for a tap inside a stream pipeline, with a visitor.
// Like upstream's builder (tar-rs with `set_ignore_zeros`), zero blocks are skipped rather than
// ending the archive, and every entry skips the data size its header declares (only regular files
// expose it as a body).
import { NydusError } from '../util/errors.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  type: TarEntryType;
  /** Raw path bytes as stored (not normalised), after PAX / GNU long-name resolution. */
  path: Buffer;
  linkpath: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** Data size of a regular file (0 for other types). */
  size: number;
  devMajor: number;
  devMinor: number;
  /** Extended attributes from PAX records, in archive order (global records first). */
  xattrs: Array<[Buffer, Buffer]>;
  /** Offset of the header in the stream (for messages). */
  offset: number;
}

export interface TarEntry extends TarHeader {
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;
/** Cap on one PAX / GNU long-name record (they are buffered whole). */
export const TAR_META_LIMIT = 16 << 20;

function tarError(msg: string): NydusError {
  return new NydusError('ERR_FORMAT_INVALID', `tar: ${msg}`);
}

function cstr(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/** Octal (NUL/space terminated) or GNU base-256. */
function parseNumber(b: Buffer, field: string): number {
  if (b.length > 0 && (b[0]! & 0x80) !== 0) {
    if (b[0] === 0xff) throw tarError(`negative base-256 ${field}`);
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) {
      v = v * 256 + b[i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw tarError(`${field} too large`);
    }
    return v;
  }
  const s = b.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw tarError(`invalid octal ${field} '${s}'`);
  return parseInt(s, 8);
}

/** Unsigned or (old writers) signed byte sum with the checksum field read as spaces. */
function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumber(h.subarray(148, 156), 'checksum');
  } catch {
    return false;
  }
  let u = 0;
  let sgn = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    u += c;
    sgn += c > 127 ? c - 256 : c;
  }
  return stored === u || stored === sgn;
}

interface Pax {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  mtime?: [number, number];
  uid?: number;
  gid?: number;
  xattrs: Array<[Buffer, Buffer]>;
}

function parsePax(data: Buffer, into: Pax): void {
  let p = 0;
  while (p < data.length) {
    if (data[p] === 0) break;
    const sp = data.indexOf(0x20, p);
    if (sp < 0) throw tarError('malformed PAX record');
    const len = Number(data.toString('latin1', p, sp));
    if (!Number.isInteger(len) || len <= sp - p || p + len > data.length) throw tarError('malformed PAX record length');
    const rec = data.subarray(sp + 1, p + len - 1); // without the trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw tarError('malformed PAX record (no "=")');
    const key = rec.toString('utf8', 0, eq);
    const val = rec.subarray(eq + 1);
    const num = (): number => {
      const s = val.toString('latin1');
      if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw tarError(`invalid PAX ${key} '${s}'`);
      return Number(s);
    };
    if (key === 'path') into.path = Buffer.from(val);
    else if (key === 'linkpath') into.linkpath = Buffer.from(val);
    else if (key === 'size') into.size = num();
    else if (key === 'uid') into.uid = num();
    else if (key === 'gid') into.gid = num();
    else if (key === 'mtime') {
      const m = /^(\d+)(?:\.(\d{1,9})\d*)?$/.exec(val.toString('latin1'));
      if (m) into.mtime = [Number(m[1]), Number((m[2] ?? '').padEnd(9, '0'))];
    } else if (key.startsWith('SCHILY.xattr.')) into.xattrs.push([Buffer.from(rec.subarray('SCHILY.xattr.'.length, eq)), Buffer.from(val)]);
    else if (key.startsWith('LIBARCHIVE.xattr.')) {
      // bsdtar: the name URL-encoded, the value base64.
      into.xattrs.push([Buffer.from(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length))), Buffer.from(val.toString('latin1'), 'base64')]);
    }
    p += len;
  }
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** What a header block asks the driver to do next. */
type Step =
  | { kind: 'zero' }
  /** A PAX / long-name record of `size` bytes follows: read it (plus padding) and give it to meta(). */
  | { kind: 'meta'; flag: string; size: number }
  /** An entry; `skip` bytes of data (plus padding) follow it. */
  | { kind: 'entry'; header: TarHeader; skip: number };

/** Header decoding and the PAX / GNU long-name state carried from one header to the next. */
class HeaderDecoder {
  #global: Pax = { xattrs: [] };
  #local: Pax = { xattrs: [] };
  #longName: Buffer | undefined;
  #longLink: Buffer | undefined;

  constructor(readonly maxMetaSize: number) {}

  header(h0: Buffer, at: number): Step {
    if (h0.every((b) => b === 0)) return { kind: 'zero' };
    // Copy so later reads cannot disturb it; outside the shared 8 KiB pool, where long-lived name
    // slices allocated between headers would pin each slab (~0.5 KiB per entry for the whole build).
    const h = Buffer.allocUnsafeSlow(BLOCK);
    h.set(h0);
    if (!checksumOk(h)) throw tarError(`bad header checksum at offset ${at} (not a tar file, or corrupt)`);
    const flag = String.fromCharCode(h[156]!);
    const hdrSize = parseNumber(h.subarray(124, 136), 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (hdrSize > this.maxMetaSize) throw tarError(`${flag === 'x' || flag === 'g' ? 'PAX' : 'GNU long name'} record at offset ${at} is too large (${hdrSize} bytes)`);
      return { kind: 'meta', flag, size: hdrSize };
    }
    const type = TYPES[flag];
    if (!type) throw tarError(`unsupported entry type '${flag === '\0' ? '\\0' : flag}' at offset ${at}`);
    let path = cstr(h.subarray(0, 100));
    if (h.toString('latin1', 257, 263) === 'ustar\0') {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix.length > 0) path = Buffer.concat([prefix, Buffer.from('/'), path]);
    }
    const g = this.#global;
    const l = this.#local;
    const size = l.size ?? g.size ?? hdrSize;
    const mtime = l.mtime ?? g.mtime ?? [parseNumber(h.subarray(136, 148), 'mtime'), 0];
    const isDev = type === 'char' || type === 'block';
    const header: TarHeader = {
      type,
      path: l.path ?? g.path ?? this.#longName ?? path,
      linkpath: l.linkpath ?? g.linkpath ?? this.#longLink ?? cstr(h.subarray(157, 257)),
      mode: parseNumber(h.subarray(100, 108), 'mode') & 0o7777,
      uid: l.uid ?? g.uid ?? parseNumber(h.subarray(108, 116), 'uid'),
      gid: l.gid ?? g.gid ?? parseNumber(h.subarray(116, 124), 'gid'),
      mtime: mtime[0],
      mtimeNsec: mtime[1],
      size: type === 'file' ? size : 0,
      devMajor: isDev ? parseNumber(h.subarray(329, 337), 'devmajor') : 0,
      devMinor: isDev ? parseNumber(h.subarray(337, 345), 'devminor') : 0,
      xattrs: [...g.xattrs, ...l.xattrs],
      offset: at,
    };
    this.#local = { xattrs: [] };
    this.#longName = this.#longLink = undefined;
    return { kind: 'entry', header, skip: size };
  }

  meta(flag: string, data: Buffer): void {
    if (flag === 'x') parsePax(data, this.#local);
    else if (flag === 'g') parsePax(data, this.#global);
    else if (flag === 'L') this.#longName = Buffer.from(cstr(data));
    else this.#longLink = Buffer.from(cstr(data));
  }
}

const padding = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;

class ByteSource {
  #it: AsyncIterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #eof = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(src: AsyncIterable<Uint8Array>) {
    this.#it = src[Symbol.asyncIterator]();
  }

  async #pull(): Promise<boolean> {
    if (this.#eof) return false;
    for (;;) {
      const r = await this.#it.next();
      if (r.done) {
        this.#eof = true;
        return false;
      }
      if (r.value.length === 0) continue;
      const v = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      const rest = this.#buf.length - this.#pos;
      this.#buf = rest > 0 ? Buffer.concat([this.#buf.subarray(this.#pos), v]) : v;
      this.#pos = 0;
      return true;
    }
  }

  /** Exactly n bytes, or null at a clean end of input; throws when the input ends inside them. */
  async readExact(n: number, what: string): Promise<Buffer | null> {
    while (this.#buf.length - this.#pos < n) {
      if (!(await this.#pull())) {
        if (this.#buf.length === this.#pos) return null;
        throw tarError(`unexpected end of input in ${what} at offset ${this.offset}`);
      }
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.offset += n;
    return out;
  }

  /** Yields exactly n bytes as views of the input chunks. */
  async *stream(n: number, what: () => string): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.#pos === this.#buf.length && !(await this.#pull())) {
        throw tarError(`${what()}: input ends ${n} bytes before the size its header declares`);
      }
      const take = Math.min(n, this.#buf.length - this.#pos);
      const out = this.#buf.subarray(this.#pos, this.#pos + take);
      this.#pos += take;
      this.offset += take;
      n -= take;
      yield out;
    }
  }

  async skip(n: number, what: () => string): Promise<void> {
    for await (const _ of this.stream(n, what));
  }
}

/** Iterates the entries of a tar stream. Consume or abandon each body before asking for the next entry. */
export async function* readTar(input: AsyncIterable<Uint8Array>, maxMetaSize = TAR_META_LIMIT): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  const dec = new HeaderDecoder(maxMetaSize);
  for (;;) {
    const at = src.offset;
    const h = await src.readExact(BLOCK, 'tar header');
    if (!h) break;
    const step = dec.header(h, at);
    if (step.kind === 'zero') continue;
    if (step.kind === 'meta') {
      const parts: Buffer[] = [];
      for await (const b of src.stream(step.size, () => `tar metadata record at offset ${at}`)) parts.push(Buffer.from(b));
      await src.skip(padding(step.size), () => `padding at offset ${at}`);
      dec.meta(step.flag, Buffer.concat(parts));
      continue;
    }
    const e = step.header;
    const name = (): string => `entry ${e.path.toString()}`;
    let read = 0;
    let body: AsyncIterable<Buffer> = (async function* (): AsyncGenerator<Buffer> {})();
    if (e.type === 'file') {
      const inner = src.stream(e.size, name);
      body = (async function* (): AsyncGenerator<Buffer> {
        for await (const b of inner) {
          read += b.length;
          yield b;
        }
      })();
    }
    yield { ...e, body };
    await src.skip(step.skip - read, name);
    await src.skip(padding(step.skip), () => `padding of ${e.path.toString()}`);
  }
}

export interface TarVisitor {
  entry(h: TarHeader): void;
  /** Data of the current regular file, in order. */
  data?(chunk: Buffer): void;
  /** After the last data byte of an entry (at once for entries without data). */
  end?(h: TarHeader): void;
}

/** Push driver of the same decoder: write() chunks as they pass, end() at the end of the stream. */
export class TarParser {
  readonly #v: TarVisitor;
  readonly #dec: HeaderDecoder;
  #buf: Buffer = Buffer.alloc(0);
  /** Bytes consumed so far (header offsets in messages). */
  #offset = 0;
  /** Bytes of the current entry's data or meta record still to come, then padding to skip. */
  #remaining = 0;
  #pad = 0;
  #cur: TarHeader | undefined;
  #meta: { flag: string; parts: Buffer[] } | undefined;

  constructor(visitor: TarVisitor, maxMetaSize = TAR_META_LIMIT) {
    this.#v = visitor;
    this.#dec = new HeaderDecoder(maxMetaSize);
  }

  write(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      if (this.#remaining > 0) {
        if (!this.#buf.length) return;
        const n = Math.min(this.#remaining, this.#buf.length);
        const part = this.#buf.subarray(0, n);
        this.#take(n);
        this.#remaining -= n;
        if (this.#meta) this.#meta.parts.push(Buffer.from(part));
        else if (this.#cur?.type === 'file') this.#v.data?.(part);
        if (this.#remaining > 0) return;
        this.#close();
      }
      if (this.#pad > 0) {
        const n = Math.min(this.#pad, this.#buf.length);
        this.#take(n);
        this.#pad -= n;
        if (this.#pad > 0) return;
      }
      if (this.#buf.length < BLOCK) return;
      const h = this.#buf.subarray(0, BLOCK);
      const at = this.#offset;
      this.#take(BLOCK);
      const step = this.#dec.header(h, at);
      if (step.kind === 'zero') continue;
      const size = step.kind === 'meta' ? step.size : step.skip;
      if (step.kind === 'meta') this.#meta = { flag: step.flag, parts: [] };
      else {
        this.#cur = step.header;
        this.#v.entry(step.header);
      }
      this.#remaining = size;
      this.#pad = padding(size);
      if (size === 0) this.#close();
    }
  }

  /** Call at the end of the stream: an archive that stops inside a header or an entry is an error. */
  end(): void {
    if (this.#remaining > 0) throw tarError(`${this.#cur ? `entry ${this.#cur.path.toString()}` : 'metadata record'}: input ends ${this.#remaining} bytes before the size its header declares`);
    if (this.#buf.length > 0 && this.#pad === 0) throw tarError(`unexpected end of input in tar header at offset ${this.#offset}`);
  }

  #take(n: number): void {
    this.#buf = this.#buf.subarray(n);
    this.#offset += n;
  }

  #close(): void {
    if (this.#meta) this.#dec.meta(this.#meta.flag, Buffer.concat(this.#meta.parts));
    else if (this.#cur) this.#v.end?.(this.#cur);
    this.#meta = this.#cur = undefined;
  }
}

/** Input as is, or gunzipped when it starts with the gzip magic (upstream tar-rafs accepts both). */
export async function* maybeGunzip(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) return;
  const head = first.value;
  const rest: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => {
      let sent = false;
      return {
        next: async () => {
          if (!sent) {
            sent = true;
            return { done: false, value: head };
          }
          return it.next();
        },
      };
    },
  };
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) {
    const { createGunzip } = await import('node:zlib');
    const { Readable } = await import('node:stream');
    const raw = Readable.from(rest, { objectMode: false });
    const gz = createGunzip({ chunkSize: 1 << 20 });
    raw.on('error', (e) => gz.destroy(e));
    raw.pipe(gz);
    try {
      for await (const b of gz) yield b as Buffer;
    } catch (e) {
      throw tarError(`cannot decompress gzip layer: ${(e as Error).message}`);
    }
  } else {
    yield* rest;
  }
}
