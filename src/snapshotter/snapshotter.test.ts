// Snapshot semantics without containerd (the containerd tests in test/snapshotter run the real thing).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonManager } from './daemons.js';
import { GRPC, LABEL_CRI_LAYER_DIGEST, LABEL_NYDUS_BLOB, LABEL_NYDUS_BOOTSTRAP, LABEL_TARGET_REF, Snapshotter, SnapshotError } from './snapshotter.js';
import { KIND_ACTIVE, KIND_COMMITTED } from './store.js';

const code = (c: number) => (e: unknown) => e instanceof SnapshotError && e.grpc === c;

function open(root: string): Snapshotter {
  return new Snapshotter(root, (s) => new DaemonManager(root, 'multiple', ['false'], s, 'info', join(root, 'cache')), async () => ({}));
}

test('overlay semantics, remote layers, labels, filters, restart, cleanup', async () => {
  const root = mkdtempSync(join(tmpdir(), 'snap-unit-'));
  try {
    let sn = open(root);
    const m0 = await sn.prepare('k0', '', {});
    assert.deepEqual(m0, [{ type: 'bind', source: join(root, 'snapshots/1/fs'), options: ['rw', 'rbind'] }]);
    await assert.rejects(sn.prepare('k0', '', {}), code(GRPC.ALREADY_EXISTS));
    sn.commit('c0', 'k0', { a: '1' });
    assert.throws(() => sn.commit('c0', 'k0', {}), code(GRPC.NOT_FOUND));
    await assert.rejects(sn.prepare('k1', 'nope', {}), code(GRPC.NOT_FOUND));
    const m1 = await sn.prepare('k1', 'c0', {});
    assert.equal(m1[0]!.type, 'overlay');
    assert.deepEqual(m1[0]!.options, ['index=off', `workdir=${join(root, 'snapshots/2/work')}`, `upperdir=${join(root, 'snapshots/2/fs')}`, `lowerdir=${join(root, 'snapshots/1/fs')}`]);
    assert.deepEqual(await sn.view('v1', 'c0', {}), [{ type: 'bind', source: join(root, 'snapshots/1/fs'), options: ['ro', 'rbind'] }]);
    await assert.rejects(sn.remove('c0'), code(GRPC.FAILED_PRECONDITION));

    // A Nydus data layer with a target: committed under the ref, answered ALREADY_EXISTS.
    const labels = { [LABEL_TARGET_REF]: 'sha256:chain1', [LABEL_NYDUS_BLOB]: 'true', [LABEL_CRI_LAYER_DIGEST]: 'sha256:l1' };
    await assert.rejects(sn.prepare('extract-1 sha256:chain1', 'c0', labels), code(GRPC.ALREADY_EXISTS));
    const st = sn.stat('sha256:chain1');
    assert.equal(st.kind, KIND_COMMITTED);
    assert.equal(st.parent, 'c0');
    assert.deepEqual(st.labels, labels);
    assert.throws(() => sn.stat('extract-1 sha256:chain1'), code(GRPC.NOT_FOUND));
    assert.deepEqual(sn.list(['labels."containerd.io/snapshot.ref"==sha256:chain1,parent=="c0"']).map((i) => i.name), ['sha256:chain1']);
    assert.deepEqual(sn.list(['labels."containerd.io/snapshot.ref"==sha256:chain1,parent=="other"']), []);
    assert.throws(() => sn.list(['name=="x']), code(GRPC.INVALID_ARGUMENT));

    // Bootstrap layer without image/image.boot: the container's Prepare names the layer.
    await sn.prepare('kb', 'sha256:chain1', { [LABEL_NYDUS_BOOTSTRAP]: 'true', [LABEL_CRI_LAYER_DIGEST]: 'sha256:boot' });
    sn.commit('boot', 'kb', {});
    await assert.rejects(sn.prepare('ctr-1', 'boot', {}), (e: Error) => code(GRPC.FAILED_PRECONDITION)(e) && /nydus bootstrap layer sha256:boot has no image\/image\.boot/.test(e.message));
    assert.throws(() => sn.stat('ctr-1'), code(GRPC.NOT_FOUND), 'a failed Prepare leaves nothing');

    await sn.prepare('ks', '', { 'containerd.io/snapshot/pullsecret': 'hunter2', x: 'y' });
    assert.deepEqual(sn.stat('ks').labels, { x: 'y' }, 'the pull secret never leaves in an answer');
    assert.ok(!JSON.stringify(sn.list([])).includes('hunter2'));
    await sn.remove('ks');

    assert.deepEqual(sn.update('c0', { b: '2' }, ['labels.b']).labels, { a: '1', b: '2' });
    assert.deepEqual(sn.update('c0', { c: '3' }, []).labels, { c: '3' });
    assert.throws(() => sn.update('c0', {}, ['parent']), code(GRPC.INVALID_ARGUMENT));

    // Restart: the state is in SQLite.
    sn.close();
    sn = open(root);
    assert.equal(sn.stat('k1').kind, KIND_ACTIVE);
    mkdirSync(join(root, 'snapshots/999/fs'), { recursive: true });
    await sn.remove('v1');
    await sn.remove('k1');
    assert.ok(!existsSync(join(root, 'snapshots/2')));
    await sn.cleanup();
    assert.ok(!existsSync(join(root, 'snapshots/999')), 'Cleanup removes directories no snapshot owns');
    assert.ok(existsSync(join(root, 'snapshots/1/fs')));
    sn.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
