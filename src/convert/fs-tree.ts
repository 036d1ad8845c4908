// Flat file trees for `nydusify check`: one from OCI layers (applied in order with whiteouts,
// file data hashed while streaming, nothing written to disk), one from a nydus bootstrap plus
// its blobs. Both produce path → FsEntry maps compared field by field.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { makedev } from '../builder/index.js';
import { LocalBlobs } from '../image/local-blobs.js';
import { walkRafs } from '../image/walk.js';
import type { RafsSuper } from '../rafs/types.js';
import { NydusError } from '../util/errors.js';
import { TarParser, type TarEntryType, type TarHeader } from '../format/tar-reader.js';
import { LayerPathGuard } from './layer-guard.js';

export interface FsEntry {
  type: TarEntryType | 'socket';
  /** Permission bits incl. setuid/setgid/sticky. */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  rdev: number;
  /** name → hex value. */
  xattrs: Record<string, string>;
  sha256: string;
  /** A parent directory the tar never named: only its type is meaningful. */
  implicit?: boolean;
}

export type FsTree = Map<string, FsEntry>;

const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';
const EMPTY_SHA = createHash('sha256').digest('hex');

function deleteTree(t: FsTree, p: string, keepSelf = false): void {
  if (!keepSelf) t.delete(p);
  const prefix = p === '' ? '' : `${p}/`;
  for (const k of [...t.keys()]) if (k.startsWith(prefix) && k !== p) t.delete(k);
}

function ensureParents(t: FsTree, p: string): void {
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    const d = parts.slice(0, i).join('/');
    if (!t.has(d)) t.set(d, { type: 'dir', perm: 0o755, uid: 0, gid: 0, size: 0, linkname: '', rdev: 0, xattrs: {}, sha256: '', implicit: true });
  }
}

interface LayerItem {
  path: string;
  h: TarHeader;
  sha256: string;
}

/** Reads one uncompressed layer tar stream into its items (metadata + data digests). */
async function readLayer(tar: Readable, what: string): Promise<LayerItem[]> {
  const items: LayerItem[] = [];
  const guard = new LayerPathGuard();
  let cur: { path: string; h: TarHeader; hash: ReturnType<typeof createHash> } | undefined;
  const parser = new TarParser({
    entry: (h) => {
      cur = { path: guard.check(h), h, hash: createHash('sha256') };
    },
    data: (c) => void cur?.hash.update(c),
    end: () => {
      if (cur) items.push({ path: cur.path, h: cur.h, sha256: cur.hash.digest('hex') });
      cur = undefined;
    },
  });
  try {
    for await (const c of tar) parser.write(c as Buffer);
    parser.end();
  } catch (e) {
    throw new NydusError((e as NydusError).code ?? 'ERR_FORMAT_INVALID', `${what}: ${(e as Error).message}`, { cause: e });
  }
  return items;
}

function xattrsOf(h: TarHeader): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of h.xattrs) o[k.toString('utf8')] = v.toString('hex');
  return o;
}

/** Applies one layer onto `t` (OCI image-spec "Applying changesets"). */
export async function applyOciLayer(t: FsTree, tar: Readable, what: string): Promise<void> {
  const items = await readLayer(tar, what);
  // Whiteouts hide lower-layer entries only, so they go first; the layer's own entries follow.
  for (const it of items) {
    const slash = it.path.lastIndexOf('/');
    const dir = slash >= 0 ? it.path.slice(0, slash) : '';
    const base = it.path.slice(slash + 1);
    if (base === OPAQUE) deleteTree(t, dir, true);
    else if (base.startsWith(WH)) deleteTree(t, (dir ? `${dir}/` : '') + base.slice(WH.length));
  }
  for (const it of items) {
    const base = it.path.slice(it.path.lastIndexOf('/') + 1);
    if (base.startsWith(WH) || it.path === '') continue;
    const h = it.h;
    let e: FsEntry;
    const linkname = h.linkpath.toString('utf8');
    if (h.type === 'hardlink') {
      const target = t.get(linkname.replace(/^\.?\/+/, '').replace(/\/+$/, ''));
      if (!target || target.type !== 'file') throw new NydusError('ERR_FORMAT_INVALID', `${what}: hardlink '${h.path.toString('utf8')}' → '${linkname}' has no regular-file target`);
      e = { ...target };
    } else {
      e = {
        type: h.type,
        perm: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        size: h.type === 'file' ? h.size : 0,
        linkname: h.type === 'symlink' ? linkname : '',
        rdev: h.type === 'char' || h.type === 'block' ? makedev(h.devMajor, h.devMinor) : 0,
        xattrs: xattrsOf(h),
        sha256: h.type === 'file' ? it.sha256 : '',
      };
    }
    const old = t.get(it.path);
    // A non-directory replaces a lower directory together with its contents.
    if (old?.type === 'dir' && e.type !== 'dir') deleteTree(t, it.path, true);
    ensureParents(t, it.path);
    t.set(it.path, e);
  }
}

const S_IFMT = 0o170000;
const TYPES: Record<number, FsEntry['type']> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o020000: 'char', 0o060000: 'block', 0o010000: 'fifo', 0o140000: 'socket' };

/** Tree of a nydus image from its (merged) bootstrap, reading file data from local blobs. */
export function nydusTree(sb: RafsSuper, blobDir: string): FsTree {
  const t: FsTree = new Map();
  const blobs = new LocalBlobs(sb.blobs, { blobDir });
  const hashes = new Map<number, string>();
  try {
    walkRafs(sb, ({ path, inode }) => {
      if (path.length === 0) return;
      const type = TYPES[inode.mode & S_IFMT] ?? 'file';
      let sha256 = '';
      if (type === 'file') {
        sha256 = hashes.get(inode.ino) ?? '';
        if (!sha256) {
          const h = createHash('sha256');
          for (const c of sb.fileChunks(inode.ino)) h.update(blobs.readChunk(c, true));
          sha256 = inode.size === 0 ? EMPTY_SHA : h.digest('hex');
          hashes.set(inode.ino, sha256);
        }
      }
      const xattrs: Record<string, string> = {};
      for (const k of sb.listXattrs(inode.ino)) xattrs[Buffer.from(k).toString('utf8')] = Buffer.from(sb.getXattr(inode.ino, k) ?? new Uint8Array()).toString('hex');
      t.set(Buffer.from(path).toString('utf8'), {
        type,
        perm: inode.mode & 0o7777,
        uid: inode.uid,
        gid: inode.gid,
        size: type === 'file' ? inode.size : 0,
        linkname: type === 'symlink' ? Buffer.from(sb.readlink(inode.ino)).toString('utf8') : '',
        rdev: type === 'char' || type === 'block' ? inode.rdev : 0,
        xattrs,
        sha256,
      });
    });
  } finally {
    blobs.close();
  }
  return t;
}

/** Differences between the OCI tree and the nydus tree, one line each. */
export function compareTrees(oci: FsTree, nydus: FsTree, limit = 50): string[] {
  const out: string[] = [];
  const push = (s: string): void => void (out.length < limit && out.push(s));
  for (const [p, a] of oci) {
    const b = nydus.get(p);
    if (!b) {
      push(`${p}: missing in nydus image`);
      continue;
    }
    if (a.type !== b.type) {
      push(`${p}: type ${a.type} != ${b.type}`);
      continue;
    }
    if (a.implicit) continue;
    const fields: Array<keyof FsEntry> = ['perm', 'uid', 'gid', 'size', 'linkname', 'rdev', 'sha256'];
    for (const f of fields) {
      if (a[f] !== b[f]) push(`${p}: ${f} ${f === 'perm' ? (a[f] as number).toString(8) : String(a[f])} != ${f === 'perm' ? (b[f] as number).toString(8) : String(b[f])}`);
    }
    if (JSON.stringify(Object.entries(a.xattrs).sort()) !== JSON.stringify(Object.entries(b.xattrs).sort())) push(`${p}: xattrs ${JSON.stringify(a.xattrs)} != ${JSON.stringify(b.xattrs)}`);
  }
  for (const p of nydus.keys()) if (!oci.has(p)) push(`${p}: only in nydus image`);
  return out;
}
