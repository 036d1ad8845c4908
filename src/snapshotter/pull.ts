// `nydus-snapshotter pull`: pulls an image into containerd through its own gRPC services (leases,
// content, images, snapshots, diff), the way the CRI plugin does, with the same snapshot labels
// (snapshot.ref = chainID, cri.layer-digest, cri.image-ref, cri.manifest-digest, cri.image-layers and
// the layer's containerd.io/snapshot/* annotations). For a Nydus image only the manifest, config and
// bootstrap layer are fetched: the snapshotter answers ALREADY_EXISTS for the data layers.
import { createHash, randomBytes } from 'node:crypto';
import type * as G from '@grpc/grpc-js';
import type { Readable } from 'node:stream';
import { isIndexType, type Descriptor } from '../convert/media-types.js';
import { openImage, type ResolvedImage } from '../convert/resolve.js';
import { formatRef } from '../convert/reference.js';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { grpc, services } from './proto.js';
import { GRPC, LABEL_CRI_IMAGE_REF, LABEL_CRI_LAYER_DIGEST, LABEL_NYDUS_BLOB, LABEL_TARGET_REF } from './snapshotter.js';

const log = logger('pull');

export interface PullOptions {
  /** containerd's gRPC socket. */
  address: string;
  namespace: string;
  snapshotter: string;
  ref: string;
  insecure?: boolean;
  plainHttp?: boolean;
  platform?: string;
}

export interface PullResult {
  name: string;
  digest: string;
  /** Layers unpacked by containerd (the others were remote). */
  unpacked: string[];
  remote: string[];
}

type Client = G.Client & Record<string, (...a: unknown[]) => unknown>;

/** chainID(L0..Ln) as the OCI image spec defines it. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out.at(-1);
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

/** CRI keeps its cri.image-layers label under 4 KiB by dropping the oldest layers. */
function imageLayersLabel(layers: Descriptor[], from: number): string {
  let s = '';
  for (const l of layers.slice(from)) {
    const next = s ? `${s},${l.digest}` : l.digest;
    if (next.length + 'containerd.io/snapshot/cri.image-layers'.length > 4096) break;
    s = next;
  }
  return s;
}

export class ContainerdClient {
  readonly #clients: Record<string, Client> = {};
  readonly #meta: G.Metadata;
  constructor(
    readonly address: string,
    readonly namespace: string,
  ) {
    this.#meta = new grpc.Metadata();
    this.#meta.set('containerd-namespace', namespace);
    const creds = grpc.credentials.createInsecure();
    for (const [name, Ctor] of Object.entries(services())) this.#clients[name] = new Ctor(`unix://${address}`, creds, { 'grpc.max_receive_message_length': 64 << 20 }) as unknown as Client;
  }

  set lease(id: string | undefined) {
    if (id) this.#meta.set('containerd-lease', id);
    else this.#meta.remove('containerd-lease');
  }

  call<T>(svc: string, method: string, req: unknown): Promise<T> {
    const c = this.#clients[svc]!;
    return new Promise((ok, fail) => {
      (c[method] as (r: unknown, m: G.Metadata, o: G.CallOptions, cb: (e: G.ServiceError | null, r: T) => void) => void).call(c, req, this.#meta, { deadline: Date.now() + 300_000 }, (e, r) => (e ? fail(e) : ok(r)));
    });
  }

  /** Writes a blob into the content store (skipped when present) and sets its labels. */
  async writeContent(desc: Descriptor, data: Buffer | Readable, labels: Record<string, string>): Promise<void> {
    const have = await this.call('Content', 'Info', { digest: desc.digest }).then(() => true, (e: G.ServiceError) => (e.code === GRPC.NOT_FOUND ? false : Promise.reject(e)));
    if (!have) {
      const c = this.#clients.Content!;
      const stream = (c.Write as (m: G.Metadata) => G.ClientDuplexStream<unknown, unknown>).call(c, this.#meta);
      const done = new Promise<void>((ok, fail) => {
        stream.on('data', (r: { action: number }) => {
          if (r.action === 2) ok();
        });
        stream.on('error', (e: G.ServiceError) => (e.code === GRPC.ALREADY_EXISTS ? ok() : fail(e)));
        stream.on('end', () => ok());
      });
      const ref = `nydus-pull-${desc.digest}`;
      let offset = 0;
      const send = (m: Record<string, unknown>): Promise<void> => new Promise((ok) => (stream.write({ ref, total: desc.size, expected: desc.digest, ...m }) ? ok() : stream.once('drain', ok)));
      // STAT first: containerd resets or resumes an earlier ingest of the same ref.
      await send({ action: 0 });
      const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(data) ? [data] : (data as AsyncIterable<Buffer>);
      for await (const chunk of chunks) {
        for (let i = 0; i < chunk.length; i += 1 << 20) {
          const part = chunk.subarray(i, i + (1 << 20));
          await send({ action: 1, offset, data: part });
          offset += part.length;
        }
      }
      await send({ action: 2, offset, labels });
      stream.end();
      await done;
    }
    await this.call('Content', 'Update', { info: { digest: desc.digest, labels }, update_mask: { paths: Object.keys(labels).map((k) => `labels.${k}`) } });
  }

  close(): void {
    for (const c of Object.values(this.#clients)) c.close();
  }
}

const isNydusBootstrap = (l: Descriptor): boolean => l.annotations?.['containerd.io/snapshot/nydus-bootstrap'] === 'true';

/** gRPC failures (containerd down, refused) as one-line errors naming containerd's socket. */
export async function pullImage(o: PullOptions): Promise<PullResult> {
  try {
    return await pull(o);
  } catch (e) {
    const g = e as Partial<G.ServiceError>;
    if (!(e instanceof NydusError) && typeof g.code === 'number') throw new NydusError('ERR_API', `containerd at ${o.address}: ${g.details || g.message}`);
    throw e;
  }
}

async function pull(o: PullOptions): Promise<PullResult> {
  const img: ResolvedImage = await openImage(o.ref, { insecure: o.insecure ?? false, plainHttp: o.plainHttp ?? false, ...(o.platform ? { platform: o.platform } : {}) });
  const name = formatRef(img.ref);
  const m = img.manifest;
  const diffIds = img.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length) throw new NydusError('ERR_REGISTRY', `${name}: config has ${diffIds.length} diff_ids for ${m.layers.length} layers`);
  const chains = chainIds(diffIds);
  const nydus = m.layers.length > 0 && isNydusBootstrap(m.layers.at(-1)!);
  const manifestDigest = img.indexEntry?.digest ?? `sha256:${createHash('sha256').update(img.manifestBytes).digest('hex')}`;
  const cd = new ContainerdClient(o.address, o.namespace);
  const leaseId = `nydus-pull-${randomBytes(6).toString('hex')}`;
  try {
    await cd.call('Leases', 'Create', { id: leaseId, labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3600_000).toISOString() } });
    cd.lease = leaseId;
    // Content: manifest (+ index), config; with gc labels so the image keeps them after the lease.
    const configBytes = await img.client.getBlobBytes(img.ref.repo, m.config.digest, 16 << 20);
    await cd.writeContent(m.config, configBytes, { [`containerd.io/gc.ref.snapshot.${o.snapshotter}`]: chains.at(-1) ?? '' });
    const mLabels: Record<string, string> = { 'containerd.io/gc.ref.content.config': m.config.digest };
    m.layers.forEach((l, i) => (mLabels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
    const manifestDesc: Descriptor = { mediaType: m.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: img.manifestBytes.length };
    await cd.writeContent(manifestDesc, img.manifestBytes, mLabels);
    let target = manifestDesc;
    if (isIndexType(img.top.mediaType)) {
      const idxDigest = `sha256:${createHash('sha256').update(img.top.bytes).digest('hex')}`;
      target = { mediaType: img.top.mediaType, digest: idxDigest, size: img.top.bytes.length };
      await cd.writeContent(target, img.top.bytes, { 'containerd.io/gc.ref.content.m.0': manifestDigest });
    }
    // Unpack through the snapshotter, layer by layer, as containerd's unpacker does.
    const res: PullResult = { name, digest: target.digest, unpacked: [], remote: [] };
    let parent = '';
    for (let i = 0; i < m.layers.length; i++) {
      const layer = m.layers[i]!;
      const chain = chains[i]!;
      const exists = await cd.call('Snapshots', 'Stat', { snapshotter: o.snapshotter, key: chain }).then(() => true, () => false);
      if (!exists) {
        const labels: Record<string, string> = { [LABEL_TARGET_REF]: chain, [LABEL_CRI_LAYER_DIGEST]: layer.digest, [LABEL_CRI_IMAGE_REF]: name, 'containerd.io/snapshot/cri.manifest-digest': manifestDigest, 'containerd.io/snapshot/cri.image-layers': imageLayersLabel(m.layers, i) };
        for (const [k, v] of Object.entries(layer.annotations ?? {})) if (k.startsWith('containerd.io/snapshot/')) labels[k] = v;
        if (nydus && !isNydusBootstrap(layer) && labels[LABEL_NYDUS_BLOB] !== 'true') labels[LABEL_NYDUS_BLOB] = 'true';
        const key = `extract-${process.hrtime.bigint()}-${randomBytes(4).toString('base64url')} ${chain}`;
        let mounts: unknown[] | undefined;
        try {
          mounts = (await cd.call<{ mounts: unknown[] }>('Snapshots', 'Prepare', { snapshotter: o.snapshotter, key, parent, labels })).mounts;
        } catch (e) {
          if ((e as G.ServiceError).code !== GRPC.ALREADY_EXISTS) throw new NydusError('ERR_API', `layer ${layer.digest}: prepare snapshot: ${(e as G.ServiceError).details ?? (e as Error).message}`);
        }
        if (mounts) {
          try {
            const blob = await img.client.getBlob(img.ref.repo, layer.digest).catch((e: Error) => Promise.reject(new NydusError('ERR_REGISTRY', `fetch: ${e.message}`)));
            await cd.writeContent(layer, blob, { 'containerd.io/uncompressed': diffIds[i]! });
            await cd.call('Diff', 'Apply', { diff: { media_type: layer.mediaType, digest: layer.digest, size: layer.size, annotations: layer.annotations ?? {} }, mounts });
            await cd.call('Snapshots', 'Commit', { snapshotter: o.snapshotter, name: chain, key, labels });
            res.unpacked.push(layer.digest);
          } catch (e) {
            await cd.call('Snapshots', 'Remove', { snapshotter: o.snapshotter, key }).catch(() => undefined);
            const msg = (e as G.ServiceError).details ?? (e as Error).message;
            throw new NydusError('ERR_API', `layer ${layer.digest}${isNydusBootstrap(layer) ? ' (nydus bootstrap)' : ''}: ${msg}`);
          }
        } else res.remote.push(layer.digest);
      } else res.remote.push(layer.digest);
      parent = chain;
    }
    const image = { name, labels: {}, target: { media_type: target.mediaType, digest: target.digest, size: target.size, annotations: {} } };
    await cd.call('Images', 'Create', { image }).catch((e: G.ServiceError) => {
      if (e.code !== GRPC.ALREADY_EXISTS) throw e;
      return cd.call('Images', 'Update', { image, update_mask: { paths: ['target'] } });
    });
    log.info(`pulled ${name} (${res.unpacked.length} layers unpacked, ${res.remote.length} remote)`);
    return res;
  } finally {
    cd.lease = undefined;
    await cd.call('Leases', 'Delete', { id: leaseId }).catch(() => undefined);
    cd.close();
  }
}
