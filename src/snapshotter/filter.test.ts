import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFilters, parseFilter } from './filter.js';

test('parses the filter containerd sends after ALREADY_EXISTS', () => {
  const f = 'labels."containerd.io/snapshot.ref"==sha256:abc,parent=="default/3/sha256:def"';
  assert.deepEqual(parseFilter(f), [
    { path: ['labels', 'containerd.io/snapshot.ref'], op: '==', value: 'sha256:abc' },
    { path: ['parent'], op: '==', value: 'default/3/sha256:def' },
  ]);
});

test('AND within a filter, OR across filters; != ~= and presence', () => {
  const obj: Record<string, string> = { name: 'a', parent: '', 'labels.x': 'y' };
  const get = (p: string[]): string | undefined => obj[p.join('.')];
  assert.equal(compileFilters([])(get), true);
  assert.equal(compileFilters(['name==a,parent==b'])(get), false);
  assert.equal(compileFilters(['name==a,parent==b', 'labels.x'])(get), true);
  assert.equal(compileFilters(['name!=b,labels.x~=^y$'])(get), true);
  assert.equal(compileFilters(['labels.z'])(get), false);
  assert.equal(compileFilters(['name=="a"'])(get), true);
});

test('bad filters are one-line errors naming the filter', () => {
  assert.throws(() => parseFilter('name=="a'), /bad filter "name==\\"a": unterminated quote/);
  assert.throws(() => parseFilter('name==a parent==b'), /expected ','/);
});
