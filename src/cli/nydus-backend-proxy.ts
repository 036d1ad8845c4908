// nydus-backend-proxy: serve a blob directory over the registry blob API (see src/proxy/server.ts).
// Upstream: contrib/nydus-backend-proxy (Rocket; binds 127.0.0.1:8000 by default).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { BackendProxyServer } from '../proxy/server.js';
import { parseFlags, runMain } from './main.js';

const USAGE = `Usage: nydus-backend-proxy --blobsdir DIR [--address ADDR] [--port PORT]

Serves DIR/<sha256 hex> as GET/HEAD /<repo>/blobs/sha256:<hex> with Range support.
  -b, --blobsdir DIR   directory of blobs named by their sha256 hex digest (required)
  -a, --address ADDR   address to bind (default 127.0.0.1, as upstream's Rocket default)
  -p, --port PORT      port (default 8000; 0 picks a free one)
  -h, --help           show this help
  -V, --version        show the version
`;

runMain('nydus-backend-proxy', async (argv) => {
  const { values } = parseFlags(
    argv,
    {
      blobsdir: { type: 'string', short: 'b' },
      address: { type: 'string', short: 'a' },
      port: { type: 'string', short: 'p' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
      debug: { type: 'boolean' },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write('nydus-backend-proxy (nydus-ts) 0.1.0\n');
    return 0;
  }
  if (!values.blobsdir) throw new UsageError('--blobsdir is required');
  const dir = resolve(values.blobsdir);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--blobsdir ${dir}: not a directory`);
  const port = values.port === undefined ? 8000 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid --port '${values.port}'`);
  const server = new BackendProxyServer({ blobsDir: dir });
  const addr = await server.listen(port, values.address ?? '127.0.0.1');
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
