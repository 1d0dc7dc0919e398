import * as fs from 'node:fs';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { monotonicMs } from '../common/clock';
import { Backoff } from '../common/backoff';
import { CLIENT_CHANNEL_OPTIONS, deadlineIn } from '../common/grpc-server';
import { createLogger, type Logger } from '../common/log';
import { nfshaGrpc, type GateClient } from '../common/proto';
import { compareTokens, type Token } from '../common/token';
import type { GateCommand__Output } from '../gen/nfsha/v1/GateCommand';
import { channelCredentials, channelOptions, loadOwnIdentity, type TlsSettings } from '../common/tls';

/** The gate trusts only the follower of its own server: the one its certificate names. */
function gateChannelCredentials(tls: TlsSettings, follower: string): grpc.ChannelCredentials {
  if (tls.insecure) return channelCredentials(tls, follower, () => true, '');
  const own = loadOwnIdentity(tls.dir, ['gate']);
  return channelCredentials(tls, follower, (who) => who.role === 'follower' && who.id === own.id, `follower/${own.id}`);
}

export interface TcpGateOptions {
  /** A name for logs and the event log, e.g. the server id. */
  name: string;
  /** The follower's gate API address (`unix:/path` or `host:port`). */
  follower: string;
  /** Listen address and port pairs mapped to NFS server backends. */
  routes: Array<{ listenHost: string; listenPort: number; backendHost: string; backendPort: number }>;
  /** Append admit/drop events here as JSON lines (for the single-admission checker). */
  eventLog?: string;
  /** Deadline for one Admit call. Default 15000 ms. */
  admitTimeoutMs?: number;
  /** mTLS to the follower with a gate certificate for its server id, or plain text on loopback. */
  tls: TlsSettings;
}

interface ClientState {
  token: Token;
  conns: Set<net.Socket>;
}

type GateEventBody =
  | { ev: 'admit'; client: string; token: string }
  | { ev: 'drop'; client: string; why: string };

/** One line of a gate's event log; `t` is CLOCK_MONOTONIC ms, comparable across processes. */
export type GateEvent = GateEventBody & { t: number; gate: string };

/**
 * The follower's built-in NFS layer: a TCP gate in front of an unmodified NFS
 * server. A connection is forwarded only after its client was admitted; on a
 * revoke, a fence, the lease deadline or the loss of the gate stream, every
 * connection of the affected clients is destroyed before anything else.
 * Each forwarded chunk is checked against the lease deadline, because after a
 * freeze Node may handle socket I/O before the timer that would have fenced.
 */
function waitForReady(): grpc.Metadata {
  return new grpc.Metadata({ waitForReady: true });
}

export class TcpGate {
  private readonly client: GateClient;
  private readonly clients = new Map<string, ClientState>();
  /** Admits in flight per source address, and the client each address last resolved to. */
  private readonly pendingByAddress = new Map<string, number>();
  private readonly clientOfAddress = new Map<string, string>();
  private readonly revokedUpTo = new Map<string, Token>();
  private readonly servers: net.Server[] = [];
  private leaseDeadline = 0;
  private leaseTimer?: NodeJS.Timeout;
  private watch?: grpc.ClientReadableStream<GateCommand__Output>;
  private readonly backoff = new Backoff(100, 1000);
  private stopped = false;
  private readonly eventFd?: number;
  readonly log: Logger;

  constructor(private readonly opts: TcpGateOptions, log?: Logger) {
    this.log = log ?? createLogger('gate', { gate: opts.name });
    // The follower is local: its lease deadline, not HTTP/2 pings, is what stops
    // us when it freezes, so pings are slow here.
    this.client = new (nfshaGrpc().Gate)(opts.follower, gateChannelCredentials(opts.tls, opts.follower), channelOptions(opts.tls, {
      ...CLIENT_CHANNEL_OPTIONS,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    })) as unknown as GateClient;
    if (opts.eventLog) this.eventFd = fs.openSync(opts.eventLog, 'a');
  }

  private record(e: GateEventBody): void {
    const line = JSON.stringify({ t: monotonicMs(), gate: this.opts.name, ...e });
    if (this.eventFd !== undefined) fs.writeSync(this.eventFd, line + '\n');
  }

  private leaseValid(): boolean {
    return monotonicMs() < this.leaseDeadline;
  }

  private renewLease(remainingMs: number): void {
    const deadline = monotonicMs() + remainingMs;
    if (deadline <= this.leaseDeadline) return;
    this.leaseDeadline = deadline;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => this.checkLease(), remainingMs + 1);
  }

  private checkLease(): void {
    if (this.leaseValid()) {
      this.leaseTimer = setTimeout(() => this.checkLease(), this.leaseDeadline - monotonicMs() + 1);
      return;
    }
    this.leaseTimer = undefined;
    if (this.clients.size) this.dropAll('lease deadline passed without renewal');
  }

  dropAll(why: string): void {
    const n = this.clients.size;
    for (const clientId of [...this.clients.keys()]) this.drop(clientId, why);
    if (n) this.log.warn({ ev: 'gate.drop_all', why, clients: n }, 'dropped every client');
  }

  private drop(clientId: string, why: string): void {
    const c = this.clients.get(clientId);
    if (!c) return;
    this.clients.delete(clientId);
    for (const s of c.conns) s.destroy();
    this.record({ ev: 'drop', client: clientId, why });
  }

  private onCommand(cmd: GateCommand__Output): void {
    switch (cmd.kind) {
      case 'lease':
        this.renewLease(cmd.lease!.remainingMs);
        break;
      case 'fence':
        this.leaseDeadline = 0;
        this.dropAll(`fenced: ${cmd.fence!.reason}`);
        break;
      case 'revoke': {
        const r = cmd.revoke!;
        const token = { epoch: r.epoch, sequence: r.sequence };
        const prev = this.revokedUpTo.get(r.clientId);
        if (!prev || compareTokens(token, prev) > 0) this.revokedUpTo.set(r.clientId, token);
        this.drop(r.clientId, `revoked: ${r.reason}`);
        this.client.AckRevoke({ revokeId: r.revokeId }, { deadline: deadlineIn(5000) }, (err) => {
          if (err) this.log.warn({ ev: 'revoke.ack.failed', revoke: r.revokeId, err: err.message }, 'ack failed');
        });
        this.log.info({ ev: 'gate.revoked', client: r.clientId, why: r.reason }, 'client revoked');
        break;
      }
    }
  }

  private openWatch(): void {
    if (this.stopped) return;
    // waitForReady: the follower may start after us; wait for its socket rather than fail.
    const call = this.client.WatchRevokes({ watcher: this.opts.name }, waitForReady());
    this.watch = call;
    call.on('data', (cmd: GateCommand__Output) => {
      this.backoff.reset();
      this.onCommand(cmd);
    });
    const ended = (why: string) => {
      if (this.watch !== call) return;
      this.watch = undefined;
      // DESIGN §4: without the gate stream nobody can revoke us; stop serving.
      this.leaseDeadline = 0;
      this.dropAll(`gate stream ended: ${why}`);
      if (!this.stopped) setTimeout(() => this.openWatch(), this.backoff.next());
    };
    call.on('error', (e: grpc.ServiceError) => ended(e.details ?? e.message));
    call.on('end', () => ended('follower closed the stream'));
  }

  private admit(address: string): Promise<{ clientId: string; token: Token; leaseRemainingMs: number }> {
    return new Promise((resolve, reject) => {
      this.client.Admit({ clientAddress: address }, waitForReady(), { deadline: deadlineIn(this.opts.admitTimeoutMs ?? 15_000) }, (err, r) =>
        err ? reject(err) : resolve({ clientId: r!.clientId, token: { epoch: r!.epoch, sequence: r!.sequence }, leaseRemainingMs: r!.leaseRemainingMs }),
      );
    });
  }

  private async onConnection(socket: net.Socket, backendHost: string, backendPort: number): Promise<void> {
    socket.pause();
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? '';
    let admitted;
    this.pendingByAddress.set(address, (this.pendingByAddress.get(address) ?? 0) + 1);
    try {
      admitted = await this.admit(address);
    } catch (err) {
      this.log.info({ ev: 'gate.refused', address, err: (err as grpc.ServiceError).details ?? String(err) }, 'connection refused');
      socket.destroy();
      return;
    } finally {
      const n = (this.pendingByAddress.get(address) ?? 1) - 1;
      if (n > 0) this.pendingByAddress.set(address, n);
      else this.pendingByAddress.delete(address);
    }
    const { clientId, token } = admitted;
    this.clientOfAddress.set(address, clientId);
    const revoked = this.revokedUpTo.get(clientId);
    if (socket.destroyed || (revoked && compareTokens(token, revoked) <= 0)) {
      socket.destroy();
      return;
    }
    this.renewLease(admitted.leaseRemainingMs);
    if (!this.leaseValid()) {
      socket.destroy();
      return;
    }
    let state = this.clients.get(clientId);
    if (!state) {
      state = { token, conns: new Set() };
      this.clients.set(clientId, state);
      this.record({ ev: 'admit', client: clientId, token: `${token.epoch}.${token.sequence}` });
    }
    state.conns.add(socket);
    this.pipe(socket, clientId, backendHost, backendPort);
  }

  private pipe(socket: net.Socket, clientId: string, backendHost: string, backendPort: number): void {
    const backend = net.connect({ host: backendHost, port: backendPort });
    // NFS is request/response: Nagle plus delayed ACKs would stall each RPC.
    socket.setNoDelay(true);
    backend.setNoDelay(true);
    backend.on('error', () => socket.destroy());
    socket.on('close', () => {
      backend.destroy();
      this.connectionClosed(socket, clientId);
    });
    backend.on('close', () => socket.destroy());
    backend.on('connect', () => socket.resume());
    socket.on('data', (chunk) => {
      if (!this.leaseValid()) {
        this.dropAll('lease deadline passed (checked on data)');
        return;
      }
      if (!backend.write(chunk)) {
        socket.pause();
        backend.once('drain', () => socket.resume());
      }
    });
    backend.on('data', (chunk) => {
      if (!this.leaseValid()) {
        this.dropAll('lease deadline passed (checked on data)');
        return;
      }
      if (!socket.write(chunk)) {
        backend.pause();
        socket.once('drain', () => backend.resume());
      }
    });
  }

  private connectionClosed(socket: net.Socket, clientId: string): void {
    const state = this.clients.get(clientId);
    if (!state || !state.conns.delete(socket) || state.conns.size > 0) return;
    this.clients.delete(clientId);
    this.record({ ev: 'drop', client: clientId, why: 'last connection closed' });
    // An admit still in flight for this client may return its current grant:
    // releasing now would let the master hand the client away under it.
    for (const [address, n] of this.pendingByAddress) {
      if (n > 0 && this.clientOfAddress.get(address) === clientId) return;
    }
    this.client.Release({ clientId }, { deadline: deadlineIn(5000) }, (err) => {
      if (err) this.log.warn({ ev: 'gate.release.failed', client: clientId, err: err.message }, 'release failed');
    });
  }

  async start(): Promise<number[]> {
    this.openWatch();
    const ports: number[] = [];
    for (const r of this.opts.routes) {
      const server = net.createServer((s) => void this.onConnection(s, r.backendHost, r.backendPort));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(r.listenPort, r.listenHost, () => resolve());
      });
      ports.push((server.address() as net.AddressInfo).port);
      this.servers.push(server);
    }
    this.log.info({ ev: 'gate.started', ports, follower: this.opts.follower }, 'gate listening');
    return ports;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.cancel();
    this.dropAll('');
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    this.client.close();
    if (this.eventFd !== undefined) fs.closeSync(this.eventFd);
  }
}
