// The nydusd config of a Nydus image from its bootstrap snapshot's labels: registry and repository
// from cri.image-ref, credentials from the pullusername/pullsecret labels or the docker config, the scheme learnt by probing the registry
// (localhost or skip_ssl_verify registries may speak plain HTTP), the cache in the image's own directory.
import { readFileSync } from 'node:fs';
import { dockerCredentials } from '../convert/docker-config.js';
import { nydusdConfig } from '../convert/mount.js';
import { parseImageRef } from '../convert/reference.js';
import { RegistryClient } from '../convert/registry.js';
import { ConfigError, NydusError } from '../util/errors.js';
import type { SnapshotterConfig } from './config.js';
import { LABEL_CRI_IMAGE_REF, LABEL_CRI_LAYER_DIGEST, LABEL_PULL_SECRET, LABEL_PULL_USERNAME, type RemoteConfigFn } from './snapshotter.js';

export function remoteConfigFn(cfg: SnapshotterConfig): RemoteConfigFn {
  return async (labels, cacheDir) => {
    const imageRef = labels[LABEL_CRI_IMAGE_REF];
    const layer = labels[LABEL_CRI_LAYER_DIGEST];
    if (!imageRef) throw new NydusError('ERR_CONFIG_INVALID', `no ${LABEL_CRI_IMAGE_REF} label: pull Nydus images with 'nydus-snapshotter pull' or through CRI`);
    const ref = parseImageRef(imageRef);
    const user = labels[LABEL_PULL_USERNAME];
    const secret = labels[LABEL_PULL_SECRET];
    const creds = user && secret ? { username: user, password: secret } : dockerCredentials(ref.host);
    // As containerd's resolver: TLS is verified unless skip_ssl_verify is set; localhost may speak
    // plain HTTP. One HEAD on the bootstrap layer then teaches the client the scheme.
    const insecure = cfg.skipSslVerify || /^(localhost|127(\.\d+){3}|\[::1\])(:\d+)?$/.test(ref.host);
    const client = new RegistryClient(ref.host, { insecure, creds });
    if (layer) {
      const size = await client.headBlob(ref.repo, layer);
      if (size === undefined) throw new NydusError('ERR_REGISTRY', `layer ${layer} is not in ${ref.host}/${ref.repo}`);
    }
    const auth = creds ? Buffer.from(`${creds.username}:${creds.password}`).toString('base64') : undefined;
    const base = nydusdConfig({ scheme: client.scheme, host: client.host, repo: ref.repo, auth, insecure: cfg.skipSslVerify, cacheDir, prefetch: false });
    if (!cfg.nydusdConfig) return base;
    // A template: keep its settings, fill in what is per image.
    let t: Record<string, unknown>;
    try {
      t = JSON.parse(readFileSync(cfg.nydusdConfig, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`daemon.nydusd_config ${cfg.nydusdConfig}: ${(e as Error).message}`);
    }
    const dev = (t.device ?? {}) as Record<string, Record<string, unknown>>;
    const be = (dev.backend ?? { type: 'registry', config: {} }) as { type: string; config: Record<string, unknown> };
    const baseBe = (base.device as { backend: { config: Record<string, unknown> } }).backend.config;
    be.config = { ...be.config, scheme: baseBe.scheme, host: baseBe.host, repo: baseBe.repo, ...(auth ? { auth } : {}) };
    const cache = (dev.cache ?? { type: 'blobcache', config: {} }) as { type: string; config: Record<string, unknown> };
    cache.config = { ...cache.config, work_dir: cacheDir };
    return { ...t, device: { ...dev, backend: be, cache } };
  };
}
