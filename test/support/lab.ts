import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { fetchStatus } from '../../cli/status-command';
import { CLI, Proc, removeTestDir, tracked, waitFor } from './cluster';
import { completeLines } from './log-lines';
import { EtcdCluster } from './etcd';
import { TEST_PKI_DIR, tlsArgs } from './pki';

const run = promisify(execFile);
const TOPOLOGY = path.resolve(__dirname, '..', '..', '..', 'test', 'lab', 'topology.sh');
const WHOAMI = path.join(__dirname, 'whoami.js');
const CONNECT = path.join(__dirname, 'nfs-connect.js');
/** Built by test/nfs-writer/build.sh from C with libnfs. */
export const NFS_WRITER = path.resolve(__dirname, '..', '..', '..', 'test', 'nfs-writer', 'nfs-writer');

export function requireNfsPrerequisites(): void {
  for (const [tool, pkg] of [['ganesha.nfsd', 'nfs-ganesha and nfs-ganesha-vfs'], ['rpcbind', 'rpcbind'], ['unshare', 'util-linux']]) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`]); } catch { throw new Error(`the NFS lab needs '${tool}' (Debian package ${pkg}; test/setup.sh installs it)`); }
  }
  if (!fs.existsSync(NFS_WRITER)) throw new Error(`the NFS lab needs the libnfs writer at ${NFS_WRITER}: npm run build makes it (needs libnfs-dev and gcc)`);
}

/**
 * One SCVM's NFS-Ganesha (NFSv3, VFS) over the shared export: the same
 * Export_Id and Filesystem_Id on every SCVM, so file handles survive a
 * reroute; its own ports (the gate owns 2049/20048), pid file and recovery
 * directory. Attributes are not cached: several servers write one directory.
 */
function ganeshaConfig(exportDir: string, recovery: string): string {
  return `NFS_CORE_PARAM {
  Protocols = 3;
  NFS_Port = ${NFS_SERVER_PORT};
  MNT_Port = ${MOUNT_SERVER_PORT};
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
}
NFSV4 { Graceless = true; RecoveryRoot = ${recovery}; }
EXPORT {
  Export_Id = 1;
  Filesystem_Id = 1.1;
  Path = ${exportDir};
  Pseudo = /export;
  Protocols = 3;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  PrivilegedPort = false;
  Attr_Expiration_Time = 0;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
`;
}

/** Where each SCVM's own NFS server listens (the gate forwards 2049/20048 here). */
export const NFS_SERVER_PORT = 2050;
export const MOUNT_SERVER_PORT = 20050;
export const FENCE_NFS = path.resolve(__dirname, '..', '..', '..', 'test', 'lab', 'fence-nfs.sh');
export const FENCE_SCVM = path.resolve(__dirname, '..', '..', '..', 'test', 'lab', 'fence-scvm.sh');

export const NFS_ADDRESS = '192.168.33.2';
export const MASTER_IP = '10.20.0.100';
export const storageIpOfScvm = (i: number) => `10.10.0.${20 + i}`;
export const mgmtIpOfScvm = (i: number) => `10.20.0.${20 + i}`;
export const storageIpOfHost = (i: number) => `10.10.0.${10 + i}`;
export const mgmtIpOfHost = (i: number) => `10.20.0.${10 + i}`;

/** Fails with a clear message when the lab cannot run here. */
export function requireLabPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, raw sockets): run the tests as root');
  for (const tool of ['ip', 'ss']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`]); } catch { throw new Error(`the lab needs '${tool}' (Debian package iproute2)`); }
  }
}

export interface LabOptions {
  hosts: number;
  /**
   * Real NFS: NFS-Ganesha in a storage backend namespace, and in every SCVM
   * the follower's TCP gate on the NFS ports in front of it (instead of the
   * stand-in port that only names its SCVM).
   */
  nfs?: boolean;
  /** Master failover: a 3-member etcd and 3 master candidates in the master namespace. */
  etcd?: boolean;
  /** Start an agent on every host (default true; the deploy test installs them itself). */
  agents?: boolean;
  /** With nfs: the master's fence agent kills a silent holder's SCVM (default true). */
  fenceAgent?: boolean;
  prefix?: string;
  /**
   * false: hosts do not reset their own sockets after a reroute (as on
   * ESXi, which has no ss -K); the new SCVM's stale-segment reset rule does.
   * Default true.
   */
  hostSocketReset?: boolean;
  probeIntervalMs?: number;
  misses?: number;
  holdDownMs?: number;
  dir?: string;
}

/**
 * DESIGN §1 on one machine: N ESXi hosts and N SCVMs in network namespaces
 * (test/lab/topology.sh), a master on the management network, a follower and
 * a stand-in NFS port in every SCVM, and an agent on every host doing real
 * reroutes with the iproute2 backend.
 */
export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly procs: Proc[] = [];
  followers: Proc[] = [];
  agents: Proc[] = [];
  gates: Proc[] = [];
  /** Each SCVM's NFS-Ganesha supervisor (restarts Ganesha when it dies). */
  nfsServers: Proc[] = [];
  master!: Proc;

  constructor(readonly opts: LabOptions) {
    this.prefix = opts.prefix ?? 'nfsha-e2e';
    this.dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-lab-'));
    fs.mkdirSync(this.dir, { recursive: true });
    // nfsha deploy mints agent certificates from <state-dir>/pki: the test CA.
    fs.mkdirSync(path.join(this.dir, 'deploy-state'), { recursive: true });
    if (!fs.existsSync(path.join(this.dir, 'deploy-state', 'pki'))) fs.symlinkSync(TEST_PKI_DIR, path.join(this.dir, 'deploy-state', 'pki'));
  }

  ns(role: string): string {
    return `${this.prefix}-${role}`;
  }

  get masterAddress(): string {
    return this.masterAddresses.join(',');
  }

  /** Every master candidate (one, or three with etcd), all on the master namespace's address. */
  get masterAddresses(): string[] {
    return (this.opts.etcd ? [7410, 7411, 7412] : [7410]).map((p) => `${MASTER_IP}:${p}`);
  }

  masters: Proc[] = [];
  etcd?: EtcdCluster;

  startMaster(k: number, detached = false): Proc {
    const etcd = this.etcd ? ['--etcd', this.etcd.endpoints.join(','), '--id', `m${k}`] : [];
    const fence = this.opts.nfs && this.opts.fenceAgent !== false ? ['--fence-agent', JSON.stringify([FENCE_SCVM, this.prefix, '{server}', this.fenceLog])] : [];
    return this.spawnIn(this.ns('m'), this.opts.etcd ? `master-${k}` : 'master', [CLI, 'master', '--listen', this.masterAddresses[k - 1], ...tlsArgs('master', `m${k}`),
      '--deploy-state-dir', path.join(this.dir, 'deploy-state'), ...etcd, ...fence], detached);
  }

  /** NFS server fences (the follower's, the gate's and the master's fence agent), as the fence scripts logged them. */
  get fenceLog(): string {
    return path.join(this.dir, 'nfs-fences.log');
  }

  fences(): Array<{ t: number; started: number; label: string; whole?: boolean }> {
    return fs.existsSync(this.fenceLog) ? completeLines(fs.readFileSync(this.fenceLog, 'utf8')).map((l) => JSON.parse(l)) : [];
  }

  nfsPidFile(i: number): string {
    return path.join(this.dir, `ganesha-${i}.pid`);
  }

  /** The command that fences SCVM i's NFS server (follower and gate run it). */
  nfsFenceCommand(i: number): string[] {
    return [FENCE_NFS, this.nfsPidFile(i), this.fenceLog, `gate-${i}`];
  }

  async topology(...args: string[]): Promise<string> {
    const { stdout } = await run('bash', [TOPOLOGY, ...args], { env: { ...process.env, NFSHA_LAB_PREFIX: this.prefix } });
    return stdout;
  }

  /** Runs a process inside a namespace, output to a log file in the lab dir. */
  spawnIn(ns: string, name: string, args: string[], detached = false): Proc {
    return this.spawnCommandIn(ns, name, process.execPath, args, detached);
  }

  /** Runs any command inside a namespace, output to `<name>.log` in the lab dir. */
  spawnCommandIn(ns: string, name: string, command: string, args: string[], detached = false): Proc {
    const logFile = path.join(this.dir, `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', out, out], detached });
    fs.closeSync(out);
    // A detached child is meant to outlive this process; the rest die with it.
    if (detached) child.unref();
    else tracked(child);
    const p = new Proc(name, child, logFile);
    this.procs.push(p);
    return p;
  }

  async up(detached = false): Promise<void> {
    requireLabPrerequisites();
    await this.topology('up', String(this.opts.hosts));
    if (this.opts.etcd) this.etcd = await new EtcdCluster(3, this.ns('m')).start();
    this.masters = this.masterAddresses.map((_, k) => this.startMaster(k + 1, detached));
    this.master = this.masters[0];
    if (this.opts.nfs) {
      requireNfsPrerequisites();
      fs.mkdirSync(this.exportDir, { recursive: true });
      await Promise.all(Array.from({ length: this.opts.hosts }, (_, k) => this.startNfsServer(k + 1, detached)));
    }
    for (let i = 1; i <= this.opts.hosts; i++) {
      this.followers[i - 1] = this.startFollower(i, detached);
      if (this.opts.nfs) this.gates[i - 1] = this.startGate(i, detached);
      else this.spawnIn(this.ns(`s${i}`), `nfs-${i}`, [WHOAMI, `scvm-${i}`, '2049'], detached);
    }
    // Agents start once every Access Server is listed, as on a booted cluster;
    // an agent that starts earlier waits (its membership hysteresis) anyway.
    await waitFor('every follower in session', async () => (await this.status()).sessions.filter((x) => x.state === 'live').length === this.opts.hosts, 20_000, 100)
      .catch((err) => { throw new Error(`${err.message}\n${this.dump()}`); });
    if (this.opts.agents !== false) for (let i = 1; i <= this.opts.hosts; i++) this.agents[i - 1] = this.startAgent(i, detached);
    const agents = this.opts.agents === false ? 0 : this.opts.hosts;
    await waitFor('every follower and agent registered', async () => {
      const s = await this.status();
      return s.sessions.filter((x) => x.state === 'live').length === this.opts.hosts
        && s.hosts.filter((h) => h.agentConnected).length === agents;
    }, 20_000, 100).catch((err) => { throw new Error(`${err.message}\n${this.dump()}`); });
  }

  /** `nfsha maintenance enter|exit scvm-i [args]` as an operator, from inside the lab; resolves with its output, rejects naming it on a non-zero exit. */
  async maintenance(action: 'enter' | 'exit', i: number, args: string[] = []): Promise<string> {
    try {
      const { stdout } = await run('ip', ['netns', 'exec', this.ns('m'), process.execPath, CLI, 'maintenance', action, `scvm-${i}`, ...args, '--master', this.masterAddress, ...tlsArgs('operator', 'test')], { timeout: 180_000 });
      return stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`nfsha maintenance ${action} scvm-${i} failed: ${e.stderr || e.message}${e.stdout ? `\n${e.stdout}` : ''}`);
    }
  }

  /** The master runs in its own namespace; status is fetched from inside the lab. */
  async status() {
    const { stdout } = await run('ip', ['netns', 'exec', this.ns('m'), process.execPath, CLI, 'status', '--json', '--master', this.masterAddress, '--timeout-ms', '1500', ...tlsArgs('operator', 'test')]);
    return JSON.parse(stdout) as Awaited<ReturnType<typeof fetchStatus>>;
  }

  startFollower(i: number, detached = false): Proc {
    // Without NFS there is nothing to fence: say so, as off loopback a follower must.
    const nfs = this.opts.nfs ? ['--nfs-probe', `nfs@127.0.0.1:${NFS_SERVER_PORT},mount@127.0.0.1:${MOUNT_SERVER_PORT}`, '--fence-command', JSON.stringify(this.nfsFenceCommand(i))] : ['--no-fence'];
    return this.spawnIn(this.ns(`s${i}`), `follower-${i}`, [CLI, 'follower', '--server-id', `scvm-${i}`, '--host-id', `esx-${i}`,
      '--storage-ip', storageIpOfScvm(i), '--mgmt-ip', mgmtIpOfScvm(i), '--master', this.masterAddress,
      '--gate-listen', `unix:${path.join(this.dir, `gate-${i}.sock`)}`, '--stale-reset-interfaces', 'sto,mgmt', ...nfs, ...tlsArgs('follower', `scvm-${i}`)], detached);
  }

  /** Where NFS-Ganesha exports from (a directory of this machine, read back by checkers). */
  get exportDir(): string {
    return path.join(this.dir, 'export');
  }

  /** The URL a host's libnfs client mounts: always the private NFS address. */
  get nfsUrl(): string {
    return `nfs://${NFS_ADDRESS}${this.exportDir}?version=3&nfsport=2049&mountport=20048`;
  }

  /**
   * SCVM i's own NFS-Ganesha (NFSv3 over TCP, VFS) with its rpcbind in a
   * private /run, under a supervisor loop that restarts it when it dies (a
   * fence kills it; production restarts it the same way).
   */
  async startNfsServer(i: number, detached = false): Promise<Proc> {
    const conf = path.join(this.dir, `ganesha-${i}.conf`);
    const recovery = path.join(this.dir, `ganesha-${i}-recovery`);
    fs.mkdirSync(recovery, { recursive: true });
    fs.writeFileSync(conf, ganeshaConfig(this.exportDir, recovery));
    const stop = path.join(this.dir, `ganesha-${i}.stop`);
    fs.rmSync(stop, { force: true });
    fs.rmSync(this.nfsPidFile(i), { force: true });
    const script = path.join(this.dir, `nfs-server-${i}.sh`);
    // rpcbind's socket path is shared across network namespaces: give this one a private /run.
    fs.writeFileSync(script, `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind /run/ganesha
rpcbind -w -f &
for i in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.05; done
set +e
while [ ! -e ${stop} ]; do
  # Ganesha writes its pid file in place: a stale longer pid would leave a tail.
  rm -f ${this.nfsPidFile(i)}
  ganesha.nfsd -F -f ${conf} -L ${path.join(this.dir, `ganesha-${i}.log`)} -p ${this.nfsPidFile(i)} &
  echo "ganesha started: pid $!"
  wait $!
  echo "ganesha exited: $?"
  sleep 0.2
done
`);
    const p = this.spawnCommandIn(this.ns(`s${i}`), `nfs-server-${i}`, 'unshare', ['-m', '--propagation', 'private', 'bash', script], detached);
    this.nfsServers[i - 1] = p;
    await this.waitNfsListening(i).catch((err) => { throw new Error(`${err.message}\n${p.log()}`); });
    return p;
  }

  /** Waits until SCVM i's NFS server accepts connections on its NFS port. */
  async waitNfsListening(i: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(`NFS-Ganesha of SCVM ${i} listening`, async () => {
      const { stdout } = await run('ip', ['netns', 'exec', this.ns(`s${i}`), 'ss', '-ltnH', `sport = :${NFS_SERVER_PORT}`]);
      return stdout.includes(String(NFS_SERVER_PORT));
    }, timeoutMs, 100);
  }

  /** The pid of SCVM i's running NFS-Ganesha, if any. */
  nfsPid(i: number): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.nfsPidFile(i), 'utf8').trim());
      return pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** The follower's TCP gate on the NFS and MOUNT ports, in front of this SCVM's NFS server. */
  startGate(i: number, detached = false): Proc {
    return this.spawnIn(this.ns(`s${i}`), `gate-${i}`, [CLI, 'gate', '--name', `gate-${i}`,
      '--follower', `unix:${path.join(this.dir, `gate-${i}.sock`)}`,
      '--route', `0.0.0.0:2049=127.0.0.1:${NFS_SERVER_PORT}`, '--route', `0.0.0.0:20048=127.0.0.1:${MOUNT_SERVER_PORT}`,
      '--fence-command', JSON.stringify(this.nfsFenceCommand(i)),
      '--event-log', this.gateEventLog(i), ...tlsArgs('gate', `scvm-${i}`)], detached);
  }

  /**
   * Restarts whatever of SCVM i is not running (after a fence agent killed
   * the whole SCVM, or a kill of one process): its NFS server, follower, gate.
   */
  async reviveScvm(i: number): Promise<string[]> {
    const dead = (p?: Proc) => !p || p.child.exitCode !== null || p.child.signalCode !== null;
    const revived: string[] = [];
    if (this.opts.nfs && dead(this.nfsServers[i - 1])) { await this.startNfsServer(i); revived.push('nfs'); }
    if (dead(this.followers[i - 1])) { this.followers[i - 1] = this.startFollower(i); revived.push('follower'); }
    if (this.opts.nfs && dead(this.gates[i - 1])) { this.gates[i - 1] = this.startGate(i); revived.push('gate'); }
    return revived;
  }

  gateEventLog(i: number): string {
    return path.join(this.dir, `gate-${i}.events`);
  }

  /** Starts the libnfs block writer on host i, writing `file` through 192.168.33.2 (test/nfs-writer). */
  startWriter(i: number, file: string, args: string[] = []): Proc {
    return this.spawnCommandIn(this.ns(`h${i}`), `writer-${i}-${file}`, NFS_WRITER, [this.nfsUrl, file, ...args]);
  }

  startAgent(i: number, detached = false): Proc {
    return this.spawnIn(this.ns(`h${i}`), `agent-${i}`, [CLI, 'agent', '--host-id', `esx-${i}`, '--local-server-id', `scvm-${i}`,
      '--storage-ip', storageIpOfHost(i), '--mgmt-ip', mgmtIpOfHost(i), '--master', this.masterAddress,
      '--backend', 'iproute2', '--socket-reset', this.opts.hostSocketReset === false ? 'none' : 'kill', '--private-interface', 'priv',
      '--probe-interval-ms', String(this.opts.probeIntervalMs ?? 500), '--misses', String(this.opts.misses ?? 3),
      '--hold-down-ms', String(this.opts.holdDownMs ?? 30_000), ...tlsArgs('agent', `esx-${i}`)], detached);
  }

  /** The gateway of host i's route to the NFS address, or 'local'. */
  async route(i: number): Promise<string> {
    const { stdout } = await run('ip', ['-n', this.ns(`h${i}`), '-j', 'route', 'show', `${NFS_ADDRESS}/32`]);
    const routes = JSON.parse(stdout || '[]') as Array<{ gateway?: string }>;
    return routes.find((r) => r.gateway)?.gateway ?? 'local';
  }

  /** Waits until host i routes the NFS address to a remote; returns the gateway. */
  async waitRerouted(i: number, timeoutMs: number): Promise<string> {
    let gateway = 'local';
    await waitFor(`host ${i} rerouted`, async () => (gateway = await this.route(i)) !== 'local', timeoutMs, 50);
    return gateway;
  }

  /** Opens a TCP connection from host i to the NFS address; returns the name of the SCVM that answered. */
  async connect(i: number, timeoutMs = 2000): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.ns(`h${i}`), process.execPath, CONNECT, NFS_ADDRESS, '2049', String(timeoutMs)]);
    return stdout.trim();
  }

  async ip(ns: string, ...args: string[]): Promise<void> {
    await run('ip', ['-n', ns, ...args]);
  }

  /** Takes SCVM i's links down or up (storage and private; management too when asked). */
  async scvmLinks(i: number, state: 'up' | 'down', links = ['sto', 'priv']): Promise<void> {
    for (const l of links) await this.ip(this.ns(`s${i}`), 'link', 'set', l, state);
  }

  /**
   * Stops everything and removes the namespaces, and the lab's directory
   * (logs, the export: hundreds of MB per run) unless `keepDir` or
   * NFSHA_KEEP_TEST_DIRS is set: keep it when something failed, to read.
   */
  async down(keepDir = false): Promise<void> {
    for (let i = 1; i <= this.opts.hosts; i++) fs.writeFileSync(path.join(this.dir, `ganesha-${i}.stop`), '');
    const running = this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of running) { p.signal('SIGCONT'); p.signal('SIGKILL'); }
    await Promise.all(running.map((p) => (p.child.exitCode === null && p.child.signalCode === null ? new Promise((r) => p.child.once('exit', r)) : undefined)));
    await this.etcd?.stop();
    await this.topology('down');
    removeTestDir(this.dir, keepDir);
  }

  dump(): string {
    return this.procs.filter((p) => /agent|master|follower/.test(p.name))
      .map((p) => p.tail(12)).join('\n');
  }

  /** Route-change lines an agent logged. */
  routeEvents(i: number): Array<{ ev: string; from: string; to: string; why: string; time: string }> {
    return this.agents[i - 1].log().split('\n').filter((l) => l.includes('"route.')).map((l) => JSON.parse(l));
  }

  /**
   * The latest route event of host i once there are more than `seen`: the
   * agent logs a change after making it, so the route can be seen changed
   * a moment before its log line is.
   */
  async routeEventAfter(i: number, seen: number): Promise<ReturnType<Lab['routeEvents']>[number]> {
    await waitFor(`a route event of host ${i} after the first ${seen}`, () => this.routeEvents(i).length > seen, 5_000, 20);
    return this.routeEvents(i).at(-1)!;
  }
}
