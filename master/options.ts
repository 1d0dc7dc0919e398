import { z } from 'zod';
import { argvSchema, hostSchema, idString, ipString, listenAddress, ms, optionalListen, tlsSchema } from '../common/config';
import { DEFAULT_MASTER_ADDRESS } from '../common/settings';
import { DEFAULT_TLS_DIR } from '../common/tls';
import { DEFAULT_DEPLOY_DIR } from '../deploy/deploy';
import { masterLimitsSchema } from './limits';

/** The most one client can take in an introduction (a 64-character id and its token). */
export const INTRODUCED_CLIENT_BYTES = 100;

/**
 * The master's settings (DESIGN §5): each field's validation, default and
 * meaning in one place. The CLI's flags (cli/master-command.ts) and config
 * file are read through it; MasterOptions and DEFAULT_MASTER_OPTIONS come from it.
 */
export const masterOptionsSchema = z.object({
  /** This master's id, shown in status. */
  id: idString.default('master'),
  /** gRPC listen address, `host:port` or `unix:/path`. */
  listen: listenAddress.default(DEFAULT_MASTER_ADDRESS),
  /** Session time to live: a session without a keepalive for this long is expired. */
  sessionTtlMs: ms.min(100).default(3000),
  /** How often followers send keepalives. */
  keepaliveIntervalMs: ms.min(10).default(500),
  /**
   * Bound on the relative rate difference between two machines' monotonic
   * clocks. A silent holder is waited out for TTL × (1 + drift) + margin.
   * 0.1 (10%) is far beyond real crystals: cheap insurance.
   */
  clockDriftBound: z.number().min(0).max(1).default(0.1),
  /** Extra wait after TTL × (1 + drift) before granting away from a silent holder. */
  graceMarginMs: z.number().int().min(0).default(250),
  /** How long a revoked holder that is still connected may be silent before it is condemned. */
  revokeAckTimeoutMs: ms.default(1000),
  /** Longest a holder reporting drain progress is waited for before it is condemned (the TTL). */
  revokeDrainLimitMs: ms.default(3000),
  /**
   * Fence agent: argv run against a silent holder's SCVM before its client
   * moves, with {server}, {host}, {storage_ip}, {mgmt_ip} replaced; must exit
   * 0 only once that SCVM can no longer serve. Empty: none (README says what
   * a frozen SCVM can then do).
   */
  fenceAgent: argvSchema.default([]),
  /** Longest one fence agent run may take. */
  fenceAgentTimeoutMs: ms.default(10_000),
  /** The leader epoch; fencing tokens start with it. Unset: wall-clock ms at start (see master.ts). */
  epoch: z.number().int().positive().optional(),
  /**
   * The embedded master's state directory: its last epoch (so the next is
   * larger even if the wall clock stepped back) and its registry of servers
   * and hosts (so a restart knows whom to expect, and whom to fence if they
   * never come back). Empty: kept in memory only (README says what that
   * costs). Masters elected through etcd keep both in etcd.
   */
  stateDir: z.string().default(''),
  /** Hosts known from configuration (later from agents): source IP → client identity. */
  hosts: z.array(hostSchema).default([]),
  /** The private address a host uses towards its own SCVM. */
  localClientIp: ipString.default('192.168.33.1'),
  /** Largest inbound gRPC message, in bytes. */
  maxMessageBytes: z.number().int().min(1024).default(64 * 1024),
  /** etcd endpoints for leader election among candidates; empty: the embedded single master. */
  etcdEndpoints: z.array(z.string().regex(/^(https?:\/\/)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, 'not an etcd endpoint (host:port)')).default([]),
  /** The address other nodes reach this master at (named in "not leader" redirects). Empty: listen. */
  advertise: z.string().refine((s) => s === '' || listenAddress.safeParse(s).success, { message: 'expected host:port' }).default(''),
  /** The election lease in whole seconds (DESIGN §5: 3 s). */
  electionTtlSeconds: z.number().int().min(1).max(60).default(1),
  /** The agent bundle the Deploy call installs when a request names none. */
  bundleDir: z.string().default(''),
  /** Where the Deploy call keeps the cluster credentials; its pki/ is where `nfsha init` puts the CA. */
  deployStateDir: z.string().min(1).default(DEFAULT_DEPLOY_DIR),
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: optionalListen.default(''),
  /** Serve the HTTPS JSON API (/v1/status, /v1/members, /v1/deploy, /healthz; mTLS) on host:port; empty: off. */
  httpListen: optionalListen.default(''),
  /** mTLS with the cluster CA (a TLS directory with a master certificate), or plain text on loopback. */
  tls: tlsSchema.default({ dir: DEFAULT_TLS_DIR }),
  /** Bounds on sessions, clients, pending logins and introductions (limits.ts). */
  limits: masterLimitsSchema.prefault({}),
}).strict().refine((c) => c.keepaliveIntervalMs * 2 <= c.sessionTtlMs, {
  message: 'keepaliveIntervalMs must be at most half of sessionTtlMs, or one lost keepalive fences a follower',
  path: ['keepaliveIntervalMs'],
}).refine((c) => c.limits.maxClientsPerSession * INTRODUCED_CLIENT_BYTES + 1024 <= c.maxMessageBytes, {
  message: `limits.maxClientsPerSession × ${INTRODUCED_CLIENT_BYTES} bytes must fit maxMessageBytes: a follower lists every client it serves in one introduction`,
  path: ['limits', 'maxClientsPerSession'],
});

/** The master's tunables, as masterOptionsSchema documents them. */
export type MasterOptions = z.output<typeof masterOptionsSchema>;

export const DEFAULT_MASTER_OPTIONS: MasterOptions = masterOptionsSchema.parse({});
