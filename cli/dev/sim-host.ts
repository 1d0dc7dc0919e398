import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { MSG_REPLY, RecordScanner } from '../../common/oncrpc';
import { callRecord } from './rpc-stand-in';

/** A gate a simulated host can reach: its name, the Access Server behind it, its port on 127.0.0.1. */
export interface GateTarget {
  gate: string;
  server: string;
  port: number;
}

/** What a simulated host saw, at its own Date.now() times. */
export type HostEvent =
  | { ev: 'flowing'; t: number; host: string; gate: string }
  | { ev: 'closed'; t: number; host: string; gate: string; unanswered: number }
  | { ev: 'resumed'; t: number; host: string; gate: string; pauseMs: number };

export interface SimHostOptions {
  /** Host id, as the master's --host knows it (esx-1). */
  id: string;
  /** Loopback alias bound as the TCP source: the master maps it to the host. */
  sourceIp: string;
  /** Calls kept outstanding. Default 4. */
  window?: number;
  /** After a connection it did not leave is closed, connect to the same gate again after this. Default 200 ms. */
  reconnectMs?: number;
}

interface Conn {
  target: GateTarget;
  socket: net.Socket;
  /** XIDs sent on this connection without a reply. */
  owed: Set<number>;
  answered: boolean;
  /** A newer connection got its first reply: this one gets no more calls. */
  retired: boolean;
}

/**
 * An ESXi host's NFS client, simulated: it keeps a few WRITE calls
 * outstanding through one gate, and measures its own IO. Moving it opens the
 * new connection and keeps the old one busy until the new one answers: the
 * old server still holds the socket and calls in flight, the case Login
 * Revoke exists for (the new gate must not serve before they are drained).
 * Calls a closed connection left unanswered are sent again on the current
 * one, as NFS clients retransmit after a reconnect.
 */
export class SimHost extends EventEmitter {
  readonly id: string;
  private readonly window: number;
  private readonly reconnectMs: number;
  private current?: Conn;
  private readonly conns = new Set<Conn>();
  private readonly retransmit: number[] = [];
  private nextXid = 1;
  private reconnectTimer?: NodeJS.Timeout;
  private stopped = false;
  /** Date.now() of the last reply, over any connection. */
  lastReplyAt = 0;
  replies = 0;
  /** Longest time between two replies since resetGap(). */
  maxGapMs = 0;

  constructor(private readonly opts: SimHostOptions) {
    super();
    this.id = opts.id;
    this.window = opts.window ?? 4;
    this.reconnectMs = opts.reconnectMs ?? 200;
  }

  get gate(): GateTarget | undefined {
    return this.current?.target;
  }

  /** Calls sent on the current connection and not answered yet. */
  get inFlight(): number {
    return this.current?.owed.size ?? 0;
  }

  /** Makes `target` the current gate; earlier connections stay open until their gate closes them. */
  connect(target: GateTarget): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const socket = net.connect({ host: '127.0.0.1', port: target.port, localAddress: this.opts.sourceIp });
    const conn: Conn = { target, socket, owed: new Set(), answered: false, retired: false };
    this.conns.add(conn);
    this.current = conn;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('connect', () => this.topUp(conn));
    const replies = new RecordScanner((xid, type) => {
      if (type === MSG_REPLY && conn.owed.delete(xid)) this.onReply(conn);
    });
    socket.on('data', (chunk) => replies.push(chunk));
    socket.on('close', () => this.onClose(conn));
  }

  resetGap(): void {
    this.maxGapMs = 0;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    for (const c of this.conns) c.socket.destroy();
  }

  private onReply(conn: Conn): void {
    const t = Date.now();
    if (this.lastReplyAt) this.maxGapMs = Math.max(this.maxGapMs, t - this.lastReplyAt);
    if (!conn.answered) {
      conn.answered = true;
      for (const other of this.conns) if (other !== conn) other.retired = true;
      // The first reply over a connection: its gate admitted the host, IO flows (again).
      if (this.lastReplyAt) this.emit('event', { ev: 'resumed', t, host: this.id, gate: conn.target.gate, pauseMs: t - this.lastReplyAt } satisfies HostEvent);
      else this.emit('event', { ev: 'flowing', t, host: this.id, gate: conn.target.gate } satisfies HostEvent);
    }
    this.lastReplyAt = t;
    this.replies++;
    this.topUp(conn);
  }

  private onClose(conn: Conn): void {
    this.conns.delete(conn);
    this.retransmit.push(...conn.owed);
    if (!this.stopped) this.emit('event', { ev: 'closed', t: Date.now(), host: this.id, gate: conn.target.gate, unanswered: conn.owed.size } satisfies HostEvent);
    if (conn !== this.current || this.stopped) return this.topUp(this.current);
    this.current = undefined;
    this.reconnectTimer = setTimeout(() => this.connect(conn.target), this.reconnectMs);
  }

  /** Keeps `window` calls outstanding on a connection, retransmissions first. */
  private topUp(c: Conn | undefined): void {
    if (!c || c.retired || c.socket.connecting || c.socket.destroyed) return;
    const xids: number[] = [];
    while (c.owed.size + xids.length < this.window) xids.push(this.retransmit.shift() ?? this.nextXid++);
    if (!xids.length) return;
    for (const x of xids) c.owed.add(x);
    c.socket.write(Buffer.concat(xids.map((x) => callRecord(x))));
  }
}
