// Parses upstream `tests/texture/repeatable/*.result` files: `tree -J` JSON followed by
// `md5sum` lines ("<md5>  /path"). Also flattens a tree into path → entry and recomputes the
// `tree` report with its semantics (a symlink to a directory counts as a directory; here the
// target is resolved inside the image, which is what matches the upstream report).
export interface TreeJEntry {
  type: 'directory' | 'file' | 'link' | string;
  name: string;
  target?: string;
  contents?: TreeJEntry[];
}

export interface TreeReport {
  directories: number;
  files: number;
}

export interface ResultFile {
  /** The root directory entry (name ""). */
  root: TreeJEntry;
  report: TreeReport;
  /** '/path' → md5 hex. */
  md5: Map<string, string>;
}

export interface FlatEntry {
  type: 'directory' | 'file' | 'link';
  target?: string;
}

const MD5_LINE = /^([0-9a-f]{32}) {2}(.+)$/;

export function parseResultFile(text: string): ResultFile {
  const lines = text.split('\n');
  const firstMd5 = lines.findIndex((l) => MD5_LINE.test(l));
  const jsonText = (firstMd5 < 0 ? lines : lines.slice(0, firstMd5)).join('\n');
  const parsed = JSON.parse(jsonText) as Array<TreeJEntry & Partial<TreeReport>>;
  const root = parsed.find((e) => e.type === 'directory');
  const report = parsed.find((e) => e.type === 'report');
  if (!root || !report) throw new Error('result file: tree JSON lacks a directory or a report');
  const md5 = new Map<string, string>();
  for (const l of firstMd5 < 0 ? [] : lines.slice(firstMd5)) {
    const m = MD5_LINE.exec(l);
    if (m) md5.set(m[2]!, m[1]!);
  }
  return { root, report: { directories: report.directories ?? 0, files: report.files ?? 0 }, md5 };
}

/** Path ('/a/b', root '/') → entry, for every entry of a tree -J tree. */
export function flattenTreeJ(root: TreeJEntry): Map<string, FlatEntry> {
  const out = new Map<string, FlatEntry>([['/', { type: 'directory' }]]);
  const walk = (dir: TreeJEntry, prefix: string): void => {
    for (const e of dir.contents ?? []) {
      const path = `${prefix}/${e.name}`;
      if (e.type === 'link') out.set(path, { type: 'link', target: e.target ?? '' });
      else if (e.type === 'directory') {
        out.set(path, { type: 'directory' });
        walk(e, path);
      } else out.set(path, { type: 'file' });
    }
  };
  walk(root, '');
  return out;
}

/** Resolves `target` of the link at `linkPath` inside the flattened image; undefined if dangling. */
export function resolveInImage(entries: Map<string, FlatEntry>, linkPath: string, target: string, depth = 0): FlatEntry | undefined {
  if (depth > 40) return undefined;
  const parts = target.startsWith('/') ? [] : linkPath.split('/').filter(Boolean).slice(0, -1);
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  const path = `/${parts.join('/')}`;
  const e = entries.get(path);
  if (e?.type === 'link') return resolveInImage(entries, path, e.target ?? '', depth + 1);
  return e;
}

/** `tree`'s report: the root is not counted; links to directories count as directories. */
export function treeReport(entries: Map<string, FlatEntry>): TreeReport {
  let directories = 0;
  let files = 0;
  for (const [path, e] of entries) {
    if (path === '/') continue;
    const kind = e.type === 'link' ? resolveInImage(entries, path, e.target ?? '')?.type : e.type;
    if (kind === 'directory') directories++;
    else files++;
  }
  return { directories, files };
}
