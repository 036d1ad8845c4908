// nydus-image stat (-B BOOTSTRAP | -D BLOB_DIR) [-T TARGET] [-J OUTPUT_JSON] [--json]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../main.js';
import { addStat, emptyStat, statImage, type ImageStat } from '../../image/stat.js';
import { detectRafsVersion, openBootstrap } from '../../rafs/index.js';
import { loadBootstrap, writeJson } from './load.js';
import { UsageError } from '../../util/errors.js';

export const usage = 'nydus-image stat (-B BOOTSTRAP | -D BLOB_DIR) [-T TARGET] [-J OUTPUT_JSON] [--json]';

function printStat(name: string, s: ImageStat): void {
  const ratio = s.chunks ? (1 - s.dedup_chunks / s.chunks) * 100 : 0;
  console.log(`${name}: ${s.dirs} dirs, ${s.files} files, ${s.symlinks} symlinks, ${s.file_size} bytes in files`);
  console.log(`  chunks ${s.chunks} (unique ${s.dedup_chunks}, dedup ${ratio.toFixed(1)}%), compressed ${s.comp_size} bytes, uncompressed ${s.uncomp_size} bytes`);
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    bootstrap: { type: 'string', short: 'B' },
    'blob-dir': { type: 'string', short: 'D' },
    target: { type: 'string', short: 'T' },
    'output-json': { type: 'string', short: 'J' },
    json: { type: 'boolean' },
    digester: { type: 'string' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  }, false);
  if (!values.bootstrap && !values['blob-dir']) throw new UsageError('stat needs -B/--bootstrap or -D/--blob-dir');
  let base: ImageStat;
  let baseSet: Set<string>;
  if (values.bootstrap) {
    const sb = loadBootstrap(values.bootstrap, '--bootstrap');
    baseSet = new Set();
    base = statImage(sb, undefined, baseSet);
  } else {
    // Every bootstrap in the directory (files without an extension), deduplicated together.
    const dir = values['blob-dir']!;
    baseSet = new Set();
    base = emptyStat();
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (name.includes('.') || !statSync(p).isFile()) continue;
      const buf = readFileSync(p);
      if (!detectRafsVersion(buf)) continue;
      const sb = openBootstrap(buf, `bootstrap ${p}`);
      // Chunks already seen in earlier images count as references, i.e. deduplicated.
      const seen = new Set<string>();
      addStat(base, statImage(sb, baseSet, seen));
      for (const d of seen) baseSet.add(d);
    }
  }
  let target: ImageStat | undefined;
  if (values.target) target = statImage(loadBootstrap(values.target, '--target'), baseSet);
  const out = { dedup_enabled: !!values['blob-dir'], target_enabled: !!target, base_image: base, target_image: target ?? null };
  if (values['output-json']) await writeJson(values['output-json'], out);
  if (values.json) console.log(JSON.stringify(out, null, 2));
  else {
    printStat('base image', base);
    if (target) printStat('target image', target);
  }
  return 0;
}

