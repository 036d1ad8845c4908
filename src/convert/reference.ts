// Image references ("host[:port]/repo[:tag][@sha256:…]") as docker and containerd parse them:
// a first component without '.', ':' or "localhost" is a docker.io path (library/ for one-part names).
import { NydusError, UsageError } from '../util/errors.js';

export interface ImageRef {
  /** Registry host as written (docker.io for Docker Hub refs). */
  host: string;
  repo: string;
  tag: string | undefined;
  digest: string | undefined;
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** Registered OCI digest algorithms we can verify, with their hex length. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/**
 * Validates a digest taken from a manifest, index or config before it is used in a URL, a file name
 * or a comparison: "algorithm:hex" with a known algorithm and the right length of lowercase hex.
 * A hostile manifest's "sha256:/../../x" never reaches a path.
 */
export function checkDigest(d: unknown, what: string): { algorithm: DigestAlgorithm; hex: string } {
  const shown = typeof d === 'string' ? JSON.stringify(d.length > 80 ? `${d.slice(0, 80)}…` : d) : String(typeof d);
  if (typeof d !== 'string') throw new NydusError('ERR_FORMAT_INVALID', `${what}: digest must be a string, got ${shown}`);
  const colon = d.indexOf(':');
  const algorithm = d.slice(0, Math.max(0, colon));
  const hex = d.slice(colon + 1);
  if (colon <= 0 || !Object.hasOwn(DIGEST_ALGORITHMS, algorithm)) throw new NydusError('ERR_FORMAT_INVALID', `${what}: invalid digest ${shown} (expected sha256:<64 hex> or sha512:<128 hex>)`);
  const len = DIGEST_ALGORITHMS[algorithm as DigestAlgorithm];
  if (hex.length !== len || !/^[0-9a-f]+$/.test(hex)) throw new NydusError('ERR_FORMAT_INVALID', `${what}: invalid digest ${shown} (${algorithm} needs ${len} lowercase hex digits)`);
  return { algorithm: algorithm as DigestAlgorithm, hex };
}

export function parseImageRef(s: string): ImageRef {
  let rest = s.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new UsageError(`invalid image reference '${s}': bad digest '${digest}'`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new UsageError(`invalid image reference '${s}': bad tag '${tag}'`);
  }
  let host = 'docker.io';
  const first = rest.split('/')[0] ?? '';
  if (rest.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    rest = rest.slice(first.length + 1);
  } else if (!rest.includes('/')) {
    rest = `library/${rest}`;
  }
  if (!REPO_RE.test(rest)) throw new UsageError(`invalid image reference '${s}': bad repository '${rest}'`);
  if (!tag && !digest) tag = 'latest';
  return { host, repo: rest, tag, digest };
}

/** The manifest reference used in /v2/<repo>/manifests/<reference>. */
export function refReference(r: ImageRef): string {
  return r.digest ?? r.tag ?? 'latest';
}

export function formatRef(r: ImageRef): string {
  return `${r.host}/${r.repo}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Docker Hub's API endpoint differs from the name users write. */
export function apiHost(host: string): string {
  return host === 'docker.io' ? 'registry-1.docker.io' : host;
}
