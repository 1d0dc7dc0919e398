import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { reflectionDefinition, REFLECTION_SERVICES } from './proto';
import { edgeInterceptor, type EdgeOptions } from './edge';
import { serverCredentials, type TlsSettings } from './tls';

/** Default cap on one inbound message: every nfsha message is small. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export interface ServerOptions {
  /** The nfsha services this server serves: reflection lists these and health. */
  services: string[];
  maxMessageBytes?: number;
  /** Who may call what, and input validation (common/edge-rules.ts). */
  edge: EdgeOptions;
}

export interface NfshaServer {
  server: grpc.Server;
  health: HealthImplementation;
  /** The bound address, with the real port when 0 was asked for. */
  address: string;
  close(): Promise<void>;
}

/**
 * A gRPC server with reflection and grpc.health.v1 already added. Oversized
 * messages are refused with RESOURCE_EXHAUSTED by grpc-js itself.
 */
export function createServer(opts: ServerOptions): { server: grpc.Server; health: HealthImplementation } {
  const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': max,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors: [edgeInterceptor(opts.edge)],
  });
  const health = new HealthImplementation({ '': 'SERVING' });
  health.addToServer(server);
  new ReflectionService(reflectionDefinition(), { services: [...opts.services, 'grpc.health.v1.Health', ...REFLECTION_SERVICES] }).addToServer(server);
  return { server, health };
}

/**
 * Binds and starts. `listen` is `host:port` (port 0 picks one) or `unix:/path`.
 * With TLS, callers must present a certificate from the cluster CA.
 */
export async function bindServer(
  server: grpc.Server,
  health: HealthImplementation,
  listen: string,
  tls: TlsSettings,
): Promise<NfshaServer> {
  const credentials = serverCredentials(tls, listen);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  const address = listen.startsWith('unix:') ? listen : listen.replace(/:\d+$/, `:${port}`);
  return {
    server,
    health,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Streams that never end would hold tryShutdown forever.
        setTimeout(() => { server.forceShutdown(); resolve(); }, 1000).unref();
      }),
  };
}
