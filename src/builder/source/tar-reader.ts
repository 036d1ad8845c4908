// Streaming tar reader: ustar/GNU/PAX headers, GNU long names ('L'/'K'), PAX records (path,
// linkpath, size, mtime, uid, gid, SCHILY.xattr.*), base-256 numbers. Never buffers an entry body:
// each entry's body is an async iterable over the input's own chunks, consumed (or skipped)
// before the next header is read. Zero blocks are skipped like upstream (`set_ignore_zeros`).
import { NydusError } from '../../util/errors.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  type: TarEntryType;
  /** Raw path bytes as stored (not normalised). */
  path: Buffer;
  linkpath: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  size: number;
  devMajor: number;
  devMinor: number;
  /** SCHILY.xattr.* records, in archive order. */
  xattrs: Array<[Buffer, Buffer]>;
  /** Offset of the header in the stream (for messages). */
  offset: number;
  body: AsyncIterable<Buffer>;
}

function tarError(msg: string): NydusError {
  return new NydusError('ERR_FORMAT_INVALID', `tar: ${msg}`);
}

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

function cstr(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

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

function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumber(h.subarray(148, 156), 'checksum');
  } catch {
    return false;
  }
  let u = 0;
  let sgn = 0;
  for (let i = 0; i < 512; i++) {
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
    const len = parseInt(data.toString('latin1', p, sp), 10);
    if (!Number.isFinite(len) || len <= sp - p || p + len > data.length) throw tarError('malformed PAX record length');
    const rec = data.subarray(sp + 1, p + len - 1); // without the trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw tarError('malformed PAX record (no "=")');
    const key = rec.toString('utf8', 0, eq);
    const val = rec.subarray(eq + 1);
    const num = (): number => {
      const n = Number(val.toString('latin1'));
      if (!Number.isFinite(n) || n < 0) throw tarError(`invalid PAX ${key} '${val.toString('latin1')}'`);
      return n;
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
    p += len;
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

/** Iterates the entries of a tar stream. Consume or abandon each body before asking for the next entry. */
export async function* readTar(input: AsyncIterable<Uint8Array>, maxMetaSize = 16 << 20): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  let global: Pax = { xattrs: [] };
  let local: Pax = { xattrs: [] };
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  for (;;) {
    const at = src.offset;
    const h0 = await src.readExact(512, 'tar header');
    if (!h0) break;
    if (h0.every((b) => b === 0)) continue;
    // Copy so later reads cannot disturb it; outside the shared 8 KiB pool, where long-lived name
    // slices allocated between headers would pin each slab (~0.5 KiB per entry for the whole build).
    const h = Buffer.allocUnsafeSlow(512);
    h.set(h0);
    if (!checksumOk(h)) throw tarError(`bad header checksum at offset ${at} (not a tar file, or corrupt)`);
    const flag = String.fromCharCode(h[156]!);
    const hdrSize = parseNumber(h.subarray(124, 136), 'size');
    const meta = async (what: string): Promise<Buffer> => {
      if (hdrSize > maxMetaSize) throw tarError(`${what} record at offset ${at} is too large (${hdrSize} bytes)`);
      const parts: Buffer[] = [];
      for await (const b of src.stream(hdrSize, () => `${what} at offset ${at}`)) parts.push(Buffer.from(b));
      await src.skip((512 - (hdrSize % 512)) % 512, () => `${what} padding at offset ${at}`);
      return Buffer.concat(parts);
    };
    if (flag === 'x') {
      parsePax(await meta('PAX header'), local);
      continue;
    }
    if (flag === 'g') {
      parsePax(await meta('PAX global header'), global);
      continue;
    }
    if (flag === 'L') {
      longName = cstr(await meta('GNU long name'));
      continue;
    }
    if (flag === 'K') {
      longLink = cstr(await meta('GNU long link name'));
      continue;
    }
    const type = TYPES[flag];
    if (!type) throw tarError(`unsupported entry type '${flag === '\0' ? '\\0' : flag}' at offset ${at}`);
    const magic = h.toString('latin1', 257, 263);
    let path = cstr(h.subarray(0, 100));
    if (magic === 'ustar\0') {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix.length > 0) path = Buffer.concat([prefix, Buffer.from('/'), path]);
    }
    const pax: Pax = { ...global, ...Object.fromEntries(Object.entries(local).filter(([, v]) => v !== undefined)), xattrs: [...global.xattrs, ...local.xattrs] };
    path = pax.path ?? longName ?? path;
    const linkpath = pax.linkpath ?? longLink ?? cstr(h.subarray(157, 257));
    const size = pax.size ?? hdrSize;
    const mtime = pax.mtime ?? [parseNumber(h.subarray(136, 148), 'mtime'), 0];
    const isDev = type === 'char' || type === 'block';
    const entry: TarEntry = {
      type,
      path,
      linkpath,
      mode: parseNumber(h.subarray(100, 108), 'mode') & 0o7777,
      uid: pax.uid ?? parseNumber(h.subarray(108, 116), 'uid'),
      gid: pax.gid ?? parseNumber(h.subarray(116, 124), 'gid'),
      mtime: mtime[0],
      mtimeNsec: mtime[1],
      size: type === 'file' ? size : 0,
      devMajor: isDev ? parseNumber(h.subarray(329, 337), 'devmajor') : 0,
      devMinor: isDev ? parseNumber(h.subarray(337, 345), 'devminor') : 0,
      xattrs: pax.xattrs,
      offset: at,
      body: (async function* (): AsyncGenerator<Buffer> {})(),
    };
    local = { xattrs: [] };
    longName = longLink = undefined;
    // Only regular files expose their data; anything else an entry carries is skipped.
    let read = 0;
    if (type === 'file') {
      const inner = src.stream(size, () => `entry ${path.toString()}`);
      entry.body = (async function* (): AsyncGenerator<Buffer> {
        for await (const b of inner) {
          read += b.length;
          yield b;
        }
      })();
    }
    yield entry;
    await src.skip(size - read, () => `entry ${path.toString()}`);
    await src.skip((512 - (size % 512)) % 512, () => `padding of ${path.toString()}`);
  }
}
