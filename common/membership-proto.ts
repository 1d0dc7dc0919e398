import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { MembershipClient, MembershipDefinition } from '../gen/nfsha/v1/Membership';
import { LOADER_OPTIONS, protoDir } from './proto-files';

export type { MembershipClient };
type MembershipConstructor = grpc.ServiceClientConstructor & { service: MembershipDefinition };

let loaded: MembershipConstructor | undefined;

/**
 * The Membership service client alone, from agent.proto: all the agent needs.
 * Apart from proto.ts, which loads every service and grpc.health (whose
 * package reads its own .proto when required), so the agent loads neither.
 */
export function membershipClientConstructor(): MembershipConstructor {
  loaded ??= (grpc.loadPackageDefinition(protoLoader.loadSync(path.join(protoDir(), 'nfsha/v1/agent.proto'), { ...LOADER_OPTIONS, includeDirs: [protoDir()] })) as unknown as { nfsha: { v1: { Membership: MembershipConstructor } } }).nfsha.v1.Membership;
  return loaded;
}
