// Loads containerd's API definitions (proto/ at the package root) with @grpc/proto-loader.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpcTypes from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
export const grpc = require('@grpc/grpc-js') as typeof grpcTypes;
const loader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');

function protoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'proto', 'containerd'))) return join(d, 'proto');
    d = dirname(d);
  }
  throw new Error('containerd .proto files not found (proto/ at the package root)');
}

/** Fields keep their proto names (snake_case); int64 as numbers; maps and repeated default to empty. */
export const LOADER_OPTIONS = { keepCase: true, longs: Number, enums: Number, defaults: true, arrays: true, objects: true } as const;

type ServiceCtor = grpcTypes.ServiceClientConstructor;
let cached: Record<string, ServiceCtor> | undefined;

/** Service constructors by short name: Snapshots, Content, Images, Leases, Diff. */
export function services(): Record<string, ServiceCtor> {
  if (cached) return cached;
  const root = protoRoot();
  const files = ['snapshots', 'content', 'images', 'leases', 'diff'].map((n) => `containerd/services/${n}.proto`);
  const def = loader.loadSync(files, { ...LOADER_OPTIONS, includeDirs: [root] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { containerd: { services: Record<string, { v1: Record<string, ServiceCtor> }> } };
  const s = pkg.containerd.services;
  cached = { Snapshots: s.snapshots!.v1.Snapshots!, Content: s.content!.v1.Content!, Images: s.images!.v1.Images!, Leases: s.leases!.v1.Leases!, Diff: s.diff!.v1.Diff! };
  return cached;
}
