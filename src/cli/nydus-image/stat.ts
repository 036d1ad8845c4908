// nydus-image stat (-B BOOTSTRAP | -D BLOB_DIR) [-T TARGET] [-J OUTPUT_JSON] [--json]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { addStat, emptyStat, statImage, type ImageStat } from '../../image/stat.js';
import { detectRafsVersion, openBootstrap } from '../../rafs/index.js';
import { loadBootstrap, writeJson } from './load.js';
import { UsageError } from '../../util/errors.js';

export const SPEC = {
  name: 'nydus-image stat',
  summary: 'Statistics of one image or of every bootstrap in a directory, with chunk deduplication',
  flags: {
    bootstrap: { short: 'B', arg: 'FILE', desc: 'the base image bootstrap' },
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'every bootstrap in DIR, deduplicated together (without -B)' },
    target: { short: 'T', arg: 'FILE', desc: 'a target image, counted against the base' },
    'output-json': { short: 'J', arg: 'FILE', desc: 'write the statistics as JSON to FILE' },
    json: { desc: 'print JSON instead of text' },
    digester: { arg: 'ALGO', desc: 'digest algorithm (accepted, taken from the images)' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

function printStat(name: string, s: ImageStat): void {
  const ratio = s.chunks ? (1 - s.dedup_chunks / s.chunks) * 100 : 0;
  console.log(`${name}: ${s.dirs} dirs, ${s.files} files, ${s.symlinks} symlinks, ${s.file_size} bytes in files`);
  console.log(`  chunks ${s.chunks} (unique ${s.dedup_chunks}, dedup ${ratio.toFixed(1)}%), compressed ${s.comp_size} bytes, uncompressed ${s.uncomp_size} bytes`);
}

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values } = p;
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

