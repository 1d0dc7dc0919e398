import * as net from 'node:net';
import { MSG_CALL, MSG_REPLY, RecordScanner } from '../common/oncrpc';
import type { ForwardedConn } from './gate-core';

export interface GateConnectionHooks {
  /** Asked before every chunk goes to the NFS server: false stops the connection. */
  mayForward(conn: GateConnection): boolean;
  /** The connection stopped forwarding (called before drained). */
  stopped(conn: GateConnection): void;
  /** The connection stopped forwarding, every forwarded call has its reply, nothing is left unsent. */
  drained(conn: GateConnection): void;
  /** Both sockets are gone. */
  closed(conn: GateConnection): void;
}

/** Why a connection stopped forwarding. */
export type StopReason = string;

let nextSerial = 1;

/**
 * One NFS client connection forwarded to the NFS server (DESIGN §4,
 * "Requests, not only connections"). Both directions are scanned for ONC RPC
 * records: a call counts as in flight once its whole record was handed to
 * the server's socket, and until a reply with its XID comes back. After
 * stop() nothing more is read from the client, and the connection to the
 * server stays open only to collect the replies still owed: it is drained
 * when none are owed and no byte waits to be sent. A call record left
 * incomplete at the stop is never completed, and a server executes only
 * whole records, so it does not count.
 */
export class GateConnection implements ForwardedConn {
  readonly serial = nextSerial++;
  /** Clock time the connection to the NFS server was opened: fences started after it cover it. */
  readonly openedAt: number;
  private readonly owed = new Map<number, number>();
  private owedCount = 0;
  private stopReason?: StopReason;
  /** The server connection closed with calls still owed: their fate is unknown until a fence. */
  private lostCalls = 0;
  private fencedOff = false;
  private isDrained = false;
  private clientGone = false;
  private backendGone = false;
  private readonly backend: net.Socket;
  /** Calls forwarded over this connection in all. */
  forwardedCalls = 0;

  constructor(
    readonly client: net.Socket,
    backendHost: string,
    backendPort: number,
    readonly clientId: string,
    private readonly hooks: GateConnectionHooks,
    now: number,
  ) {
    this.openedAt = now;
    const backend = (this.backend = net.connect({ host: backendHost, port: backendPort }));
    // NFS is request/response: Nagle plus delayed ACKs would stall each RPC.
    client.setNoDelay(true);
    backend.setNoDelay(true);
    const calls = new RecordScanner((xid, type) => {
      if (type !== MSG_CALL) return;
      this.owed.set(xid, (this.owed.get(xid) ?? 0) + 1);
      this.owedCount++;
      this.forwardedCalls++;
    });
    const replies = new RecordScanner((xid, type) => {
      if (type !== MSG_REPLY) return;
      const n = this.owed.get(xid);
      if (!n) return;
      if (n > 1) this.owed.set(xid, n - 1);
      else this.owed.delete(xid);
      this.owedCount--;
      this.checkDrained();
    });

    client.on('error', () => undefined);
    backend.on('error', () => undefined);
    backend.on('connect', () => { if (!this.stopReason) client.resume(); });
    client.on('data', (chunk: Buffer) => {
      if (this.stopReason) return;
      if (!this.hooks.mayForward(this)) {
        // The gate stopped serving (lease, revoke, fence) and is stopping us:
        // this chunk must not reach the server.
        if (!this.stopReason) this.stop('not serving');
        return;
      }
      calls.push(chunk);
      if (!backend.write(chunk)) {
        client.pause();
        backend.once('drain', () => { if (!this.stopReason) client.resume(); });
      }
    });
    backend.on('data', (chunk: Buffer) => {
      replies.push(chunk);
      if (this.stopReason || this.clientGone) return;
      if (!client.write(chunk)) {
        backend.pause();
        client.once('drain', () => backend.resume());
      }
    });
    backend.on('drain', () => this.checkDrained());
    client.on('close', () => {
      this.clientGone = true;
      // The client hung up: nothing more to forward, but its calls may still
      // be executing; the release waits for them like a revoke does.
      this.stop('client closed');
      this.checkClosed();
    });
    backend.on('close', () => {
      this.backendGone = true;
      if (this.owedCount > 0 && !this.fencedOff) this.lostCalls += this.owedCount;
      this.owed.clear();
      this.owedCount = 0;
      if (!this.stopReason) this.stop('NFS server closed the connection');
      client.destroy();
      this.checkDrained();
      this.checkClosed();
    });
    client.pause();
  }

  get stopped(): boolean {
    return this.stopReason !== undefined;
  }

  get why(): StopReason | undefined {
    return this.stopReason;
  }

  /** Calls forwarded without a reply, counting those whose fate a closed connection hid. */
  get inFlight(): number {
    return this.owedCount + this.lostCalls;
  }

  /** Bytes handed to the server's socket that have not left this process yet. */
  get unsentBytes(): number {
    return this.backendGone ? 0 : this.backend.writableLength;
  }

  get drained(): boolean {
    return this.isDrained;
  }

  /** Stops forwarding at once: the client is cut off, replies still owed are collected. */
  stop(why: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = why;
    this.client.destroy();
    // Replies must keep coming even if the client was slow to read them.
    if (!this.backendGone) this.backend.resume();
    this.hooks.stopped(this);
    this.checkDrained();
  }

  /**
   * A fence of the NFS server that started after this connection was opened
   * completed: the process behind it is gone, so no call it was sent can
   * execute any more.
   */
  fenced(): void {
    this.fencedOff = true;
    this.lostCalls = 0;
    this.owed.clear();
    this.owedCount = 0;
    this.stop('NFS server fenced');
    this.backend.resetAndDestroy();
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.isDrained || !this.stopReason) return;
    if (this.inFlight > 0 || this.unsentBytes > 0) return;
    this.isDrained = true;
    // A trailing partial call record, never completed, dies with the connection.
    if (!this.backendGone) this.backend.destroy();
    this.hooks.drained(this);
  }

  private checkClosed(): void {
    if (this.clientGone && this.backendGone) this.hooks.closed(this);
  }
}
