// containerd.services.snapshots.v1.Snapshots over gRPC on a unix socket (a containerd proxy plugin).
// Errors travel as gRPC status codes, which containerd's errdefs turns back into its own errors.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as G from '@grpc/grpc-js';
import { NydusError, describeError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { grpc, services } from './proto.js';
import { GRPC, LABEL_PULL_SECRET, SnapshotError, type Info, type Snapshotter } from './snapshotter.js';

const log = logger('snapshotter');

interface PbInfo {
  name: string;
  parent: string;
  kind: number;
  created_at: { seconds: number; nanos: number };
  updated_at: { seconds: number; nanos: number };
  labels: Record<string, string>;
}
const ts = (ms: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const toPb = (i: Info): PbInfo => ({ name: i.name, parent: i.parent, kind: i.kind, created_at: ts(i.created), updated_at: ts(i.updated), labels: i.labels });

type Req = Record<string, unknown> & { key?: string; parent?: string; name?: string; labels?: Record<string, string> };

function status(e: unknown): Partial<G.StatusObject> {
  if (e instanceof SnapshotError) return { code: e.grpc, details: e.message };
  return { code: GRPC.INTERNAL, details: describeError(e) };
}

/** Wraps a unary handler: logs, maps errors. ALREADY_EXISTS / NOT_FOUND are normal answers, logged at debug. */
function unary(name: string, fn: (req: Req) => Promise<unknown> | unknown): G.handleUnaryCall<Req, unknown> {
  return (call, cb) => {
    const req = call.request;
    log.debug(`${name} key=${req.key ?? req.name ?? ''} parent=${req.parent ?? ''} labels=${JSON.stringify(req.labels ?? {}, (k, v: unknown) => (k === LABEL_PULL_SECRET ? '<redacted>' : v))}`);
    Promise.resolve()
      .then(() => fn(req))
      .then(
        (r) => cb(null, r ?? {}),
        (e: unknown) => {
          const st = status(e);
          (st.code === GRPC.ALREADY_EXISTS || st.code === GRPC.NOT_FOUND ? log.debug : log.warn)(`${name} ${req.key ?? req.name ?? ''}: ${st.details}`);
          cb(st as G.ServiceError);
        },
      );
  };
}

export async function serve(sn: Snapshotter, address: string): Promise<G.Server> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
  server.addService(services().Snapshots!.service, {
    Prepare: unary('Prepare', async (r) => ({ mounts: await sn.prepare(r.key!, r.parent!, r.labels!) })),
    View: unary('View', async (r) => ({ mounts: await sn.view(r.key!, r.parent!, r.labels!) })),
    Mounts: unary('Mounts', async (r) => ({ mounts: await sn.mounts(r.key!) })),
    Commit: unary('Commit', (r) => sn.commit(r.name!, r.key!, r.labels!)),
    Remove: unary('Remove', (r) => sn.remove(r.key!)),
    Stat: unary('Stat', (r) => ({ info: toPb(sn.stat(r.key!)) })),
    Update: unary('Update', (r) => {
      const info = r.info as PbInfo | undefined;
      if (!info?.name) throw new SnapshotError(GRPC.INVALID_ARGUMENT, 'Update needs info.name');
      const mask = (r.update_mask as { paths?: string[] } | null | undefined)?.paths ?? [];
      return { info: toPb(sn.update(info.name, info.labels ?? {}, mask)) };
    }),
    List: (call: G.ServerWritableStream<Req, unknown>) => {
      try {
        const all = sn.list((call.request.filters as string[] | undefined) ?? []);
        // containerd batches List answers; 100 infos a message keeps each well under 4 MiB.
        for (let i = 0; i < all.length; i += 100) call.write({ info: all.slice(i, i + 100).map(toPb) });
        call.end();
      } catch (e) {
        // grpc-js turns an 'error' event on a server stream into the call's status.
        call.emit('error', Object.assign(new Error(String(status(e).details)), status(e)));
      }
    },
    Usage: unary('Usage', (r) => sn.usage(r.key!)),
    Cleanup: unary('Cleanup', () => sn.cleanup()),
  });
  mkdirSync(dirname(address), { recursive: true });
  rmSync(address, { force: true });
  await new Promise<void>((ok, fail) => server.bindAsync(`unix://${address}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? fail(new NydusError('ERR_IO', `cannot listen on ${address}: ${e.message}`)) : ok())));
  return server;
}
