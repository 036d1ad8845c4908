// Per-file records shared by FUSE workers: upstream InodeIoStats / AccessPattern / latest-read shapes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileStats, FOP, newFileStatsBuffer } from './fs-stats.js';

test('file records: reads, fops, access pattern, latest ranges, bounded table', () => {
  const f = new FileStats(newFileStatsBuffer(4), { files: true, pattern: true, latest: true });
  f.read(7, 4096);
  f.read(7, 100);
  f.fop(7, FOP.Read, true);
  f.fop(7, FOP.Read, false);
  for (const ino of [1, 2, 5]) f.read(ino, 10);
  const files = f.files() as Record<string, { data_read: number; total_fops: number; block_count_read: number[]; fop_hits: number[]; fop_errors: number[] }>;
  assert.equal(files['7']!.data_read, 4196);
  assert.deepEqual(files['7']!.block_count_read, [1, 0, 1, 0, 0, 0, 0, 0]);
  assert.equal(files['7']!.total_fops, 2);
  assert.equal(files['7']!.fop_hits[FOP.Read], 1);
  assert.equal(files['7']!.fop_errors[FOP.Read], 1);
  const p = f.patterns().find((x) => x.ino === 7)!;
  assert.equal(p.nr_read, 2);
  assert.ok(p.first_access_time_secs > 1_600_000_000);
  assert.ok(p.first_access_time_nanos >= 0 && p.first_access_time_nanos < 1e9);
  assert.deepEqual(f.latestRead(), [[1, 2], [5], [7]]);
  assert.deepEqual(f.latestRead(), [], 'cleared by the export');
  // Capacity 4 is full (1, 2, 5, 7): a fifth file is counted as dropped, not recorded.
  f.read(9, 1);
  assert.equal(f.dropped, 1);
  assert.equal(Object.keys(f.files()).length, 4);
});

test('recording off: upstream answers empty objects', () => {
  const f = new FileStats(newFileStatsBuffer(4), { files: false, pattern: false, latest: false });
  f.read(3, 10);
  f.fop(3, FOP.Open, true);
  assert.deepEqual(f.files(), {});
  assert.deepEqual(f.patterns(), []);
  assert.deepEqual(f.latestRead(), []);
});
