import * as path from 'node:path';
import type * as protoLoader from '@grpc/proto-loader';

// Where nfsha's .proto files are and how they are loaded; shared by
// proto.ts (every service, for servers and tools) and membership-proto.ts
// (the agent's one service).

/** Where the .proto files live: the repo's proto/ (overridable for bundled builds). */
export function protoDir(): string {
  return process.env.NFSHA_PROTO_DIR ?? path.resolve(__dirname, '..', '..', 'proto');
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};
