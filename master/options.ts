import type { HostRecord } from './identity';
import { DEFAULT_TLS_DIR, type TlsSettings } from '../common/tls';
import { DEFAULT_MASTER_LIMITS, type MasterLimits } from './limits';

/** The master's tunables; defaults in DEFAULT_MASTER_OPTIONS (DESIGN §5). */
export interface MasterOptions {
  /** This master's id, shown in status. Default: "master". */
  id: string;
  /** gRPC listen address, `host:port` or `unix:/path`. Default: 127.0.0.1:7410. */
  listen: string;
  /** Session time to live: a session without a keepalive for this long is expired. Default 3000 ms. */
  sessionTtlMs: number;
  /** How often followers send keepalives. Default 500 ms. */
  keepaliveIntervalMs: number;
  /**
   * Bound on the relative rate difference between two machines' monotonic
   * clocks. A silent holder is waited out for TTL × (1 + drift) + margin.
   * Default 0.1 (10%, far beyond real crystals, cheap insurance).
   */
  clockDriftBound: number;
  /** Extra wait after TTL × (1 + drift) before granting away from a silent holder. Default 250 ms. */
  graceMarginMs: number;
  /** How long a revoked holder that is still connected may be silent before it is condemned. Default 1000 ms. */
  revokeAckTimeoutMs: number;
  /** Longest a holder reporting drain progress is waited for before it is condemned. Default 3000 ms (the TTL). */
  revokeDrainLimitMs: number;
  /**
   * Fence agent: argv run against a silent holder's SCVM before its client
   * moves, with {server}, {host}, {storage_ip}, {mgmt_ip} replaced; must exit
   * 0 only once that SCVM can no longer serve. Empty: none (README says what
   * a frozen SCVM can then do).
   */
  fenceAgent: string[];
  /** Longest one fence agent run may take. Default 10000 ms. */
  fenceAgentTimeoutMs: number;
  /** The leader epoch; fencing tokens start with it. Default: wall-clock ms at start (see master.ts). */
  epoch?: number;
  /**
   * The embedded master's state directory: its last epoch (so the next is
   * larger even if the wall clock stepped back) and its registry of servers
   * and hosts (so a restart knows whom to expect, and whom to fence if they
   * never come back). Default "": kept in memory only (README says what that
   * costs). Masters elected through etcd keep both in etcd.
   */
  stateDir: string;
  /** Hosts known from configuration (later from agents): source IP → client identity. */
  hosts: HostRecord[];
  /** The private address a host uses towards its own SCVM. Default 192.168.33.1. */
  localClientIp: string;
  /** Largest inbound gRPC message. Default 65536 bytes. */
  maxMessageBytes: number;
  /** etcd endpoints for leader election among candidates; empty: the embedded single master. */
  etcdEndpoints: string[];
  /** The address other nodes reach this master at (named in "not leader" redirects). Default: listen. */
  advertise: string;
  /** The election lease in whole seconds (DESIGN §5: 3 s). */
  electionTtlSeconds: number;
  /** The agent bundle the Deploy call installs when a request names none. Default "". */
  bundleDir: string;
  /** Where the Deploy call keeps the cluster credentials. Default /var/lib/nfsha/deploy. */
  deployStateDir: string;
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: string;
  /** Serve the HTTPS JSON API (/v1/status, /v1/members, /v1/deploy, /healthz; mTLS) on host:port; empty: off. */
  httpListen: string;
  /** mTLS with the cluster CA (a TLS directory with a master certificate), or plain text on loopback. */
  tls: TlsSettings;
  /** Bounds on sessions, clients, pending logins and introductions (limits.ts). */
  limits: MasterLimits;
}

export const DEFAULT_MASTER_OPTIONS: MasterOptions = {
  id: 'master',
  listen: '127.0.0.1:7410',
  sessionTtlMs: 3000,
  keepaliveIntervalMs: 500,
  clockDriftBound: 0.1,
  graceMarginMs: 250,
  revokeAckTimeoutMs: 1000,
  revokeDrainLimitMs: 3000,
  fenceAgent: [],
  fenceAgentTimeoutMs: 10_000,
  hosts: [],
  stateDir: '',
  localClientIp: '192.168.33.1',
  maxMessageBytes: 64 * 1024,
  etcdEndpoints: [],
  advertise: '',
  electionTtlSeconds: 3,
  bundleDir: '',
  deployStateDir: '/var/lib/nfsha/deploy',
  metricsListen: '',
  httpListen: '',
  tls: { dir: DEFAULT_TLS_DIR },
  limits: DEFAULT_MASTER_LIMITS,
};
