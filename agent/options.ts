import type { MemberView } from './decision';
import { DEFAULT_TLS_DIR, type TlsSettings } from '../common/tls';

/** The agent's settings; defaults in DEFAULT_AGENT_OPTIONS (DESIGN §5). */
export interface AgentOptions {
  /** This ESXi host's id (required), e.g. "esx-2". */
  hostId: string;
  /** The Access Server on this host (its local SCVM), e.g. "scvm-2" (required). */
  localServerId: string;
  /** This host's storage-network and management IPs, registered with the master. */
  storageIp: string;
  mgmtIp: string;
  /** The master's gRPC address. Default 127.0.0.1:7410. */
  master: string;
  /** Route backend: "iproute2" (Linux), "esxcli" (ESXi), "esxcli-ssh" (esxcli run on the host over SSH, from an SCVM), "dry-run". Default iproute2. */
  backend: 'iproute2' | 'esxcli' | 'esxcli-ssh' | 'dry-run';
  /** The esxcli command (path) on the host. Default "esxcli". */
  esxcliPath: string;
  /** For esxcli-ssh: the ESXi host's SSH address, port, user and private key file. */
  sshHost: string;
  sshPort: number;
  sshUser: string;
  sshKeyFile: string;
  /** Interface of the private link to the local SCVM; local probes are bound to it. Default "" (unbound). */
  privateInterface: string;
  /** The NFS address. Default 192.168.33.2. */
  nfsAddress: string;
  /** Probe every this many ms. Default 500. */
  probeIntervalMs: number;
  /** Consecutive missed probes before a target counts as down. Default 3. */
  missesToFail: number;
  /** The local server must be healthy this long before failing back. Default 30000 ms. */
  holdDownMs: number;
  /** Also require a TCP connect to this port (the NFS port, 2049) for a target to be up; 0 = ICMP only. Default 0. */
  tcpProbePort: number;
  /** Servers to assume listed until the master first answers (boot without a master). Default none. */
  peers: MemberView[];
  /** Serve Prometheus metrics on http://<this>/metrics (host:port); empty: off. */
  metricsListen: string;
  /** mTLS towards the masters (an agent certificate for this host), or plain text on loopback. */
  tls: TlsSettings;
}

export const DEFAULT_AGENT_OPTIONS: Omit<AgentOptions, 'hostId' | 'localServerId'> = {
  storageIp: '',
  mgmtIp: '',
  master: '127.0.0.1:7410',
  backend: 'iproute2',
  esxcliPath: 'esxcli',
  sshHost: '',
  sshPort: 22,
  sshUser: 'root',
  sshKeyFile: '',
  privateInterface: '',
  nfsAddress: '192.168.33.2',
  probeIntervalMs: 500,
  missesToFail: 3,
  holdDownMs: 30_000,
  tcpProbePort: 0,
  peers: [],
  metricsListen: '',
  tls: { dir: DEFAULT_TLS_DIR },
};
