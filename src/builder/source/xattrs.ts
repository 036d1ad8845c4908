// Extended attributes of source files (spec §4.8): only the prefixes RAFS accepts are kept, sorted
// by name so builds are deterministic. Reads never follow symlinks (@napi-rs/xattr uses the
// l*xattr calls; verified by xattrs.test.ts).
import { createRequire } from 'node:module';
import { logger } from '../../util/log.js';

const require = createRequire(import.meta.url);
const xattr = require('@napi-rs/xattr') as {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
};
const log = logger('builder');

const ALLOWED_PREFIXES = ['user.', 'security.', 'trusted.'];
const ALLOWED_NAMES = ['system.posix_acl_access', 'system.posix_acl_default'];

export function isAllowedXattr(name: Uint8Array | string): boolean {
  const s = typeof name === 'string' ? name : Buffer.from(name).toString('latin1');
  return ALLOWED_PREFIXES.some((p) => s.startsWith(p)) || ALLOWED_NAMES.includes(s);
}

export function sortXattrs(x: Array<[Uint8Array, Uint8Array]>): Array<[Uint8Array, Uint8Array]> {
  return x.sort((a, b) => Buffer.compare(a[0], b[0]));
}

/** Xattrs of `path` (raw bytes) without following a final symlink; [] when unsupported. */
export function readXattrs(path: Buffer): Array<[Uint8Array, Uint8Array]> {
  const p = path.toString('utf8');
  if (!Buffer.from(p, 'utf8').equals(path)) {
    log.debug(`${path.toString("latin1")}: path is not valid UTF-8, extended attributes are not read`);
    return [];
  }
  let names: string[];
  try {
    names = xattr.listAttributesSync(p);
  } catch (e) {
    log.debug(`${p}: cannot list xattrs: ${(e as Error).message}`);
    return [];
  }
  const out: Array<[Uint8Array, Uint8Array]> = [];
  for (const n of names) {
    if (!isAllowedXattr(n)) continue;
    const v = xattr.getAttributeSync(p, n);
    if (v === null) continue;
    out.push([Buffer.from(n, 'utf8'), Buffer.from(v)]);
  }
  return sortXattrs(out);
}
