import * as z from 'zod/mini';
import { idString, intIn, ipString, masterList, memberSchema, msAtLeast, optionalIp, optionalListen, tlsSchema } from '../common/config-mini';
import { DEFAULT_MASTER_ADDRESS, defaultsOf } from '../common/settings';
import { DEFAULT_TLS_DIR } from '../common/tls';

/**
 * The agent's settings (DESIGN §5): each field's validation, default and
 * meaning in one place, in zod/mini (common/config-mini.ts says why). The CLI's flags (cli/agent-command.ts) and config
 * file are read through it; AgentOptions and DEFAULT_AGENT_OPTIONS come from it.
 */
export const agentOptionsSchema = z.strictObject({
  /** This ESXi host's id (required), e.g. "esx-2". */
  hostId: idString,
  /** The Access Server on this host (its local SCVM), e.g. "scvm-2" (required). */
  localServerId: idString,
  /** This host's storage-network IP, registered with the master. */
  storageIp: z._default(optionalIp, ''),
  /** This host's management IP, registered with the master. */
  mgmtIp: z._default(optionalIp, ''),
  /** The master's gRPC address, or master candidates separated by commas. */
  master: z._default(masterList, DEFAULT_MASTER_ADDRESS),
  /** Route backend: "iproute2" (Linux), "esxcli" (ESXi), "esxcli-ssh" (esxcli run on the host over SSH, from an SCVM), "dry-run". */
  backend: z._default(z.enum(['iproute2', 'esxcli', 'esxcli-ssh', 'dry-run']), 'iproute2'),
  /**
   * iproute2: after a switch to a remote, "kill" destroys the host's sockets
   * to the NFS address (ss -K) so its NFS client reconnects at once; "none"
   * leaves them, as on ESXi, where the new SCVM's stale-segment reset rule
   * (follower --stale-reset-interfaces) must reset them.
   */
  socketReset: z._default(z.enum(['kill', 'none']), 'kill'),
  /** The esxcli command (path) on the host. */
  esxcliPath: z._default(z.string().check(z.minLength(1)), 'esxcli'),
  /** esxcli-ssh: the ESXi host's SSH address. */
  sshHost: z._default(z.string(), ''),
  /** esxcli-ssh: its SSH port. */
  sshPort: z._default(intIn(1, 65535), 22),
  /** esxcli-ssh: the SSH user. */
  sshUser: z._default(z.string().check(z.minLength(1)), 'root'),
  /** esxcli-ssh: the private key file (the cluster key nfsha deploy installs). */
  sshKeyFile: z._default(z.string(), ''),
  /** Interface of the private link to the local SCVM; local probes are bound to it. Empty: unbound. */
  privateInterface: z._default(z.string().check(z.regex(/^[A-Za-z0-9._-]{0,15}$/, 'not an interface name')), ''),
  /** The NFS address hosts mount from. */
  nfsAddress: z._default(ipString, '192.168.33.2'),
  /** Probe the remote servers, read the route back and decide every this many ms. */
  probeIntervalMs: z._default(msAtLeast(50), 500),
  /**
   * Probe the local SCVM every this many ms, on its own loop (a BFD-like
   * liveness check over the private link): missesToFail misses in a row
   * make it down, and the agent decides at once instead of at its next tick.
   */
  localProbeIntervalMs: z._default(msAtLeast(20), 100),
  /** Consecutive missed probes before a target counts as down. */
  missesToFail: z._default(intIn(1, 100), 3),
  /** The local server must be healthy this long before failing back. */
  holdDownMs: z._default(intIn(0), 30_000),
  /** Also require a TCP connect to this port (the NFS port, 2049) for a target to be up; 0 = ICMP only. */
  tcpProbePort: z._default(intIn(0, 65535), 0),
  /** Servers to assume listed until the master first answers (boot without a master). */
  peers: z._default(z.array(memberSchema), []),
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: z._default(optionalListen, ''),
  /** mTLS towards the masters (an agent certificate for this host), or plain text on loopback. */
  tls: z._default(tlsSchema, { dir: DEFAULT_TLS_DIR }),
}).check(z.refine((c) => c.backend !== 'esxcli-ssh' || (c.sshHost !== '' && c.sshKeyFile !== ''), {
  message: 'the esxcli-ssh backend needs sshHost and sshKeyFile',
  path: ['backend'],
}));

/** The agent's settings, as agentOptionsSchema documents them. */
export type AgentOptions = z.output<typeof agentOptionsSchema>;

/** Every setting but the two ids, which have no default. */
export const DEFAULT_AGENT_OPTIONS = defaultsOf(agentOptionsSchema) as Omit<AgentOptions, 'hostId' | 'localServerId'>;
