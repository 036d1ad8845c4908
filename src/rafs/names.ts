// The one rule for directory entry names read from a bootstrap (check, unpack and nydusd share it):
// a crafted bootstrap must not be able to name `..`, an absolute path, a path through another
// entry, or a NUL-truncated name, whatever a permissive consumer does with it.

/** NAME_MAX, as the kernel and tar extractors enforce it. */
export const MAX_ENTRY_NAME = 255;

/** Why `name` cannot be a directory entry (empty, `.`, `..`, a `/` or NUL inside, too long), or undefined. */
export function entryNameProblem(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'name is empty';
  if (name.length > MAX_ENTRY_NAME) return `name is ${name.length} bytes (max ${MAX_ENTRY_NAME})`;
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) return `name is "${name.length === 1 ? '.' : '..'}"`;
  if (name.includes(0x2f)) return 'name contains "/"';
  if (name.includes(0)) return 'name contains NUL';
  return undefined;
}
