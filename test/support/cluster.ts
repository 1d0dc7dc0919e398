import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchStatus } from '../../cli/status-command';
import { completeLines } from './log-lines';
import { OPERATOR_TLS, tlsArgs } from './pki';
import type { ClusterStatusReply__Output } from '../../gen/nfsha/v1/ClusterStatusReply';
import { admissions, describeOverlap, overlaps, readGateEvents } from './invariant';

export const CLI = path.resolve(__dirname, '..', '..', 'cli', 'nfsha.js');

/**
 * A port nothing listens on, for a process the test is about to start.
 * Taken below the kernel's ephemeral range (ip_local_port_range, 32768-60999
 * on Debian) and never handed out twice in one test process: a port from
 * listen(0) is free again once closed, and a later listen(0) (the echo
 * server) or another freePort could get it before the child binds it. A
 * fresh-clone CI run once failed "cannot reach master ... ECONNRESET": the
 * master's port was answered by something else.
 */
const handedOut = new Set<number>();
const PORT_BASE = 20_000;
const PORT_SPAN = 12_000;
let nextPort = PORT_BASE + ((process.pid * 7919) % PORT_SPAN);

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_SPAN; tries++) {
    const port = nextPort;
    nextPort = nextPort + 1 >= PORT_BASE + PORT_SPAN ? PORT_BASE : nextPort + 1;
    if (handedOut.has(port)) continue;
    if (!(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${PORT_BASE}-${PORT_BASE + PORT_SPAN - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * Children a test started and did not stop (a hook that failed half way):
 * killed when the test process exits, so none outlives the suite, and
 * mocha's exit is not held by their handles.
 */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
});

export function tracked(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/**
 * The pid in a pid file, or an error. Never 0 or 1: `process.kill(0, sig)`
 * signals the test runner's whole process group, so a pid file read while it
 * was being written (empty: Number('') is 0) once sent SIGSTOP to mocha itself
 * and CI hung until its 90 min limit.
 */
export function readPid(file: string): number {
  const text = fs.readFileSync(file, 'utf8');
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 2) throw new Error(`pid file ${file} does not hold a pid: ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

/**
 * Removes a test's scratch directory (logs, exports), unless `keep` or
 * NFSHA_KEEP_TEST_DIRS=1 asks to keep it for reading after a run. Failing
 * tests put the logs they need into their messages.
 */
export function removeTestDir(dir: string, keep = false): void {
  if (keep || process.env.NFSHA_KEEP_TEST_DIRS === '1') return;
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // A process that outlived its kill may still write there: leave the rest.
  }
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An echo server: the stand-in NFS server behind the gates in these tests. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((s) => { conns.add(s); s.on('close', () => conns.delete(s)); s.on('error', () => undefined); s.pipe(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => { for (const c of conns) c.destroy(); await new Promise((r) => server.close(r)); },
  };
}

/** A TCP client bound to `sourceIp` (a loopback alias stands in for an ESXi host). */
export class TestClient {
  readonly socket: net.Socket;
  private received = '';
  closed = false;

  constructor(sourceIp: string, port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port, localAddress: sourceIp });
    this.socket.on('data', (d) => { this.received += d.toString(); });
    this.socket.on('close', () => { this.closed = true; });
    this.socket.on('error', () => undefined);
  }

  /** Sends a line and waits for its echo: proves the gate admitted and forwards. */
  async roundTrip(text: string, timeoutMs = 15_000): Promise<void> {
    this.socket.write(text);
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes(text)) {
      if (this.closed) throw new Error(`connection closed by the gate before the echo of ${JSON.stringify(text)}`);
      if (Date.now() > deadline) throw new Error(`no echo of ${JSON.stringify(text)} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export class Proc {
  constructor(readonly name: string, readonly child: ChildProcess, readonly logFile: string) {}

  get pid(): number {
    return this.child.pid!;
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }

  /** The last `lines` lines of its log, under its name (for a failure's message). */
  tail(lines: number): string {
    return `--- ${this.name}\n${this.log().split('\n').slice(-lines).join('\n')}`;
  }
}

export interface ClusterOptions {
  followers: number;
  ttlMs?: number;
  keepaliveMs?: number;
  /** Hosts known to the master: id → storage IP. */
  hosts?: Record<string, string>;
  /** Followers (1-based) that reach the master through a fault proxy. */
  proxied?: number[];
  /** etcd endpoints: run `masters` candidates in an election instead of one embedded master. */
  etcd?: string[];
  masters?: number;
  electionTtlSeconds?: number;
  /** Serve Prometheus metrics from the master and the followers (ports in metricsPorts). */
  metrics?: boolean;
  /** Serve the HTTPS JSON API from the masters and the followers (ports in httpPorts). */
  http?: boolean;
  /** More flags for every master (limits, …). */
  masterArgs?: string[];
  /**
   * Each gate in front of its own stand-in NFS server (ONC RPC framing,
   * rpc-stand-in.ts) answering every call after `delayMs`, in its own
   * process, with the lab's fence command (kill it) on gate and follower
   * and the follower's NFS probe on it. Default: one shared echo server.
   */
  rpcBackend?: { delayMs: number };
  /** More flags for every gate and every follower. */
  gateArgs?: string[];
  followerArgs?: string[];
}

export const FENCE_NFS = path.resolve(__dirname, '..', '..', '..', 'test', 'lab', 'fence-nfs.sh');
const RPC_STAND_IN = path.join(__dirname, 'rpc-stand-in.js');

/**
 * A real cluster of processes on loopback: one master, N followers, and a
 * TCP gate (the NFS layer) per follower in front of an echo server.
 */
export class Cluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-it-'));
  readonly procs: Proc[] = [];
  masterAddress = '';
  /** Every master candidate's address; followers get them all. */
  masterAddresses: string[] = [];
  masterProcs: Proc[] = [];
  master!: Proc;
  followers: Proc[] = [];
  gates: Proc[] = [];
  gatePorts: number[] = [];
  /** With rpcBackend: each gate's NFS server (1-based index - 1) and its port. */
  nfsServers: Proc[] = [];
  nfsPorts: number[] = [];
  /** Metrics ports: masters first (by candidate), then followers, by name. */
  metricsPorts = new Map<string, number>();
  /** HTTPS JSON API ports, by process name, with `http`. */
  httpPorts = new Map<string, number>();
  proxies = new Map<number, import('./fault-proxy').FaultProxy>();
  private extraArgs = new Map<string, string[]>();
  private backend?: { port: number; close(): Promise<void> };

  constructor(readonly opts: ClusterOptions) {}

  spawn(name: string, args: string[]): Proc {
    return this.spawnCommand(name, process.execPath, [CLI, ...args]);
  }

  spawnCommand(name: string, command: string, args: string[]): Proc {
    const logFile = path.join(this.dir, `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = tracked(spawn(command, args, { stdio: ['ignore', out, out], env: { ...process.env, NFSHA_LOG_LEVEL: 'info' } }));
    fs.closeSync(out);
    const p = new Proc(name, child, logFile);
    this.procs.push(p);
    return p;
  }

  gateSocket(i: number): string {
    return `unix:${path.join(this.dir, `gate-${i}.sock`)}`;
  }

  eventLog(i: number): string {
    return path.join(this.dir, `gate-${i}.events`);
  }

  private async metricsArgs(name: string): Promise<string[]> {
    const args: string[] = [];
    if (this.opts.metrics) {
      const port = await freePort();
      this.metricsPorts.set(name, port);
      args.push('--metrics-listen', `127.0.0.1:${port}`);
    }
    if (this.opts.http) {
      const port = await freePort();
      this.httpPorts.set(name, port);
      args.push('--http-listen', `127.0.0.1:${port}`);
    }
    return args;
  }

  /** Starts every process, or stops what it started and throws. */
  async start(): Promise<this> {
    try {
      return await this.startAll();
    } catch (e) {
      // Keep the logs: they say why it did not start.
      const logs = this.dump();
      await this.stop().catch(() => undefined);
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  }

  private async startAll(): Promise<this> {
    const port = await freePort();
    const metricsFor = new Map<string, string[]>();
    for (let k = 1; k <= (this.opts.masters ?? 1); k++) metricsFor.set(`master-${k}`, await this.metricsArgs(`master-${k}`));
    for (let i = 1; i <= this.opts.followers; i++) metricsFor.set(`follower-${i}`, await this.metricsArgs(`follower-${i}`));
    this.extraArgs = metricsFor;
    this.masterAddress = `127.0.0.1:${port}`;
    this.masterAddresses = [this.masterAddress];
    for (let k = 1; k < (this.opts.masters ?? 1); k++) this.masterAddresses.push(`127.0.0.1:${await freePort()}`);
    this.masterProcs = this.masterAddresses.map((_, k) => this.startMaster(k + 1));
    this.master = this.masterProcs[0];
    if (!this.opts.rpcBackend) this.backend = await echoServer();
    const { FaultProxy } = await import('./fault-proxy');
    for (let i = 1; i <= this.opts.followers; i++) {
      if (this.opts.rpcBackend) {
        this.nfsPorts[i - 1] = await freePort();
        await this.startNfsServer(i);
      }
      let masterAddr = this.masterAddresses.join(',');
      if (this.opts.proxied?.includes(i)) {
        const proxy = new FaultProxy('127.0.0.1', port);
        masterAddr = `127.0.0.1:${await proxy.start()}`;
        this.proxies.set(i, proxy);
      }
      this.followers.push(this.startFollower(i, masterAddr));
      const gatePort = await freePort();
      this.gatePorts.push(gatePort);
      this.gates.push(this.startGate(i, gatePort));
    }
    await this.unlessOneExits(this.waitLive(this.opts.followers));
    await this.unlessOneExits(waitFor('every gate serving', () => this.gates.every((g) => g.log().includes('"gate.serving"'))));
    // Followers fence their NFS server when they start: wait until a new
    // process listens in place of each one fenced (the follower's probe may
    // still say up from before the fence, for its misses-to-fail), and the
    // followers report it up.
    if (this.opts.rpcBackend) {
      await waitFor('every NFS server restarted after its follower\'s start fence', () => {
        const fences = this.fences();
        return this.nfsServers.every((_, k) => {
          const fenced = fences.filter((f) => f.label === `gate-${k + 1}`);
          return fenced.length > 0 && fenced.every((f) => Number(f.pid) !== this.nfsPid(k + 1));
        });
      }, 15_000, 50);
      await waitFor('every NFS server up again', async () => (await this.status()).sessions.filter((x) => x.nfs === 'up').length >= this.opts.followers, 15_000, 100);
    }
    return this;
  }

  /** `wait`, unless a master, follower or gate exits first (a bad flag, a port taken): then fail at once, naming it. */
  private async unlessOneExits<T>(wait: Promise<T>): Promise<T> {
    let poll: NodeJS.Timeout | undefined;
    const exited = new Promise<never>((_, reject) => {
      poll = setInterval(() => {
        const dead = [...this.masterProcs, ...this.followers, ...this.gates].find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
        if (dead) reject(new Error(`${dead.name} exited while the cluster started (${dead.child.exitCode ?? dead.child.signalCode})`));
      }, 50);
    });
    try {
      return await Promise.race([wait, exited]);
    } finally {
      clearInterval(poll);
    }
  }

  /** Starts master candidate k (1-based) on its address. */
  startMaster(k: number): Proc {
    const hosts = Object.entries(this.opts.hosts ?? {}).map(([id, ip]) => `--host=${id}=${ip}`);
    const etcd = this.opts.etcd ? ['--etcd', this.opts.etcd.join(','), '--id', `m${k}`, '--election-ttl-s', String(this.opts.electionTtlSeconds ?? 2)] : [];
    return this.spawn(this.opts.etcd ? `master-${k}` : 'master', ['master', '--listen', this.masterAddresses[k - 1], ...tlsArgs('master', `m${k}`), '--ttl-ms', String(this.opts.ttlMs ?? 2000),
      '--keepalive-ms', String(this.opts.keepaliveMs ?? 250), ...etcd, ...hosts, ...(this.opts.masterArgs ?? []), ...(this.extraArgs.get(`master-${k}`) ?? [])]);
  }

  startFollower(i: number, masterAddr = this.masterAddresses.join(',')): Proc {
    const nfs = this.opts.rpcBackend ? ['--nfs-probe', `nfs@127.0.0.1:${this.nfsPorts[i - 1]}`, '--fence-command', JSON.stringify(this.fenceCommand(i)), '--fence-timeout-ms', '900'] : [];
    return this.spawn(`follower-${i}`, ['follower', '--server-id', `scvm-${i}`, '--host-id', `esx-${i}`, '--storage-ip', `127.0.2.${i}`, ...tlsArgs('follower', `scvm-${i}`),
      '--master', masterAddr, '--gate-listen', this.gateSocket(i), ...nfs, ...(this.opts.followerArgs ?? []), ...(this.extraArgs.get(`follower-${i}`) ?? [])]);
  }

  startGate(i: number, port: number): Proc {
    const backend = this.opts.rpcBackend ? this.nfsPorts[i - 1] : this.backend!.port;
    const fence = this.opts.rpcBackend ? ['--fence-command', JSON.stringify(this.fenceCommand(i)), '--fence-timeout-ms', '900'] : [];
    return this.spawn(`gate-${i}`, ['gate', '--name', `gate-${i}`, '--follower', this.gateSocket(i), ...tlsArgs('gate', `scvm-${i}`),
      '--route', `127.0.0.1:${port}=127.0.0.1:${backend}`, '--event-log', this.eventLog(i), ...fence, ...(this.opts.gateArgs ?? [])]);
  }

  /** The lab's NFS fence command for gate i's stand-in server: kill it, log when it is gone. */
  fenceCommand(i: number): string[] {
    return [FENCE_NFS, this.nfsPidFile(i), this.fenceLog, `gate-${i}`];
  }

  get fenceLog(): string {
    return path.join(this.dir, 'nfs-fences.log');
  }

  nfsPidFile(i: number): string {
    return path.join(this.dir, `nfs-${i}.pid`);
  }

  /** Executions of gate i's stand-in NFS server: when it ran which call. */
  executions(i: number): Array<{ t: number; xid: number; peer: string }> {
    const f = path.join(this.dir, `nfs-${i}.exec`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  }

  /** NFS fences the lab's fence command recorded. */
  fences(): Array<{ t: number; started: number; label: string; pid: string }> {
    return fs.existsSync(this.fenceLog) ? completeLines(fs.readFileSync(this.fenceLog, 'utf8')).map((l) => JSON.parse(l)) : [];
  }

  /** (Re)starts gate i's stand-in NFS server and waits until it listens. */
  async startNfsServer(i: number, delayMs = this.opts.rpcBackend?.delayMs ?? 0): Promise<Proc> {
    fs.rmSync(this.nfsPidFile(i), { force: true });
    // Under a supervisor loop, as the lab's Ganesha: a fence kills it, the loop restarts it.
    const run = [process.execPath, RPC_STAND_IN, String(this.nfsPorts[i - 1]), String(delayMs), path.join(this.dir, `nfs-${i}.exec`), this.nfsPidFile(i)]
      .map((a) => `'${a}'`).join(' ');
    const p = this.spawnCommand(`nfs-${i}`, 'bash', ['-c', `while [ ! -e '${this.dir}/stop' ]; do ${run}; sleep 0.1; done`]);
    this.nfsServers[i - 1] = p;
    await waitFor(`stand-in NFS server ${i} listening`, () => fs.existsSync(this.nfsPidFile(i)), 10_000);
    return p;
  }

  /** The pid of gate i's stand-in NFS server now (it changes when a fence restarts it). */
  nfsPid(i: number): number {
    return readPid(this.nfsPidFile(i));
  }

  /**
   * The most bytes one connection to gate i's NFS server holds unread in the
   * kernel: calls the gate forwarded to a stopped server. Read from
   * /proc/net/tcp (rx_queue of sockets on the server's port), per connection
   * so the health probe's own NULL calls do not add up.
   */
  nfsUnreadBytes(i: number): number {
    const port = this.nfsPorts[i - 1].toString(16).toUpperCase().padStart(4, '0');
    let most = 0;
    for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || !f[1].endsWith(`:${port}`) || f[3] !== '01') continue; // 01: established
      most = Math.max(most, parseInt(f[4].split(':')[1], 16));
    }
    return most;
  }

  /** Sends a signal to gate i's stand-in NFS server (not its supervisor). */
  signalNfs(i: number, sig: NodeJS.Signals): void {
    process.kill(this.nfsPid(i), sig);
  }

  /** Runs `nfsha fence-confirm <server>` as the test operator, as a person would; returns what it printed. */
  fenceConfirm(serverId: string, reason = 'test: the server is down'): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [CLI, 'fence-confirm', serverId, '--reason', reason, '--master', this.masterAddresses.join(','), ...tlsArgs('operator', 'test')],
        (err, stdout, stderr) => (err ? reject(new Error(`fence-confirm ${serverId}: ${stderr || err.message}`)) : resolve(stdout)));
    });
  }

  /**
   * Tries `host` on gate i until the master refuses the login because
   * `server` holds it (no fence there), and returns that hold.
   */
  async heldBy(i: number, sourceIp: string, clientId: string, serverId: string) {
    let hold: ClusterStatusReply__Output['held'][number] | undefined;
    await waitFor(`${clientId} held by ${serverId}`, async () => {
      const c = new TestClient(sourceIp, this.gatePorts[i - 1]);
      await c.roundTrip('held?\n', 5000).then(() => { throw new Error(`${clientId} was admitted on gate-${i} while ${serverId} could not be fenced`); }, () => c.close());
      hold = (await this.status()).held.find((h) => h.clientId === clientId && h.serverId === serverId);
      return hold !== undefined;
    }, 30_000, 100);
    return hold!;
  }

  status(): Promise<ClusterStatusReply__Output> {
    return fetchStatus(this.masterAddresses.join(','), 2000, OPERATOR_TLS());
  }

  async waitLive(n: number, servers?: string[]): Promise<ClusterStatusReply__Output> {
    return waitFor(`${n} live sessions`, async () => {
      const s = await this.status();
      const live = s.sessions.filter((x) => x.state === 'live' && x.connected && (!servers || servers.includes(x.serverId)));
      return s.leader && live.length >= n ? s : undefined;
    });
  }

  /** Connects `sourceIp` to gate i and proves data flows through it. */
  async connect(i: number, sourceIp: string, timeoutMs = 15_000): Promise<TestClient> {
    const c = new TestClient(sourceIp, this.gatePorts[i - 1]);
    await c.roundTrip(`hello from ${sourceIp} via gate-${i}\n`, timeoutMs);
    return c;
  }

  events() {
    return readGateEvents(Array.from({ length: this.opts.followers }, (_, k) => this.eventLog(k + 1)));
  }

  /** Service intervals (admitted, or with calls in flight) over every gate's event log. */
  services() {
    const fences = this.fences().map((f) => ({ gate: f.label, started: f.started, t: f.t }));
    return admissions(this.events(), { hostOf: (c) => c.replace(/^host:/, ''), fences });
  }

  /** Asserts the single-service invariant over every gate's event log (DESIGN §4). */
  assertSingleAdmission(): void {
    const bad = overlaps(this.services());
    if (bad.length) throw new Error(`single-service invariant broken: ${bad.map(describeOverlap).join('; ')}`);
  }

  async stop(): Promise<void> {
    fs.writeFileSync(path.join(this.dir, 'stop'), '');
    for (const i of this.nfsPorts.keys()) { try { process.kill(this.nfsPid(i + 1), 'SIGKILL'); } catch { /* gone */ } }
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) { p.signal('SIGCONT'); p.signal('SIGKILL'); }
    await Promise.all(this.procs.map((p) => (p.child.exitCode === null && p.child.signalCode === null ? new Promise((r) => p.child.once('exit', r)) : undefined)));
    for (const proxy of this.proxies.values()) await proxy.stop();
    await this.backend?.close();
    removeTestDir(this.dir);
  }

  /** Logs of every process, for a failing test's message. */
  dump(): string {
    return this.procs.map((p) => p.tail(40)).join('\n');
  }
}
