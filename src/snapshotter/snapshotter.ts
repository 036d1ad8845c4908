// The snapshotter: containerd's overlayfs snapshot semantics (directories <root>/snapshots/<id>/{fs,work})
// plus upstream nydus-snapshotter's remote snapshots. A Nydus data layer prepared with a target ref is
// committed under that ref at once and answered ALREADY_EXISTS (containerd then skips its download);
// the bootstrap layer unpacks normally; a container on top of it gets an overlay whose lower dir is
// the nydusd mount of the image.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { DaemonManager, isMounted, lazyUmount } from './daemons.js';
import { compileFilters } from './filter.js';
import { KIND_ACTIVE, KIND_COMMITTED, KIND_VIEW, MetaStore, type Kind, type SnapshotRecord } from './store.js';

const log = logger('snapshotter');

export const LABEL_TARGET_REF = 'containerd.io/snapshot.ref';
export const LABEL_NYDUS_BLOB = 'containerd.io/snapshot/nydus-blob';
export const LABEL_NYDUS_BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';
export const LABEL_CRI_IMAGE_REF = 'containerd.io/snapshot/cri.image-ref';
export const LABEL_CRI_LAYER_DIGEST = 'containerd.io/snapshot/cri.layer-digest';
/** Registry credentials a CRI integration may pass (upstream NydusImagePullUsername/Secret). */
export const LABEL_PULL_USERNAME = 'containerd.io/snapshot/pullusername';
export const LABEL_PULL_SECRET = 'containerd.io/snapshot/pullsecret';
/** Where nydusify's bootstrap layer puts the bootstrap (upstream BootstrapFile). */
export const BOOTSTRAP_IN_LAYER = 'image/image.boot';

/** gRPC status codes containerd's errdefs maps back to its own errors. */
export const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, FAILED_PRECONDITION: 9, INTERNAL: 13, UNAVAILABLE: 14 } as const;

export class SnapshotError extends NydusError {
  constructor(
    readonly grpc: number,
    message: string,
  ) {
    super('ERR_API', message);
  }
}

export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface Info {
  name: string;
  parent: string;
  kind: Kind;
  created: number;
  updated: number;
  labels: Record<string, string>;
}

/** Builds the nydusd config of an image from its bootstrap snapshot's labels. */
export type RemoteConfigFn = (labels: Record<string, string>, cacheDir: string) => Promise<Record<string, unknown>>;

/** The pull secret stays in the store (a restart needs it) but never leaves in an answer. */
const info = (r: SnapshotRecord): Info => {
  const { [LABEL_PULL_SECRET]: secret, ...labels } = r.labels;
  void secret;
  return { name: r.key, parent: r.parent, kind: r.kind, created: r.created, updated: r.updated, labels };
};

export class Snapshotter {
  readonly store: MetaStore;
  readonly daemons: DaemonManager;
  constructor(
    readonly root: string,
    daemons: (store: MetaStore) => DaemonManager,
    readonly remoteConfig: RemoteConfigFn,
  ) {
    mkdirSync(join(root, 'snapshots'), { recursive: true });
    this.store = new MetaStore(join(root, 'metadata.db'));
    this.daemons = daemons(this.store);
  }

  close(): void {
    this.store.close();
  }

  /** After a restart: re-attach running daemons, re-mount images that have containers on them. */
  async recover(): Promise<void> {
    await this.daemons.reattach();
    for (const s of this.store.all()) {
      if (s.kind === KIND_COMMITTED && s.labels[LABEL_NYDUS_BOOTSTRAP] === 'true' && this.store.hasChildren(s.key)) {
        await this.#remoteLower(s).catch((e: Error) => log.warn(`re-mount of ${s.key}: ${e.message}`));
      }
    }
  }

  #need(key: string): SnapshotRecord {
    const r = this.store.get(key);
    if (!r) throw new SnapshotError(GRPC.NOT_FOUND, `snapshot ${key} does not exist`);
    return r;
  }

  fsDir(id: number): string {
    return join(this.root, 'snapshots', String(id), 'fs');
  }

  /** Parent chain, nearest first. */
  #parents(r: SnapshotRecord): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    let p = r.parent;
    while (p) {
      const s = this.store.get(p);
      if (!s) throw new SnapshotError(GRPC.FAILED_PRECONDITION, `parent snapshot ${p} of ${r.key} does not exist`);
      out.push(s);
      p = s.parent;
    }
    return out;
  }

  async prepare(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#create(KIND_ACTIVE, key, parent, labels);
  }

  async view(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#create(KIND_VIEW, key, parent, labels);
  }

  async #create(kind: Kind, key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    if (!key) throw new SnapshotError(GRPC.INVALID_ARGUMENT, 'snapshot key is empty');
    const target = labels[LABEL_TARGET_REF];
    if (kind === KIND_ACTIVE && target && labels[LABEL_NYDUS_BLOB] === 'true') {
      // A Nydus data layer: nothing to unpack, nydusd reads the blob on demand.
      this.store.tx(() => {
        if (this.store.get(target)) return;
        if (parent) this.#need(parent);
        const r = this.store.insert(key, parent, KIND_ACTIVE, labels);
        this.store.commit(r.id, target, labels);
      });
      log.debug(`remote layer ${target} (${labels[LABEL_CRI_LAYER_DIGEST] ?? 'no digest label'}) committed without unpack`);
      throw new SnapshotError(GRPC.ALREADY_EXISTS, `target snapshot "${target}" already exists`);
    }
    const r = this.store.tx(() => {
      if (this.store.get(key)) throw new SnapshotError(GRPC.ALREADY_EXISTS, `snapshot ${key} already exists`);
      if (parent) {
        const p = this.#need(parent);
        if (p.kind !== KIND_COMMITTED) throw new SnapshotError(GRPC.INVALID_ARGUMENT, `parent ${parent} is not a committed snapshot`);
      }
      return this.store.insert(key, parent, kind, labels);
    });
    const dir = join(this.root, 'snapshots', String(r.id));
    mkdirSync(join(dir, 'fs'), { recursive: true });
    if (kind === KIND_ACTIVE) mkdirSync(join(dir, 'work'), { recursive: true });
    try {
      return await this.#mounts(r);
    } catch (e) {
      // A snapshot that cannot be mounted is of no use to containerd: undo it.
      this.store.remove(r.id);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async mounts(key: string): Promise<Mount[]> {
    return this.#mounts(this.#need(key));
  }

  /** The nydusd mountpoint of the image whose bootstrap snapshot is `boot`. */
  async #remoteLower(boot: SnapshotRecord): Promise<string> {
    const bootstrap = join(this.fsDir(boot.id), BOOTSTRAP_IN_LAYER);
    const layer = boot.labels[LABEL_CRI_LAYER_DIGEST] ?? boot.key;
    if (!existsSync(bootstrap)) throw new SnapshotError(GRPC.FAILED_PRECONDITION, `nydus bootstrap layer ${layer} has no ${BOOTSTRAP_IN_LAYER}`);
    const cacheDir = this.daemons.cacheDirFor(boot.id);
    const config = async (): Promise<Record<string, unknown>> => {
      mkdirSync(cacheDir, { recursive: true });
      return this.remoteConfig(boot.labels, cacheDir);
    };
    try {
      return await this.daemons.ensure({ snapshotId: boot.id, bootstrap, config });
    } catch (e) {
      throw new SnapshotError(GRPC.FAILED_PRECONDITION, `nydus bootstrap layer ${layer}: ${(e as Error).message}`);
    }
  }

  async #mounts(r: SnapshotRecord): Promise<Mount[]> {
    const parents = this.#parents(r);
    const own = join(this.root, 'snapshots', String(r.id));
    const boot = parents.findIndex((p) => p.labels[LABEL_NYDUS_BOOTSTRAP] === 'true');
    let lowers: string[];
    if (boot >= 0) {
      // Layers above the bootstrap (none in Nydus images) stay above the nydusd mount.
      lowers = [...parents.slice(0, boot).map((p) => this.fsDir(p.id)), await this.#remoteLower(parents[boot]!)];
    } else {
      lowers = parents.map((p) => this.fsDir(p.id));
    }
    if (r.kind === KIND_ACTIVE) {
      if (lowers.length === 0) return [{ type: 'bind', source: join(own, 'fs'), options: ['rw', 'rbind'] }];
      return [{ type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${join(own, 'work')}`, `upperdir=${join(own, 'fs')}`, `lowerdir=${lowers.join(':')}`] }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: join(own, 'fs'), options: ['ro', 'rbind'] }];
    if (lowers.length === 1) return [{ type: 'bind', source: lowers[0]!, options: ['ro', 'rbind'] }];
    return [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${lowers.join(':')}`] }];
  }

  commit(name: string, key: string, labels: Record<string, string>): void {
    this.store.tx(() => {
      const r = this.#need(key);
      if (r.kind !== KIND_ACTIVE) throw new SnapshotError(GRPC.FAILED_PRECONDITION, `snapshot ${key} is not active`);
      if (this.store.get(name)) throw new SnapshotError(GRPC.ALREADY_EXISTS, `snapshot ${name} already exists`);
      this.store.commit(r.id, name, { ...r.labels, ...labels });
    });
    rmSync(join(this.root, 'snapshots', String(this.#need(name).id), 'work'), { recursive: true, force: true });
  }

  async remove(key: string): Promise<void> {
    const r = this.store.tx(() => {
      const r = this.#need(key);
      if (this.store.hasChildren(key)) throw new SnapshotError(GRPC.FAILED_PRECONDITION, `cannot remove snapshot ${key}: it has children`);
      this.store.remove(r.id);
      return r;
    });
    if (r.labels[LABEL_NYDUS_BOOTSTRAP] === 'true') await this.daemons.release(r.id);
    rmSync(join(this.root, 'snapshots', String(r.id)), { recursive: true, force: true });
  }

  stat(key: string): Info {
    return info(this.#need(key));
  }

  /** `paths` as in containerd: empty = all labels; "labels" or "labels.<key>". */
  update(name: string, labels: Record<string, string>, paths: string[]): Info {
    return this.store.tx(() => {
      const r = this.#need(name);
      let next: Record<string, string>;
      if (paths.length === 0) next = { ...labels };
      else {
        next = { ...r.labels };
        for (const p of paths) {
          if (p === 'labels') next = { ...labels };
          else if (p.startsWith('labels.')) {
            const k = p.slice(7);
            if (k in labels) next[k] = labels[k]!;
            else delete next[k];
          } else throw new SnapshotError(GRPC.INVALID_ARGUMENT, `cannot update field ${p} of snapshot ${name}`);
        }
      }
      this.store.setLabels(r.id, next);
      return info(this.#need(name));
    });
  }

  list(filters: string[]): Info[] {
    let match: ReturnType<typeof compileFilters>;
    try {
      match = compileFilters(filters);
    } catch (e) {
      throw new SnapshotError(GRPC.INVALID_ARGUMENT, (e as Error).message);
    }
    return this.store.all().filter((r) =>
      match((path) => {
        const [f, ...rest] = path;
        if (f === 'labels') return r.labels[rest.join('.')];
        if (rest.length) return undefined;
        if (f === 'name') return r.key;
        if (f === 'parent') return r.parent;
        if (f === 'kind') return ({ [KIND_VIEW]: 'view', [KIND_ACTIVE]: 'active', [KIND_COMMITTED]: 'committed' } as Record<number, string>)[r.kind];
        return undefined;
      }),
    ).map(info);
  }

  /** Disk usage of the snapshot's own directory (remote layers use none here). */
  async usage(key: string): Promise<{ size: number; inodes: number }> {
    const r = this.#need(key);
    let size = 0;
    let inodes = 0;
    const seen = new Set<number>();
    const walk = async (d: string): Promise<void> => {
      for (const n of await readdir(d).catch(() => [] as string[])) {
        const p = join(d, n);
        const st = await lstat(p);
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
        inodes++;
        size += st.blocks * 512;
        if (st.isDirectory()) await walk(p);
      }
    };
    await walk(this.fsDir(r.id));
    return { size, inodes };
  }

  /** Removes directories, daemons and mounts that no snapshot owns any more. */
  async cleanup(): Promise<void> {
    const ids = new Set(this.store.all().map((r) => r.id));
    for (const n of readdirSync(join(this.root, 'snapshots'))) {
      if (!ids.has(Number(n))) rmSync(join(this.root, 'snapshots', n), { recursive: true, force: true });
    }
    for (const d of this.store.daemons()) if (d.id !== 'shared' && !ids.has(d.snapshotId)) await this.daemons.release(d.snapshotId);
    await this.daemons.stopIdleShared();
    for (const dir of [join(this.root, 'mnt'), this.daemons.cacheRoot]) {
      if (!existsSync(dir)) continue;
      for (const n of readdirSync(dir)) {
        if (n === 'shared' || ids.has(Number(n))) continue;
        const p = join(dir, n);
        if (isMounted(p)) lazyUmount(p);
        rmSync(p, { recursive: true, force: true });
      }
    }
  }
}
