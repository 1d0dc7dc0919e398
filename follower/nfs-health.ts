import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Clock, TimerHandle } from '../common/clock';
import { ProbeTracker, type ProbeState } from '../common/hysteresis';
import { MOUNT_PROGRAM, NFS_PROGRAM, RecordScanner, nullCallRecord, replyVerdict } from '../common/oncrpc';

/** One RPC program to probe with NULL calls, e.g. NFS v3 on 127.0.0.1:2049. */
export interface NfsProbeTarget {
  host: string;
  port: number;
  program: number;
  version: number;
}

/** `nfs@127.0.0.1:2050` / `mount@127.0.0.1:20050` (v3), or `100003.3@host:port`. */
export function parseProbeTarget(text: string): NfsProbeTarget | undefined {
  const m = /^(nfs|mount|\d+\.\d+)@(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[2].replace(/^\[(.*)\]$/, '$1');
  if (m[1] === 'nfs') return { host, port, program: NFS_PROGRAM, version: 3 };
  if (m[1] === 'mount') return { host, port, program: MOUNT_PROGRAM, version: 3 };
  const [program, version] = m[1].split('.').map(Number);
  return { host, port, program, version };
}

export function describeTarget(t: NfsProbeTarget): string {
  const name = t.program === NFS_PROGRAM ? 'nfs' : t.program === MOUNT_PROGRAM ? 'mount' : String(t.program);
  return `${name}v${t.version}@${t.host}:${t.port}`;
}

export interface NfsHealthEvents {
  /** The overall state changed (after hysteresis), with the targets that are down. */
  changed: [state: ProbeState, down: string[]];
}

export interface NfsHealthOptions {
  intervalMs: number;
  missesToFail: number;
  /** A NULL call unanswered this long is a miss. Default: the interval. */
  timeoutMs?: number;
}

/**
 * Probes the local NFS server with ONC RPC NULL calls (DESIGN §3 "NFS
 * health"): a VM that pings and a follower that keeps its session say nothing
 * about an NFS server that hangs. Each target keeps one TCP connection (a
 * hung server leaves a connect that works but a call that never returns);
 * the agent's hysteresis applies: N misses in a row to go down, one answer up.
 */
export class NfsHealth extends EventEmitter<NfsHealthEvents> {
  private readonly probes: TargetProbe[];
  private timer?: TimerHandle;
  private overall: ProbeState = 'unknown';
  private stopped = false;

  constructor(targets: NfsProbeTarget[], private readonly opts: NfsHealthOptions, private readonly clock: Clock) {
    super();
    this.probes = targets.map((t) => new TargetProbe(t, opts.missesToFail, clock, opts.timeoutMs ?? opts.intervalMs));
  }

  get state(): ProbeState {
    return this.overall;
  }

  get configured(): boolean {
    return this.probes.length > 0;
  }

  /** Targets currently down, for logs and status. */
  down(): string[] {
    return this.probes.filter((p) => p.tracker.state === 'down').map((p) => describeTarget(p.target));
  }

  start(): void {
    if (!this.probes.length) return;
    const round = async () => {
      if (this.stopped) return;
      const started = this.clock.now();
      await Promise.all(this.probes.map((p) => p.probe()));
      this.update();
      if (this.stopped) return;
      this.timer = this.clock.setTimeout(round, Math.max(0, this.opts.intervalMs - (this.clock.now() - started)));
    };
    void round();
  }

  private update(): void {
    const states = this.probes.map((p) => p.tracker.state);
    const next: ProbeState = states.includes('down') ? 'down' : states.every((s) => s === 'up') ? 'up' : 'unknown';
    if (next === this.overall) return;
    this.overall = next;
    this.emit('changed', next, this.down());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    for (const p of this.probes) p.close();
  }
}

/** One target: a persistent connection and one NULL call per round. */
class TargetProbe {
  readonly tracker: ProbeTracker;
  private socket?: net.Socket;
  private scanner?: RecordScanner;
  private waiting?: { xid: number; socket: net.Socket; done: (ok: boolean) => void };
  private xid = (Math.random() * 0x7fffffff) >>> 0;

  constructor(readonly target: NfsProbeTarget, missesToFail: number, private readonly clock: Clock, private readonly timeoutMs: number) {
    this.tracker = new ProbeTracker(missesToFail);
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.target.host, port: this.target.port });
    socket.setNoDelay(true);
    this.scanner = new RecordScanner((xid, _type, head) => {
      const w = this.waiting;
      if (!w || w.xid !== xid) return;
      const verdict = replyVerdict(head);
      w.done(verdict?.verdict === 'accepted');
    }, 32);
    socket.on('data', (chunk) => this.scanner?.push(chunk));
    const gone = () => {
      if (this.socket === socket) this.socket = undefined;
      if (this.waiting?.socket === socket) this.waiting.done(false);
    };
    socket.on('error', gone);
    socket.on('close', gone);
    return socket;
  }

  probe(): Promise<void> {
    return new Promise((resolve) => {
      const socket = (this.socket ??= this.connect());
      const xid = (this.xid = (this.xid + 1) >>> 0);
      const timer = this.clock.setTimeout(() => {
        // A server that does not answer in time may be hung mid-connection:
        // start the next round on a fresh connection.
        this.close();
        finish(false);
      }, this.timeoutMs);
      const finish = (ok: boolean) => {
        if (this.waiting?.xid !== xid) return;
        this.waiting = undefined;
        this.clock.clearTimeout(timer);
        this.tracker.record(ok, this.clock.now());
        resolve();
      };
      this.waiting = { xid, socket, done: finish };
      socket.write(nullCallRecord(xid, this.target.program, this.target.version));
    });
  }

  close(): void {
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
  }
}
