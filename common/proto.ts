import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { SessionMasterClient, SessionMasterDefinition } from '../gen/nfsha/v1/SessionMaster';
import type { GateClient, GateDefinition } from '../gen/nfsha/v1/Gate';
import type { MembershipClient, MembershipDefinition } from '../gen/nfsha/v1/Membership';
import type { DeployerClient, DeployerDefinition } from '../gen/nfsha/v1/Deployer';

/** Where the .proto files live: the repo's proto/ (overridable for bundled builds). */
export function protoDir(): string {
  return process.env.NFSHA_PROTO_DIR ?? path.resolve(__dirname, '..', '..', 'proto');
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const PROTO_FILES = ['nfsha/v1/master.proto', 'nfsha/v1/gate.proto', 'nfsha/v1/agent.proto', 'nfsha/v1/deploy.proto'];

let cached: protoLoader.PackageDefinition | undefined;

/**
 * One package definition holding nfsha.v1 and grpc.health.v1, so server
 * reflection describes every service a server exposes (grpcurl list shows all).
 */
export function packageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(
    [...PROTO_FILES.map((f) => path.join(protoDir(), f)), healthProtoPath],
    { ...LOADER_OPTIONS, includeDirs: [protoDir()] },
  );
  return cached;
}

interface NfshaGrpc {
  SessionMaster: grpc.ServiceClientConstructor & { service: SessionMasterDefinition };
  Gate: grpc.ServiceClientConstructor & { service: GateDefinition };
  Membership: grpc.ServiceClientConstructor & { service: MembershipDefinition };
  Deployer: grpc.ServiceClientConstructor & { service: DeployerDefinition };
}

export function nfshaGrpc(): NfshaGrpc {
  const root = grpc.loadPackageDefinition(packageDefinition()) as unknown as { nfsha: { v1: NfshaGrpc } };
  return root.nfsha.v1;
}

export const MASTER_SERVICE = 'nfsha.v1.SessionMaster';
export const GATE_SERVICE = 'nfsha.v1.Gate';
export const MEMBERSHIP_SERVICE = 'nfsha.v1.Membership';
export const DEPLOYER_SERVICE = 'nfsha.v1.Deployer';

export type { SessionMasterClient, GateClient, MembershipClient, DeployerClient };
