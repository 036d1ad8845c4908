// `nydusify build --backend-push` end to end (issue acceptance): a generated tree (files, an empty
// file, a symlink, a 3 MiB file) is built and pushed to the S3-compatible test server (s3rver on
// 127.0.0.1) and to a localfs backend; the objects are checked at `<blob_prefix><blob_id>` and
// `<meta_prefix><name>` (upstream contrib/nydusify/pkg/packer: meta key = prefix + image name);
// then nydusd mounts the image with the pushed bootstrap, reading the blob from that backend
// (S3: `object_prefix` = the blob_prefix), and the mounted tree must equal the source.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createS3Backend } from '../../src/storage/backend/s3.js';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd, type NydusdProc } from '../daemon/nydusd-proc.js';
import { BIN } from '../helpers/paths.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const NAME = 'image-s3-01';
const skip = fuseUsable() ?? false;

function nydusify(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN('nydusify'), ...args], { timeout: 30_000 }, (e, _o, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stderr }));
  });
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** path → "dir mode" | "file mode size sha256" | "link target", for every entry under root. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        walk(r);
      } else if (st.isFile()) out.set(r, `file ${mode} ${st.size} ${sha(readFileSync(p))}`);
      else out.set(r, `other ${st.mode.toString(8)}`);
    }
  };
  walk('');
  return out;
}

describe('nydusify build --backend-push → nydusd', { skip, timeout: 60_000 }, () => {
  let work = '';
  let src = '';
  let s3: S3rverHandle | undefined;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'nydusify-s3-'));
    src = join(work, 'src');
    mkdirSync(join(src, 'dir_1/subdir_a'), { recursive: true });
    mkdirSync(join(src, 'empty_dir'));
    writeFileSync(join(src, 'dir_1/subdir_a/file_a'), 'file_a\n');
    writeFileSync(join(src, 'dir_1/file_b'), randomBytes(70_000));
    writeFileSync(join(src, 'file_c'), 'file_c\n');
    writeFileSync(join(src, 'empty'), '');
    // 3 MiB + a tail: several 1 MiB chunks and a partial one.
    writeFileSync(join(src, 'big'), randomBytes(3 * 1024 * 1024 + 12345));
    symlinkSync('file_c', join(src, 'file_c_ln'));
    symlinkSync('dir_1/subdir_a/file_a', join(src, 'deep_ln'));
    s3 = await startS3rver('nydus-push');
  });

  after(async () => {
    await s3?.close();
    const left = work ? fuseMountsUnder(work) : [];
    if (work) rmSync(work, { recursive: true, force: true });
    assert.deepEqual(left, [], 'FUSE mounts left behind');
  });

  async function mountAndCompare(config: Record<string, unknown>, bootstrap: string, tag: string): Promise<void> {
    const dir = join(work, `nydusd-${tag}`);
    const mnt = join(work, `mnt-${tag}`);
    mkdirSync(dir, { recursive: true });
    mkdirSync(mnt, { recursive: true });
    let d: NydusdProc | undefined;
    try {
      d = await startNydusd({ config, mnt, bootstrap, dir, timeoutMs: 20_000 });
      const want = snapshot(src);
      const got = snapshot(d.mnt);
      assert.deepEqual([...got.keys()], [...want.keys()]);
      for (const [k, v] of want) assert.equal(got.get(k), v, `${tag}: ${k} differs`);
      assert.equal(readlinkSync(join(d.mnt, 'file_c_ln')), 'file_c');
      assert.equal(readFileSync(join(d.mnt, 'file_c_ln'), 'utf8'), 'file_c\n');
    } finally {
      if (d) await killAndClean(d);
    }
    assert.deepEqual(fuseMountsUnder(mnt), []);
  }

  test('push to s3 (s3rver): objects at <blob_prefix><id> and <meta_prefix><name>, nydusd mounts from S3', async () => {
    const srv = s3!;
    const out = join(work, 'out-s3');
    const base = { endpoint: srv.endpoint, scheme: 'http', region: 'us-east-1', bucket_name: srv.bucket, access_key_id: srv.accessKeyId, access_key_secret: srv.secretAccessKey };
    const cfgFile = join(work, 's3-backend.json');
    writeFileSync(cfgFile, JSON.stringify({ ...base, meta_prefix: 'meta/', blob_prefix: 'blobs/' }));
    const r = await nydusify(['build', '--name', NAME, '--source-dir', src, '--output-dir', out, '--backend-push', '--backend-type', 's3', '--backend-config-file', cfgFile]);
    assert.equal(r.code, 0, r.stderr);
    const blobs = (JSON.parse(readFileSync(join(out, 'output.json'), 'utf8')) as { blobs: string[] }).blobs;
    const id = blobs.at(-1)!;
    assert.match(id, /^[0-9a-f]{64}$/);
    const localBlob = readFileSync(join(out, id));
    assert.equal(sha(localBlob), id, 'blob file is named by its sha256');
    const localMeta = readFileSync(join(out, `${NAME}.meta`));
    assert.ok(!existsSync(join(out, `${NAME}.blob`)));

    // Read both objects back through our (signing) S3 backend: HEAD for the size, ranged GET for the bytes.
    const blobBe = createS3Backend({ ...base, object_prefix: 'blobs/', retry_limit: 0 });
    const metaBe = createS3Backend({ ...base, object_prefix: 'meta/', retry_limit: 0 });
    let remoteMeta: Uint8Array;
    try {
      assert.equal(await blobBe.blobSize(id), localBlob.length);
      assert.equal(sha(await blobBe.read(id, 0, localBlob.length)), id);
      assert.equal(await metaBe.blobSize(NAME), localMeta.length);
      remoteMeta = await metaBe.read(NAME, 0, localMeta.length);
      assert.deepEqual(Buffer.from(remoteMeta), localMeta);
    } finally {
      await blobBe.close();
      await metaBe.close();
    }
    // Nothing stray in the bucket root (unsigned ListObjects straight to s3rver).
    const list = await (await fetch(`http://${srv.rawEndpoint}/${srv.bucket}`)).text();
    const keys = [...list.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]).sort();
    assert.deepEqual(keys, [`blobs/${id}`, `meta/${NAME}`]);

    // Mount from S3 only: the bootstrap fetched from the bucket, the local blob removed, a fresh cache.
    rmSync(join(out, id));
    const boot = join(work, 'from-s3.meta');
    writeFileSync(boot, remoteMeta);
    const cfg = localfsConfig('/nonexistent', join(work, 'cache-s3'));
    (cfg.device as Record<string, unknown>).backend = { type: 's3', config: { ...base, object_prefix: 'blobs/' } };
    await mountAndCompare(cfg, boot, 's3');
    // Every push, HEAD, GET and nydusd read was signed correctly (s3rver alone would accept anything).
    const st = await srv.stats();
    assert.equal(st.rejected, 0, st.lastRejection);
    assert.ok(st.verified >= 6, `requests verified: ${st.verified}`);
  });

  test('push to localfs: nydusd mounts the pushed bootstrap with the pushed blob dir', async () => {
    const out = join(work, 'out-localfs');
    const backendDir = join(work, 'backend');
    const r = await nydusify(['build', '--name', NAME, '--source-dir', src, '--output-dir', out, '--backend-push', '--backend-type', 'localfs', '--backend-config', JSON.stringify({ dir: backendDir, blob_prefix: 'blob/', meta_prefix: 'meta/' })]);
    assert.equal(r.code, 0, r.stderr);
    const id = (JSON.parse(readFileSync(join(out, 'output.json'), 'utf8')) as { blobs: string[] }).blobs.at(-1)!;
    assert.deepEqual(readFileSync(join(backendDir, 'blob', id)), readFileSync(join(out, id)));
    assert.deepEqual(readFileSync(join(backendDir, 'meta', NAME)), readFileSync(join(out, `${NAME}.meta`)));
    rmSync(out, { recursive: true });
    await mountAndCompare(localfsConfig(join(backendDir, 'blob'), join(work, 'cache-localfs')), join(backendDir, 'meta', NAME), 'localfs');
  });
});
