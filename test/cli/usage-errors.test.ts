// Issue 12 acceptance 2: every executable, run with no args, --help, -V, an unknown flag, a bad
// value and a missing file, answers with the right exit code and, for mistakes, one line on stderr
// naming the problem: never a stack trace, never "internal error"/exit 70.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { BIN } from '../helpers/paths.js';
import { testDir } from '../helpers/tmp.js';

interface Case {
  bin: string;
  args: string[];
  code: number;
  /** stderr must match (mistakes) / stdout must match (help, version). */
  err?: RegExp;
  out?: RegExp;
}

const dir = testDir('nydus-cli-');
const NOPE = `${dir}/nope`;
mkdirSync(`${dir}/mnt`);
writeFileSync(`${dir}/garbage.boot`, Buffer.alloc(8192, 0x5a));
const cases: Case[] = [];
for (const bin of ['nydus-image', 'nydusd', 'nydusctl', 'nydusify', 'nydus-backend-proxy', 'nydus-distribute']) {
  cases.push({ bin, args: ['--help'], code: 0, out: /Usage:/ }, { bin, args: ['-V'], code: 0, out: /\d+\.\d+\.\d+/ }, { bin, args: ['--no-such-flag'], code: 2, err: /no-such-flag/ });
}
cases.push(
  // no args
  { bin: 'nydus-image', args: [], code: 2, err: /Usage: nydus-image/ },
  { bin: 'nydusd', args: [], code: 2, err: /missing --mountpoint/ },
  { bin: 'nydusctl', args: [], code: 2, err: /missing --sock/ },
  { bin: 'nydusify', args: [], code: 2, err: /Usage: nydusify/ },
  { bin: 'nydus-backend-proxy', args: [], code: 2, err: /--blobsdir is required/ },
  { bin: 'nydus-distribute', args: [], code: 2, err: /Usage: nydus-distribute/ },
  // every subcommand's help
  ...['create', 'merge', 'check', 'inspect', 'stat', 'unpack', 'export'].map((s): Case => ({ bin: 'nydus-image', args: [s, '--help'], code: 0, out: new RegExp(`Usage: nydus-image ${s} `) })),
  ...['server start', 'server clean', 'node start', 'node clean', 'node status'].map((s): Case => ({ bin: 'nydus-distribute', args: [...s.split(' '), '--help'], code: 0, out: new RegExp(`Usage: nydus-distribute ${s}`) })),
  ...['convert', 'check', 'mount', 'build', 'view', 'pack'].map((s): Case => ({ bin: 'nydusify', args: [s, '--help'], code: 0, out: /Usage: nydusify (convert|check|mount|build) \[options\][^]*--work-dir|--output-dir <DIR>[^]*\(default: / })),
  { bin: 'nydusify', args: ['convert', '--source', 'x', '--no-such-flag'], code: 2, err: /unknown option '--no-such-flag'.*nydusify convert --help/ },
  { bin: 'nydusify', args: ['convert', '--source', 'x', '--compressor', 'lzma'], code: 2, err: /--compressor.*lzma/ },
  { bin: 'nydus-image', args: ['create', '--no-such-flag', 'x'], code: 2, err: /unknown option '--no-such-flag'.*nydus-image create --help/ },
  // bad values
  { bin: 'nydus-image', args: ['create', '--compressor', 'lzma', dir], code: 2, err: /--compressor.*lzma/ },
  { bin: 'nydus-image', args: ['-l', 'loud', 'check', NOPE], code: 2, err: /--log-level.*loud/ },
  { bin: 'nydus-image', args: ['create', '-l', 'loud', dir], code: 2, err: /--log-level.*loud/ },
  { bin: 'nydusd', args: ['--log-level', 'loud', '--mountpoint', dir], code: 2, err: /--log-level/ },
  { bin: 'nydusd', args: ['--thread-num', 'many', '--mountpoint', dir, '--localfs-dir', dir, '--bootstrap', NOPE], code: 2, err: /--thread-num/ },
  { bin: 'nydus-backend-proxy', args: ['--blobsdir', dir, '--port', 'http'], code: 2, err: /--port/ },
  { bin: 'nydus-distribute', args: ['server', 'start', '-i', '10.0.0.1', '-d', dir, '--port', '99999'], code: 2, err: /--port/ },
  { bin: 'nydusctl', args: ['--sock', NOPE, 'metrics', 'bogus'], code: 2, err: /metrics kind 'bogus'/ },
  { bin: 'nydusify', args: ['--log-level', 'loud', 'convert'], code: 2, err: /--log-level/ },
  // missing files
  { bin: 'nydus-image', args: ['check', NOPE], code: 1, err: /nope: no such file/ },
  { bin: 'nydus-image', args: ['inspect', '-R', 'stats', NOPE], code: 1, err: /nope: no such file/ },
  { bin: 'nydus-image', args: ['unpack', '--bootstrap', NOPE, '-D', dir, '--output', `${dir}/x.tar`], code: 1, err: /nope: no such file/ },
  { bin: 'nydus-image', args: ['create', NOPE, '-D', `${dir}/blobs`], code: 1, err: /nope/ },
  { bin: 'nydusd', args: ['--mountpoint', NOPE, '--localfs-dir', dir, '--bootstrap', NOPE], code: 2, err: /--mountpoint .*not a directory/ },
  { bin: 'nydusd', args: ['--config', NOPE, '--mountpoint', dir, '--bootstrap', NOPE], code: 1, err: /nope/ },
  // A corrupt bootstrap is the user's input, not an internal error (it was exit 70).
  { bin: 'nydusd', args: ['--localfs-dir', dir, '--mountpoint', `${dir}/mnt`, '--bootstrap', `${dir}/garbage.boot`], code: 1, err: /garbage\.boot: not a RAFS bootstrap/ },
  { bin: 'nydusctl', args: ['--sock', NOPE, 'info'], code: 1, err: /nope/ },
  { bin: 'nydus-backend-proxy', args: ['--blobsdir', NOPE], code: 2, err: /not a directory/ },
  // option values that start with '-'
  { bin: 'nydus-image', args: ['check', '-B', '-nope'], code: 1, err: /-nope: no such file/ },
  { bin: 'nydusd', args: ['--id', '-x', '--mountpoint', NOPE], code: 2, err: /--mountpoint/ },
);

function run(bin: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN(bin), ...args], { encoding: 'utf8', timeout: 60_000, input: '' });
}

for (const c of cases) {
  test(`${c.bin} ${c.args.join(' ') || '(no args)'} → exit ${c.code}`, () => {
    const r = run(c.bin, c.args);
    assert.equal(r.status, c.code, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error:|\n\s+at .+:\d+:\d+/, 'no internal error, no stack trace');
    if (c.out) assert.match(r.stdout, c.out);
    if (c.err) assert.match(r.stderr, c.err);
    if (c.code !== 0 && !c.err?.source.startsWith('Usage')) assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  });
}

test('nydus-backend-proxy on a port in use: one line, exit 1', async () => {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  try {
    const port = (srv.address() as { port: number }).port;
    const r = run('nydus-backend-proxy', ['--blobsdir', dir, '--port', String(port)]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /already in use/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
  } finally {
    srv.close();
  }
});

test('nydus-image create makes a missing --blob-dir', () => {
  const src = testDir('nydus-cli-src-');
  const r = run('nydus-image', ['create', '-B', `${dir}/boot`, '-D', `${dir}/new/blobs`, src]);
  assert.equal(r.status, 0, r.stderr);
});
