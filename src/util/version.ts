// The one version string of this install: package.json's "version" (read once, next to dist/).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** Upstream's output JSON `version` is `<package_ver>-<git_commit>`; we put our name in the commit slot. */
export function outputJsonVersion(): string {
  return `${packageVersion()}-nydus-ts`;
}

export function packageVersion(): string {
  if (cached) return cached;
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, d = dirname(d)) {
    const p = join(d, 'package.json');
    if (!existsSync(p)) continue;
    const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
    if (typeof pkg.version === 'string' && pkg.name !== undefined) return (cached = pkg.version);
  }
  return (cached = '0.0.0');
}
