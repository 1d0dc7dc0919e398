import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PkiDirectory, type Role } from '../../common/pki';
import { fetchStatus } from '../../common/status-client';
import type { ClusterStatusReply__Output } from '../../gen/nfsha/v1/ClusterStatusReply';
import { Listeners } from './events';
import { LogTail, type LogEvent } from './log-tail';
import { DevProcesses } from './processes';
import { serve, type StandInServer } from './rpc-stand-in';
import type { GateTarget } from './sim-host';

export interface DevClusterOptions {
  /** Access Servers: follower i and gate i run as scvm-i on host esx-i. */
  followers: number;
  /** The master's port on 127.0.0.1. */
  port: number;
  /** Logs, gate sockets, event logs and the throwaway PKI. */
  dir: string;
  /** How long the stand-in NFS servers take to answer a call. */
  nfsDelayMs: number;
  /** A process exited that nobody stopped. */
  onUnexpectedExit(name: string, how: string): void;
}

/** Source address of simulated host i, as the master's --host maps it. */
export function hostIp(i: number): string {
  return `127.0.1.${i}`;
}

/**
 * A cluster on loopback: one master, and per Access Server a follower and a
 * gate (the built-in NFS layer) in front of a stand-in NFS server that runs
 * inside this process. mTLS like a real cluster, with its own throwaway CA.
 */
export class DevCluster {
  readonly master: string;
  readonly procs: DevProcesses;
  readonly logs = new Listeners<LogEvent>();
  readonly gates: GateTarget[] = [];
  readonly operatorTls: string;
  private readonly tail: LogTail;
  private readonly pki: PkiDirectory;
  /** The stand-in NFS server behind each gate, in gate order. */
  readonly standIns: StandInServer[] = [];
  private readonly controls: net.Server[] = [];

  constructor(private readonly opts: DevClusterOptions) {
    this.master = `127.0.0.1:${opts.port}`;
    this.procs = new DevProcesses(opts.dir, opts.onUnexpectedExit);
    this.tail = new LogTail((e) => this.logs.emit(e));
    this.pki = new PkiDirectory(path.join(opts.dir, 'pki'));
    this.operatorTls = this.tls('operator', 'dev');
  }

  get pkiDir(): string {
    return this.pki.dir;
  }

  private tls(role: Role, id: string): string {
    this.pki.issue({ role, id });
    return this.pki.tlsDir({ role, id });
  }

  private startProcess(name: string, args: string[]): number {
    this.tail.add(name, this.procs.logFile(name));
    return this.procs.start(name, args);
  }

  /** Starts every process and waits until each gate serves. */
  async start(timeoutMs = 30_000): Promise<void> {
    const { followers: n, dir } = this.opts;
    const hosts = Array.from({ length: n }, (_, k) => `--host=esx-${k + 1}=${hostIp(k + 1)}`);
    // Keys first: making one blocks this process, which also runs the
    // stand-in NFS servers, and a stand-in that cannot answer looks down.
    const tls = Array.from({ length: n }, (_, k) => ({ follower: this.tls('follower', `scvm-${k + 1}`), gate: this.tls('gate', `scvm-${k + 1}`) }));
    const masterTls = this.tls('master', 'master');
    this.startProcess('master', ['master', '--listen', this.master, '--tls', masterTls, ...hosts]);
    for (let i = 1; i <= n; i++) {
      const nfs = await serve(0, this.opts.nfsDelayMs);
      this.standIns.push(nfs);
      const nfsPort = (nfs.address() as net.AddressInfo).port;
      const gateApi = `unix:${path.join(dir, `gate-${i}.sock`)}`;
      const fence = JSON.stringify(await this.fenceCommandFor(nfs, path.join(dir, `fence-${i}.sock`)));
      this.startProcess(`follower-${i}`, ['follower', '--server-id', `scvm-${i}`, '--host-id', `esx-${i}`, '--storage-ip', `127.0.2.${i}`,
        '--master', this.master, '--gate-listen', gateApi, '--nfs-probe', `nfs@127.0.0.1:${nfsPort}`, '--fence-command', fence, '--tls', tls[i - 1].follower]);
      this.startProcess(`gate-${i}`, ['gate', '--name', `gate-${i}`, '--follower', gateApi, '--tls', tls[i - 1].gate,
        '--route', `127.0.0.1:0=127.0.0.1:${nfsPort}`, '--fence-command', fence, '--event-log', path.join(dir, `gate-${i}.events`)]);
    }
    for (let i = 1; i <= n; i++) {
      const started = await this.logged(`gate-${i} listening`, (e) => e.src === `gate-${i}` && e.ev === 'gate.started', timeoutMs);
      this.gates.push({ gate: `gate-${i}`, server: `scvm-${i}`, port: (started.ports as number[])[0] });
      await this.logged(`gate-${i} serving`, (e) => e.src === `gate-${i}` && e.ev === 'gate.serving', timeoutMs);
    }
  }

  /**
   * The stand-in's fence (issue 18: the demo runs with fences, as production
   * must): a connection to a control socket of this process fences the
   * stand-in, which cuts its connections and drops its queued calls, then
   * answers "ok". The command follower and gate run is node connecting to it.
   */
  private async fenceCommandFor(nfs: StandInServer, socket: string): Promise<string[]> {
    fs.rmSync(socket, { force: true });
    const control = net.createServer((c) => {
      nfs.fence();
      c.end('ok\n');
    });
    this.controls.push(control);
    await new Promise<void>((resolve) => control.listen(socket, resolve));
    const client = 'const s=require("net").connect(process.argv[1]);let t="";s.on("data",(d)=>{t+=d});'
      + 's.on("close",()=>process.exit(t.includes("ok")?0:1));s.on("error",(e)=>{console.error(e.message);process.exit(1)})';
    return [process.execPath, '-e', client, socket];
  }

  /** The first log event (already seen or to come) matching `pred`. */
  logged(what: string, pred: (e: LogEvent) => boolean, timeoutMs: number): Promise<LogEvent> {
    return this.logs.first(what, pred, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}; logs in ${this.opts.dir}`);
    });
  }

  status(): Promise<ClusterStatusReply__Output> {
    return fetchStatus(this.master, 2000, { dir: this.operatorTls });
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
    this.tail.poll();
    this.tail.stop();
    for (const s of this.standIns) s.close();
    for (const c of this.controls) c.close();
  }
}
