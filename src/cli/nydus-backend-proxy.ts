// nydus-backend-proxy: serve a blob directory over the registry blob API (see src/proxy/server.ts).
// Upstream: contrib/nydus-backend-proxy (Rocket; binds 127.0.0.1:8000 by default).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { NydusError, UsageError } from '../util/errors.js';
import { BackendProxyServer } from '../proxy/server.js';
import { runMain } from './main.js';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from './command.js';

const SPEC = {
  name: 'nydus-backend-proxy',
  summary: 'Serve DIR/<sha256 hex> as GET/HEAD /<repo>/blobs/sha256:<hex> with Range support',
  flags: {
    blobsdir: { short: 'b', arg: 'DIR', desc: 'directory of blobs named by their sha256 hex digest (required)' },
    address: { short: 'a', arg: 'ADDR', desc: 'address to bind', default: '127.0.0.1' },
    port: { short: 'p', arg: 'PORT', desc: 'port; 0 picks a free one', default: '8000' },
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

runMain('nydus-backend-proxy', async (argv) => {
  const p = parseCommand(SPEC, argv);
  if (!p) return 0;
  const { values } = p;
  if (!values.blobsdir) throw new UsageError('--blobsdir is required');
  const dir = resolve(values.blobsdir);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--blobsdir ${dir}: not a directory`);
  const port = values.port === undefined ? 8000 : Number(values.port);
  if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError(`invalid value '${values.port}' for --port: expected 0..65535`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid value '${values.port}' for --port: expected 0..65535`);
  const server = new BackendProxyServer({ blobsDir: dir });
  const address = values.address ?? '127.0.0.1';
  const addr = await server.listen(port, address).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EADDRINUSE') throw new NydusError('ERR_IO', `port ${port} on ${address} is already in use (choose another with --port)`);
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EACCES') throw new NydusError('ERR_IO', `cannot listen on ${address}:${port} (${e.code})`);
    throw e;
  });
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  process.stderr.write(`nydus-backend-proxy: serving ${dir} on http://${host}:${addr.port}\n`);
  await new Promise<void>((done) => {
    const stop = (sig: string): void => {
      process.stderr.write(`nydus-backend-proxy: ${sig}, shutting down\n`);
      void server.close().then(done);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
});
