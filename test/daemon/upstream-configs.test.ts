// Issue 18, acceptance 2: every config upstream ships (docs/nydusd.md, misc/configs, misc/dragonfly,
// nydus-snapshotter's templates) and the JSON nydus-snapshotter generates for a registry image is
// accepted by our nydusd, which mounts an image with it and warns exactly once per key it ignores;
// templates upstream refuses (no registry host/repo, localfs without dir) are refused; a wrong type
// still fails with one line naming the key path. Fixtures: test/fixtures/upstream-configs (README).
// Only local paths and remote hosts are rewritten (as nydus-snapshotter's Supplement does), so the
// backends are never reached over the network: the mount must come up regardless.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseLenientJson } from '../../src/config/json.js';
import { isFuseMounted } from '../../src/fuse/mount.js';
import { BIN, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { cleanMount, fuseMountsUnder, fuseUsable, killAndClean, startNydusd } from './nydusd-proc.js';

const FIX = join(REPO_ROOT, 'test/fixtures/upstream-configs');
const BLOB_FILE = join(FIXTURE_V5_BLOB_DIR, readdirSync(FIXTURE_V5_BLOB_DIR)[0]!);
// Port 9 (discard) on loopback: nothing listens here, so any backend request fails at once.
const NOWHERE = '127.0.0.1:9';

const root = mkdtempSync(join(tmpdir(), 'nydusd-upcfg-'));
after(() => {
  assert.deepEqual(fuseMountsUnder(root), [], 'leaked FUSE mounts');
  rmSync(root, { recursive: true, force: true });
});

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});

/** The Supplement step for JSON (v1) configs: local paths into `dir`, remote hosts to nowhere. */
function supplementJson(text: string, dir: string, edit?: (cfg: Obj) => void): string {
  const cfg = o(parseLenientJson(text, 'fixture'));
  const device = o(cfg.device);
  const bcfg = o(o(device.backend).config);
  if ('dir' in bcfg) bcfg.dir = FIXTURE_V5_BLOB_DIR;
  if ('host' in bcfg) bcfg.host = NOWHERE;
  const cache = o(device.cache);
  if (cache.config !== undefined || cache.type === 'blobcache') cache.config = { ...o(cache.config), work_dir: join(dir, 'cache') };
  edit?.(cfg);
  return JSON.stringify(cfg, null, 2);
}

/** The same for the v2 TOML sample, by text (the file stays TOML, comments and all). */
function supplementToml(text: string, dir: string): string {
  return text
    .replace('blob_file = "/tmp/nydus.blob.data"', `blob_file = "${BLOB_FILE}"`)
    .replace('dir = "/tmp"\n', `dir = "${FIXTURE_V5_BLOB_DIR}"\n`)
    .replaceAll('work_dir = "."', `work_dir = "${join(dir, 'cache')}"`);
}

interface Accepted {
  file: string;
  /** Key paths we must warn about, once each, and nothing else. */
  unknown: string[];
  /** Further warnings (unsupported settings), matched by substring. */
  notes?: string[];
  /** localfs-served: a file read must return its bytes. */
  reads?: boolean;
  edit?: (cfg: Obj) => void;
}

const accepted: Accepted[] = [
  { file: 'nydus/docs/nydusd.md-localfs.json', unknown: [], reads: true },
  // Refused as shipped (no dir); with the Supplement adding one, its localfs timeouts are ignored keys.
  { file: 'nydus/docs/nydusd.md-common-fields.jsonc', unknown: ['device.backend.config.timeout', 'device.backend.config.connect_timeout', 'device.backend.config.retry_limit'], notes: ['device.cache.compressed: the cache keeps uncompressed data'], reads: true, edit: (c) => void (o(o(o(c.device).backend).config).dir = FIXTURE_V5_BLOB_DIR) },
  { file: 'nydus/misc/configs/nydusd-config-v2.toml', unknown: ['backend.registy', 'cache.enable_encryption', 'cache.enable_convergent_encryption', 'cache.encryption_key'], notes: ['cache.compressed: the cache keeps uncompressed data'], reads: true },
  { file: 'nydus/misc/dragonfly/nydusd-config.json', unknown: ['device.cache.config.compressed'] },
  { file: 'nydus/misc/dragonfly/nydusd-http-proxy-nofallback-config.json', unknown: ['device.cache.config.compressed'] },
  { file: 'nydus/misc/dragonfly/nydusd-proxy-error-fallback.json', unknown: ['device.cache.config.compressed'] },
  { file: 'nydus/misc/dragonfly/nydusd-proxy-error-nofallback.json', unknown: ['device.cache.config.compressed'] },
  { file: 'nydus/misc/dragonfly/nydusd-sdk-config.json', unknown: ['device.cache.config.compressed'], notes: ['proxy.dragonfly_scheduler_endpoint: Dragonfly SDK mode is not supported'] },
  { file: 'nydus/misc/dragonfly/nydusd-sdk-fallback-config.json', unknown: ['device.cache.config.compressed'], notes: ['proxy.dragonfly_scheduler_endpoint: Dragonfly SDK mode is not supported'] },
  { file: 'nydus-snapshotter/misc/snapshotter/nydusd-config-localfs.json', unknown: [], reads: true },
  { file: 'nydus-snapshotter/generated/registry-image-fusedev-template.json', unknown: ['device.backend.config.readahead'] },
  { file: 'nydus-snapshotter/generated/registry-image-prefetch-off.json', unknown: ['device.backend.config.readahead'] },
];

const refused: Array<{ file: string; expect: RegExp }> = [
  { file: 'nydus/misc/configs/nydusd-config.json', expect: /device\.backend\.config: registry needs "host" and "repo"/ },
  { file: 'nydus/misc/example/nydusd-config.json', expect: /registry needs "host" and "repo"/ },
  { file: 'nydus/misc/performance/nydusd_config.json', expect: /registry needs "host" and "repo"/ },
  { file: 'nydus/misc/benchmark/nydusd_config.json', expect: /registry needs "host" and "repo"/ },
  { file: 'nydus-snapshotter/misc/snapshotter/nydusd-config.fusedev.json', expect: /registry needs "host" and "repo"/ },
  { file: 'nydus/docs/nydusd.md-common-fields.jsonc', expect: /device\.backend\.config: localfs needs "dir" or "blob_file"/ },
];

function fresh(name: string): { dir: string; mnt: string } {
  const dir = join(root, name.replace(/[^\w.-]+/g, '_'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  return { dir, mnt };
}

/** Runs nydusd to completion on a config that must be refused; returns its stderr lines. */
function refusedRun(cfg: string, mnt: string): string[] {
  const r = spawnSync(process.execPath, [BIN('nydusd'), '--config', cfg, '--mountpoint', mnt, '--bootstrap', FIXTURE_V5_SHA256, '--log-level', 'warn'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, `nydusd did not exit by itself: ${r.stderr}`);
  assert.notEqual(r.status, 0, 'refused');
  assert.equal(isFuseMounted(mnt), false, 'nothing mounted');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  return r.stderr.trim().split('\n');
}

describe('upstream config examples through nydusd', { skip: fuseUsable() }, () => {
  for (const c of accepted) {
    it(`accepted and mounted: ${c.file}`, { timeout: 60_000 }, async () => {
      const { dir, mnt } = fresh(c.file);
      const text = readFileSync(join(FIX, c.file), 'utf8');
      const cfg = join(dir, c.file.endsWith('.toml') ? 'nydusd.toml' : 'nydusd.json');
      writeFileSync(cfg, c.file.endsWith('.toml') ? supplementToml(text, dir) : supplementJson(text, dir, c.edit));
      const d = await startNydusd({ dir, mnt, bootstrap: FIXTURE_V5_SHA256, config: cfg });
      try {
        assert.ok(readdirSync(d.mnt).includes('normal-file-test'), 'the image root is served');
        if (c.reads) assert.ok(readFileSync(join(d.mnt, 'normal-file-test/test.sh')).length > 0, 'file data is read through the backend');
        // The warnings precede the mount, but the pipe may deliver them to us a little later.
        const warnedNow = (): string[] => [...d.stderr().matchAll(/ignoring unknown key "([^"]+)"/g)].map((m) => m[1]!);
        await until('the warnings to arrive', () => warnedNow().length >= c.unknown.length || undefined, 20_000).catch(() => undefined);
        const warned = warnedNow();
        assert.deepEqual(warned.sort(), [...c.unknown].sort(), `one warning per ignored key:\n${d.stderr()}`);
        for (const n of c.notes ?? []) assert.equal(d.stderr().split(n).length - 1, 1, `one warning "${n}":\n${d.stderr()}`);
      } finally {
        await killAndClean(d);
      }
    });
  }

  for (const c of refused) {
    it(`refused as upstream refuses it: ${c.file}`, { timeout: 30_000 }, async () => {
      const { dir, mnt } = fresh(`refused-${c.file}`);
      const cfg = join(dir, 'nydusd.json');
      writeFileSync(cfg, readFileSync(join(FIX, c.file)));
      try {
        const lines = refusedRun(cfg, mnt);
        assert.match(lines.at(-1)!, c.expect);
      } finally {
        await cleanMount(mnt, undefined);
      }
    });
  }

  it('wrong types in the examples still fail with one line naming the key path', { timeout: 60_000 }, async () => {
    const cases: Array<{ name: string; text: (dir: string) => string; ext: string; expect: RegExp }> = [
      {
        name: 'dragonfly timeout as a string',
        ext: 'json',
        text: (dir) => supplementJson(readFileSync(join(FIX, 'nydus/misc/dragonfly/nydusd-config.json'), 'utf8'), dir, (c) => void (o(o(o(c.device).backend).config).timeout = '10')),
        expect: /device\.backend\.config\.timeout: expected a number, got string/,
      },
      {
        name: 'snapshotter threads_count as a string',
        ext: 'json',
        text: (dir) => supplementJson(readFileSync(join(FIX, 'nydus-snapshotter/generated/registry-image-fusedev-template.json'), 'utf8'), dir, (c) => void (o(c.fs_prefetch).threads_count = '8')),
        expect: /fs_prefetch\.threads_count: expected an integer, got string/,
      },
      {
        name: 'TOML prefetch threads as a string',
        ext: 'toml',
        text: (dir) => supplementToml(readFileSync(join(FIX, 'nydus/misc/configs/nydusd-config-v2.toml'), 'utf8'), dir).replace('[cache.prefetch]\n# Whether to enable blob data prefetching.\nenable = true\n# Number of data prefetching working threads, valid values: 1-1024.\nthreads = 8', '[cache.prefetch]\nenable = true\nthreads = "8"'),
        expect: /cache\.prefetch\.threads: expected an integer, got string/,
      },
    ];
    for (const c of cases) {
      const { dir, mnt } = fresh(`wrong-${c.name}`);
      const cfg = join(dir, `nydusd.${c.ext}`);
      writeFileSync(cfg, c.text(dir));
      try {
        const lines = refusedRun(cfg, mnt);
        assert.equal(lines.length, 1, `${c.name}: one line, got ${lines.join('\n')}`);
        assert.match(lines[0]!, c.expect, c.name);
      } finally {
        await cleanMount(mnt, undefined);
      }
    }
  });
});
