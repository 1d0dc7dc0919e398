import { z } from 'zod';
import { DEFAULT_MASTER_ADDRESS, defaultsOf, idString, ipString, masterList, memberSchema, ms, optionalIp, optionalListen, tlsSchema } from '../common/config';
import { DEFAULT_TLS_DIR } from '../common/tls';

/**
 * The agent's settings (DESIGN §5): each field's validation, default and
 * meaning in one place. The CLI's flags (cli/agent-command.ts) and config
 * file are read through it; AgentOptions and DEFAULT_AGENT_OPTIONS come from it.
 */
export const agentOptionsSchema = z.object({
  /** This ESXi host's id (required), e.g. "esx-2". */
  hostId: idString,
  /** The Access Server on this host (its local SCVM), e.g. "scvm-2" (required). */
  localServerId: idString,
  /** This host's storage-network IP, registered with the master. */
  storageIp: optionalIp.default(''),
  /** This host's management IP, registered with the master. */
  mgmtIp: optionalIp.default(''),
  /** The master's gRPC address, or master candidates separated by commas. */
  master: masterList.default(DEFAULT_MASTER_ADDRESS),
  /** Route backend: "iproute2" (Linux), "esxcli" (ESXi), "esxcli-ssh" (esxcli run on the host over SSH, from an SCVM), "dry-run". */
  backend: z.enum(['iproute2', 'esxcli', 'esxcli-ssh', 'dry-run']).default('iproute2'),
  /**
   * iproute2: after a switch to a remote, "kill" destroys the host's sockets
   * to the NFS address (ss -K) so its NFS client reconnects at once; "none"
   * leaves them, as on ESXi, where the new SCVM's stale-segment reset rule
   * (follower --stale-reset-interfaces) must reset them.
   */
  socketReset: z.enum(['kill', 'none']).default('kill'),
  /** The esxcli command (path) on the host. */
  esxcliPath: z.string().min(1).default('esxcli'),
  /** esxcli-ssh: the ESXi host's SSH address. */
  sshHost: z.string().default(''),
  /** esxcli-ssh: its SSH port. */
  sshPort: z.number().int().min(1).max(65535).default(22),
  /** esxcli-ssh: the SSH user. */
  sshUser: z.string().min(1).default('root'),
  /** esxcli-ssh: the private key file (the cluster key nfsha deploy installs). */
  sshKeyFile: z.string().default(''),
  /** Interface of the private link to the local SCVM; local probes are bound to it. Empty: unbound. */
  privateInterface: z.string().regex(/^[A-Za-z0-9._-]{0,15}$/, 'not an interface name').default(''),
  /** The NFS address hosts mount from. */
  nfsAddress: ipString.default('192.168.33.2'),
  /** Probe every this many ms. */
  probeIntervalMs: ms.min(50).default(500),
  /** Consecutive missed probes before a target counts as down. */
  missesToFail: z.number().int().min(1).max(100).default(3),
  /** The local server must be healthy this long before failing back. */
  holdDownMs: z.number().int().min(0).default(30_000),
  /** Also require a TCP connect to this port (the NFS port, 2049) for a target to be up; 0 = ICMP only. */
  tcpProbePort: z.number().int().min(0).max(65535).default(0),
  /** Servers to assume listed until the master first answers (boot without a master). */
  peers: z.array(memberSchema).default([]),
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: optionalListen.default(''),
  /** mTLS towards the masters (an agent certificate for this host), or plain text on loopback. */
  tls: tlsSchema.default({ dir: DEFAULT_TLS_DIR }),
}).strict().refine((c) => c.backend !== 'esxcli-ssh' || (c.sshHost !== '' && c.sshKeyFile !== ''), {
  message: 'the esxcli-ssh backend needs sshHost and sshKeyFile',
  path: ['backend'],
});

/** The agent's settings, as agentOptionsSchema documents them. */
export type AgentOptions = z.output<typeof agentOptionsSchema>;

/** Every setting but the two ids, which have no default. */
export const DEFAULT_AGENT_OPTIONS = defaultsOf(agentOptionsSchema) as Omit<AgentOptions, 'hostId' | 'localServerId'>;
