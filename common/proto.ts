import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { SessionMasterClient, SessionMasterDefinition } from '../gen/nfsha/v1/SessionMaster';
import type { GateClient, GateDefinition } from '../gen/nfsha/v1/Gate';
import type { MembershipClient, MembershipDefinition } from '../gen/nfsha/v1/Membership';
import type { DeployerClient, DeployerDefinition } from '../gen/nfsha/v1/Deployer';
import { LOADER_OPTIONS, protoDir } from './proto-files';

export { protoDir };

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

const REFLECTION_PROTOS = ['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'];
export const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

let reflected: protoLoader.PackageDefinition | undefined;

/**
 * What server reflection describes: the same protos with their proto field
 * names kept (`inventory_json`), so standard clients (grpcurl, grpc-core)
 * accept both spellings in JSON as proto3 requires, plus the reflection
 * service itself, so `list` shows it. protobufjs names a map field's entry
 * type after the field (`Statuses`) where descriptor users require
 * `StatusesEntry` and reject the file (grpc.health.v1's HealthListResponse
 * has one): renamed here.
 */
export function reflectionDefinition(): protoLoader.PackageDefinition {
  if (reflected) return reflected;
  // Beside this file's package (also inside the single executable, whose assets keep that layout).
  const beside = path.resolve(__dirname, '..', '..', 'node_modules', '@grpc', 'reflection', 'build', 'proto');
  const reflectionProtoDir = fs.existsSync(beside) ? beside : path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  const def = protoLoader.loadSync(
    [...PROTO_FILES.map((f) => path.join(protoDir(), f)), healthProtoPath, ...REFLECTION_PROTOS.map((f) => path.join(reflectionProtoDir, f))],
    { ...LOADER_OPTIONS, keepCase: true, includeDirs: [protoDir(), reflectionProtoDir] },
  );
  const fixed = new Map<Buffer, Buffer>();
  for (const entry of Object.values(def)) {
    const files = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (!Array.isArray(files)) continue;
    (entry as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos = files.map((b) => {
      if (!fixed.has(b)) fixed.set(b, withStandardMapEntryNames(b));
      return fixed.get(b)!;
    });
  }
  return (reflected = def);
}

interface DescriptorMessage {
  name: string;
  field?: Array<{ name: string; typeName?: string; label?: number }>;
  nestedType?: DescriptorMessage[];
  options?: { mapEntry?: boolean };
}

/** `statuses` → `StatusesEntry`: protoc's name for a map field's entry type. */
function mapEntryName(field: string): string {
  return field.replace(/^./, (c) => c.toUpperCase()).replace(/_(.)/g, (_m, c: string) => c.toUpperCase()) + 'Entry';
}

function withStandardMapEntryNames(bytes: Buffer): Buffer {
  // Loaded here: only servers (with reflection) need it, not the agent.
  const { FileDescriptorProto } = require('protobufjs/ext/descriptor') as { FileDescriptorProto: { decode(b: Uint8Array): unknown; encode(m: never): { finish(): Uint8Array } } };
  const file = FileDescriptorProto.decode(bytes) as unknown as { messageType?: DescriptorMessage[] };
  let changed = false;
  const visit = (msg: DescriptorMessage) => {
    for (const nested of msg.nestedType ?? []) {
      visit(nested);
      if (!nested.options?.mapEntry) continue;
      const field = (msg.field ?? []).find((f) => f.label === 3 && (f.typeName === nested.name || f.typeName?.endsWith(`.${nested.name}`)));
      const want = field && mapEntryName(field.name);
      if (!field || !want || nested.name === want) continue;
      field.typeName = field.typeName!.slice(0, field.typeName!.length - nested.name.length) + want;
      nested.name = want;
      changed = true;
    }
  };
  (file.messageType ?? []).forEach(visit);
  return changed ? Buffer.from(FileDescriptorProto.encode(file as never).finish()) : bytes;
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
