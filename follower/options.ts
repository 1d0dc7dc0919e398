import { z } from 'zod';
import { argvSchema, count, idString, ipString, listenAddress, masterList, ms, optionalId, optionalIp, optionalListen, tlsSchema } from '../common/config';
import { DEFAULT_MASTER_ADDRESS, defaultsOf } from '../common/settings';
import { DEFAULT_TLS_DIR } from '../common/tls';
import { parseMasterList } from '../common/master-endpoints';
import { fenceChoiceProblem } from '../common/fence-command';

/**
 * The follower's settings: each field's validation, default and meaning in
 * one place. The CLI's flags (cli/follower-command.ts) and config file are
 * read through it; FollowerOptions and DEFAULT_FOLLOWER_OPTIONS come from it.
 */
export const followerOptionsSchema = z.object({
  /** This Access Server's id, unique in the cluster (required), e.g. "scvm-1". */
  serverId: idString,
  /** The ESXi host this SCVM runs on; its local clients (192.168.33.1) are that host. */
  hostId: optionalId.default(''),
  /** This SCVM's storage-network IP, reported to the master. */
  storageIp: optionalIp.default(''),
  /** This SCVM's management IP, reported to the master. */
  mgmtIp: optionalIp.default(''),
  /** The master's gRPC address, or master candidates separated by commas. */
  master: masterList.default(DEFAULT_MASTER_ADDRESS),
  /** Where the gate API for the NFS layer listens: `unix:/path` or `127.0.0.1:port`. */
  gateListen: listenAddress.default('unix:/run/nfsha/gate.sock'),
  /** How long an Admit may wait for the master's grant (a revoke may take a few seconds). */
  admitTimeoutMs: ms.default(10_000),
  /** Deadline of a logout call to the master. */
  logoutTimeoutMs: ms.default(2_000),
  /** Largest inbound gRPC message on the gate API, in bytes. */
  maxMessageBytes: z.number().int().min(1024).default(64 * 1024),
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: optionalListen.default(''),
  /** Serve the HTTPS JSON API (/v1/status, /healthz; mTLS) on host:port; empty: off. */
  httpListen: optionalListen.default(''),
  /** mTLS (a follower certificate for this server id) for the master and the gate API, or plain text on loopback. */
  tls: tlsSchema.default({ dir: DEFAULT_TLS_DIR }),
  /** NFS layers that may watch the gate stream at once. */
  maxGateWatchers: count.default(16),
  /** Admits waiting for the master at once. */
  maxPendingAdmits: count.default(1024),
  /**
   * The local NFS server's RPC programs to probe with NULL calls, e.g.
   * `nfs@127.0.0.1:2049`, `mount@127.0.0.1:20048`. Empty: no NFS health probe
   * (the master then takes the server's NFS service as healthy).
   */
  nfsProbe: z.array(z.string().regex(/^(nfs|mount|\d+\.\d+)@(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected nfs@host:port, mount@host:port or PROGRAM.VERSION@host:port')).default([]),
  /** NFS probe period (the agent's probe interval). */
  nfsProbeIntervalMs: ms.min(50).default(500),
  /** Consecutive unanswered NULL calls that make the NFS service down. */
  nfsMissesToFail: z.number().int().min(1).max(100).default(3),
  /**
   * argv that fences the local NFS server (restart or SIGKILL; must return
   * only once the old server process is gone), e.g. ["systemctl","restart","nfs-ganesha"].
   * Empty: none, and README "What the drain guarantees" says what is lost.
   */
  fenceCommand: argvSchema.default([]),
  /**
   * Run without a fence command, knowingly (Pacemaker's stonith-enabled=false):
   * a revoke whose calls do not drain is held, never acked, and the master
   * holds this server's clients when it is silent, until an operator runs
   * `nfsha fence-confirm`. Required when no fenceCommand is given, except
   * on loopback (tests, `nfsha dev`), where the same hold rule applies.
   */
  noFence: z.boolean().default(false),
  /**
   * Longest a fence command may run. It must fit the budget: the fence runs
   * at lease deadline − fenceLeadMs and must end before the master's
   * wait-out does, even on a clock slow by the whole drift bound
   * (fenceLeadMs + the master's slack, 800 + 227 = 1,027 ms at defaults);
   * a longer timeout is reported to the master as a fence it cannot count on.
   */
  fenceTimeoutMs: ms.default(1000),
  /** E: at lease deadline − E the NFS server is fenced unless its NFS layers confirmed they stopped. */
  fenceLeadMs: ms.default(800),
  /**
   * A graceful stop (SIGTERM, SIGINT): the follower first has its server
   * listed leaving, as in maintenance, and waits up to this long for its
   * hosts to move away before it exits. 0: exit at once, as after a kill.
   */
  gracefulStopMs: ms.default(20_000),
  /**
   * This SCVM's storage and management interfaces: the follower keeps an
   * nftables ingress rule on them that resets a rerouted host's stale TCP
   * segments (from localClientIp to serviceIp) back to the sender's MAC, so
   * the host reconnects without resetting its own sockets (ESXi cannot).
   * Empty: no rule.
   */
  staleResetInterfaces: z.array(z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'not an interface name')).default([]),
  /** The private address hosts use towards their own SCVM (the stale segments' source). */
  localClientIp: ipString.default('192.168.33.1'),
  /** The NFS address every host mounts from (the stale segments' destination). */
  serviceIp: ipString.default('192.168.33.2'),
  /** How often NFS layers report to the follower. */
  gateReportIntervalMs: ms.min(10).default(250),
  /** An NFS layer silent this long counts as NFS service down, and its drains stop counting as progress. */
  gateSilentMs: ms.default(1000),
}).strict().refine((c) => c.gateSilentMs >= 2 * c.gateReportIntervalMs, {
  message: 'gateSilentMs must be at least twice gateReportIntervalMs, or one late report marks the NFS service down',
  path: ['gateSilentMs'],
}).superRefine((c, ctx) => {
  const problem = fenceChoiceProblem(c.fenceCommand, c.noFence, [...parseMasterList(c.master), c.gateListen, c.httpListen, c.metricsListen]);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['fenceCommand'] });
});

/** The follower's settings, as followerOptionsSchema documents them. */
export type FollowerOptions = z.output<typeof followerOptionsSchema>;

/** Every setting but the server id, which has no default. */
export const DEFAULT_FOLLOWER_OPTIONS = defaultsOf(followerOptionsSchema) as Omit<FollowerOptions, 'serverId'>;
