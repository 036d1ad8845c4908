// Resolves an image reference to one platform's manifest and config (index → matching entry).
import { NydusError } from '../util/errors.js';
import { dockerCredentials, type Credentials } from './docker-config.js';
import { isIndexType, NYDUS_OS_FEATURE, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from './media-types.js';
import { formatRef, parseImageRef, refReference, type ImageRef } from './reference.js';
import { RegistryClient } from './registry.js';

export function hostPlatform(): string {
  return `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
}

export function platformMatches(p: Platform | undefined, wanted: string[] | 'all'): boolean {
  if (!p || p.os === 'unknown' || p.architecture === 'unknown') return false;
  if (wanted === 'all') return true;
  return wanted.some((w) => {
    const [os, arch, variant] = w.split('/');
    return p.os === os && p.architecture === arch && (!variant || p.variant === variant);
  });
}

export interface ResolvedImage {
  ref: ImageRef;
  client: RegistryClient;
  /** Top-level manifest or index as fetched. */
  top: { mediaType: string; json: Record<string, unknown>; bytes: Buffer };
  indexEntry: Descriptor | undefined;
  manifest: Manifest;
  manifestBytes: Buffer;
  config: ImageConfig;
}

/** True for an index entry marked as a nydus manifest (os.features nydus.remoteimage.v1). */
export const isNydusEntry = (d: Descriptor): boolean => d.platform?.['os.features']?.includes(NYDUS_OS_FEATURE) === true;

/**
 * `nydus` picks between the OCI and the nydus manifest of one platform in a merged index
 * (`convert --merge-platform`): true prefers the nydus one, false the other.
 */
export async function openImage(refStr: string, opts: { insecure?: boolean; plainHttp?: boolean; creds?: Credentials | undefined; platform?: string; nydus?: boolean }): Promise<ResolvedImage> {
  const ref = parseImageRef(refStr);
  const client = new RegistryClient(ref.host, { insecure: opts.insecure ?? false, plainHttp: opts.plainHttp ?? false, creds: opts.creds ?? dockerCredentials(ref.host) });
  const top = await client.getManifest(ref.repo, refReference(ref));
  let m = top;
  let indexEntry: Descriptor | undefined;
  if (isIndexType(top.mediaType)) {
    const want = opts.platform ?? hostPlatform();
    const matches = (top.json as unknown as Index).manifests.filter((d) => platformMatches(d.platform, [want]));
    indexEntry = (opts.nydus === undefined ? undefined : matches.find((d) => isNydusEntry(d) === opts.nydus)) ?? matches[0];
    if (!indexEntry) throw new NydusError('ERR_REGISTRY', `no manifest for platform ${want} in ${formatRef(ref)}`);
    m = await client.getManifest(ref.repo, indexEntry.digest);
  }
  const manifest = m.json as unknown as Manifest;
  const config = JSON.parse((await client.getBlobBytes(ref.repo, manifest.config.digest, 16 << 20)).toString('utf8')) as ImageConfig;
  return { ref, client, top, indexEntry, manifest, manifestBytes: m.bytes, config };
}
