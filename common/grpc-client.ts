import type * as grpc from '@grpc/grpc-js';

// What every gRPC client of nfsha uses; apart from grpc-server.ts so that a
// client only (the agent) does not load reflection and health.

/** Client channel options: explicit keepalive so a dead peer is noticed in seconds. */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 1_000,
  'grpc.keepalive_timeout_ms': 1_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // Cluster traffic stays on the storage/management networks: never through
  // an HTTP proxy that the environment (http_proxy, grpc_proxy) may name.
  'grpc.enable_http_proxy': 0,
};

/** A call deadline this many ms from now. */
export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}
