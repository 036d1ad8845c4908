// The one module that knows every backend: maps the config's `backend.type` to a factory.
// Other code may add types with registerBackend (tests register in-memory backends this way).
// Upstream: storage/src/factory.rs BlobFactory::new_backend.
import { ConfigError } from '../../util/errors.js';
import type { BlobBackend } from './backend.js';
import { createHttpProxyBackend } from './http-proxy.js';
import { createLocalFsBackend } from './localfs.js';
import { createOssBackend } from './oss.js';
import { createRegistryBackend } from './registry.js';
import { createS3Backend } from './s3.js';

/** Builds a backend from its own config object (`backend.<type>` in v2, `backend.config` in v1). */
export type BackendFactory = (config: Record<string, unknown>) => BlobBackend;

const factories = new Map<string, BackendFactory>([
  ['localfs', createLocalFsBackend],
  ['registry', createRegistryBackend],
  ['s3', createS3Backend],
  ['oss', createOssBackend],
  ['http-proxy', createHttpProxyBackend],
]);

/** Adds or replaces the factory for `type`. */
export function registerBackend(type: string, factory: BackendFactory): void {
  factories.set(type, factory);
}

export function registeredBackends(): string[] {
  return [...factories.keys()].sort();
}

export function createBackend(type: string, config: unknown): BlobBackend {
  const factory = factories.get(type);
  if (!factory) throw new ConfigError(`backend.type: unknown backend "${type}" (supported: ${registeredBackends().join(', ')})`);
  const cfg = config && typeof config === 'object' && !Array.isArray(config) ? (config as Record<string, unknown>) : {};
  return factory(cfg);
}
