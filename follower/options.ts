import { DEFAULT_TLS_DIR, type TlsSettings } from '../common/tls';

/** The follower's settings; defaults in DEFAULT_FOLLOWER_OPTIONS. */
export interface FollowerOptions {
  /** This Access Server's id, unique in the cluster (required), e.g. "scvm-1". */
  serverId: string;
  /** The ESXi host this SCVM runs on; its local clients (192.168.33.1) are that host. */
  hostId: string;
  /** This SCVM's storage-network IP, reported to the master. */
  storageIp: string;
  /** This SCVM's management IP, reported to the master. */
  mgmtIp: string;
  /** The master's gRPC address. Default 127.0.0.1:7410. */
  master: string;
  /** Where the gate API for the NFS layer listens: `unix:/path` or `127.0.0.1:port`. Default unix:/run/nfsha/gate.sock. */
  gateListen: string;
  /** How long an Admit may wait for the master's grant (a revoke may take a few seconds). Default 10000 ms. */
  admitTimeoutMs: number;
  /** Deadline of a logout call to the master. Default 2000 ms. */
  logoutTimeoutMs: number;
  /** Largest inbound gRPC message on the gate API. Default 65536 bytes. */
  maxMessageBytes: number;
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: string;
  /** Serve the HTTPS JSON API (/v1/status, /healthz; mTLS) on host:port; empty: off. */
  httpListen: string;
  /** mTLS (a follower certificate for this server id) for the master and the gate API, or plain text on loopback. */
  tls: TlsSettings;
  /** NFS layers that may watch the gate stream at once. Default 16. */
  maxGateWatchers: number;
  /** Admits waiting for the master at once. Default 1024. */
  maxPendingAdmits: number;
  /**
   * The local NFS server's RPC programs to probe with NULL calls, e.g.
   * `nfs@127.0.0.1:2049`, `mount@127.0.0.1:20048`. Empty: no NFS health probe
   * (the master then takes the server's NFS service as healthy).
   */
  nfsProbe: string[];
  /** NFS probe period. Default 500 ms (the agent's probe interval). */
  nfsProbeIntervalMs: number;
  /** Consecutive unanswered NULL calls that make the NFS service down. Default 3. */
  nfsMissesToFail: number;
  /**
   * argv that fences the local NFS server (restart or SIGKILL; must return
   * only once the old server process is gone), e.g. ["systemctl","restart","nfs-ganesha"].
   * Empty: none, and README "What the drain guarantees" says what is lost.
   */
  fenceCommand: string[];
  /** Longest a fence command may run. Default 5000 ms. */
  fenceTimeoutMs: number;
  /** E: at lease deadline − E the NFS server is fenced unless its NFS layers confirmed they stopped. Default 500 ms. */
  fenceLeadMs: number;
  /** How often NFS layers report to the follower. Default 250 ms. */
  gateReportIntervalMs: number;
  /** An NFS layer silent this long counts as NFS service down, and its drains stop counting as progress. Default 1000 ms. */
  gateSilentMs: number;
}

export const DEFAULT_FOLLOWER_OPTIONS: Omit<FollowerOptions, 'serverId'> = {
  hostId: '',
  storageIp: '',
  mgmtIp: '',
  master: '127.0.0.1:7410',
  gateListen: 'unix:/run/nfsha/gate.sock',
  admitTimeoutMs: 10_000,
  logoutTimeoutMs: 2_000,
  maxMessageBytes: 64 * 1024,
  metricsListen: '',
  httpListen: '',
  tls: { dir: DEFAULT_TLS_DIR },
  maxGateWatchers: 16,
  maxPendingAdmits: 1024,
  nfsProbe: [],
  nfsProbeIntervalMs: 500,
  nfsMissesToFail: 3,
  fenceCommand: [],
  fenceTimeoutMs: 5000,
  fenceLeadMs: 500,
  gateReportIntervalMs: 250,
  gateSilentMs: 1000,
};
