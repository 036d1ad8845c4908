// Safety of OCI layer tars for nydusify: entry paths are relative, without '..' or NUL, and never
// go through a symlink the same layer made (an extractor would write outside the tree). Entries
// come from the one tar reader (format/tar-reader.ts), names decoded as UTF-8.
import type { TarHeader } from '../format/tar-reader.js';
import { NydusError } from '../util/errors.js';

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
    const name = h.path.toString('utf8');
    const p = safeEntryPath(name);
    this.#throughSymlink(p, `entry '${name}'`);
    if (h.type === 'hardlink') {
      const link = h.linkpath.toString('utf8');
      const t = safeEntryPath(link, `hardlink target of '${name}'`);
      if (t === '') throw new NydusError('ERR_TAR_UNSAFE', `layer tar: hardlink '${name}' points at the root`);
      this.#throughSymlink(t, `hardlink target '${link}'`);
      if (this.#symlinks.has(t)) throw new NydusError('ERR_TAR_UNSAFE', `layer tar: hardlink '${name}' points at symlink '${link}'`);
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
