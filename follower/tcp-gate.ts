import * as fs from 'node:fs';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { monotonicMs, systemClock, type Clock } from '../common/clock';
import { FenceCommand } from '../common/fence-command';
import { DEFAULT_FOLLOWER_OPTIONS } from './options';
import { CLIENT_CHANNEL_OPTIONS } from '../common/grpc-client';
import { createLogger, type Logger } from '../common/log';
import { nfshaGrpc, type GateClient } from '../common/proto';
import { channelCredentials, channelOptions, loadOwnIdentity, type TlsSettings } from '../common/tls';
import { GateConnection } from './gate-connection';
import { DEFAULT_GATE_TIMING, GateCore, type AdmitGrant, type GateEventBody, type GateTiming } from './gate-core';
import { GateLink } from './gate-link';
import { stopGateGracefully, type GracefulStopOutcome } from './gate-stop';

export type { GateEvent } from './gate-core';

/** The gate trusts only the follower of its own server: the one its certificate names. */
function gateChannelCredentials(tls: TlsSettings, follower: string): grpc.ChannelCredentials {
  if (tls.insecure) return channelCredentials(tls, follower, () => true, '');
  const own = loadOwnIdentity(tls.dir, ['gate']);
  return channelCredentials(tls, follower, (who) => who.role === 'follower' && who.id === own.id, `follower/${own.id}`);
}

export interface TcpGateOptions extends Partial<GateTiming> {
  /** A name for logs and the event log, e.g. the server id. */
  name: string;
  /** The follower's gate API address (`unix:/path` or `host:port`). */
  follower: string;
  /** Listen address and port pairs mapped to NFS server backends. */
  routes: Array<{ listenHost: string; listenPort: number; backendHost: string; backendPort: number }>;
  /** Append admit/drop/drained/fence events here as JSON lines (for the single-service checker). */
  eventLog?: string;
  /** Deadline for one Admit call. Default 15000 ms. */
  admitTimeoutMs?: number;
  /** argv that fences the local NFS server (returns once its process is gone); empty: none. */
  fenceCommand?: string[];
  /** Longest a fence command may run. Default: the follower's (1000 ms). */
  fenceTimeoutMs?: number;
  /** On stop, wait this long at most for the calls already forwarded to get their replies. Default 1500 ms (the revoke drain timeout's default). */
  stopDrainTimeoutMs?: number;
  /** mTLS to the follower with a gate certificate for its server id, or plain text on loopback. */
  tls: TlsSettings;
}

/**
 * The follower's built-in NFS layer: a TCP gate in front of an unmodified NFS
 * server. The logic (what may be served, drains, fences) is GateCore; this
 * class is its I/O: listening sockets, connections to the NFS server, and the
 * Gate API of the follower (command stream, admits, acks, reports).
 */
export class TcpGate {
  private readonly client: GateClient;
  private readonly link: GateLink;
  readonly core: GateCore;
  private readonly servers: net.Server[] = [];
  private readonly eventFd?: number;
  readonly log: Logger;

  /** `client`: the follower's Gate API, injected by tests; production dials `opts.follower`. */
  constructor(private readonly opts: TcpGateOptions, log?: Logger, private readonly clock: Clock = systemClock, client?: GateClient) {
    this.log = log ?? createLogger('gate', { gate: opts.name });
    // The follower is local: its lease deadline, not HTTP/2 pings, is what stops
    // us when it freezes, so pings are slow here.
    this.client = client ?? new (nfshaGrpc().Gate)(opts.follower, gateChannelCredentials(opts.tls, opts.follower), channelOptions(opts.tls, {
      ...CLIENT_CHANNEL_OPTIONS,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // A restarted follower must be found at once: the gate admits nothing until then.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    })) as unknown as GateClient;
    if (opts.eventLog) this.eventFd = fs.openSync(opts.eventLog, 'a');
    const fence = new FenceCommand({ argv: opts.fenceCommand ?? [], timeoutMs: opts.fenceTimeoutMs ?? DEFAULT_FOLLOWER_OPTIONS.fenceTimeoutMs, clock, log: this.log, what: 'nfs' });
    this.link = new GateLink({ name: opts.name, client: this.client, clock, log: this.log, admitTimeoutMs: opts.admitTimeoutMs });
    this.core = new GateCore({
      ...DEFAULT_GATE_TIMING,
      ...Object.fromEntries(Object.entries({ stopLeadMs: opts.stopLeadMs, fenceLeadMs: opts.fenceLeadMs, revokeDrainTimeoutMs: opts.revokeDrainTimeoutMs }).filter(([, v]) => v !== undefined)),
      name: opts.name,
      clock,
      log: this.log,
      link: this.link,
      fence,
      record: (e) => this.record(e),
    });
  }

  private record(e: GateEventBody): void {
    if (this.eventFd === undefined) return;
    // The event log is read by checkers on this machine: CLOCK_MONOTONIC, whatever clock drives the logic.
    fs.writeSync(this.eventFd, JSON.stringify({ t: monotonicMs(), gate: this.opts.name, ...e }) + '\n');
  }

  private async onConnection(socket: net.Socket, backendHost: string, backendPort: number): Promise<void> {
    socket.pause();
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? '';
    let grant: AdmitGrant | undefined;
    try {
      grant = await this.core.admit(address);
    } catch (err) {
      this.log.info({ ev: 'gate.refused', address, err: (err as grpc.ServiceError).details ?? String(err) }, 'connection refused');
    }
    if (!grant || socket.destroyed) {
      if (!grant) this.log.debug({ ev: 'gate.refused', address, why: 'not serving' }, 'connection refused');
      socket.destroy();
      return;
    }
    const core = this.core;
    const conn = new GateConnection(socket, backendHost, backendPort, grant.clientId, {
      mayForward: (c) => core.mayForward(c),
      stopped: (c) => core.connStopped(c),
      drained: (c) => core.connDrained(c),
      closed: (c) => core.connClosed(c),
    }, this.clock.now());
    if (!core.attach(conn, grant)) conn.stop('revoked or not serving when admitted');
  }

  async start(): Promise<number[]> {
    // A new process: whatever an earlier one of this gate logged is over.
    this.record({ ev: 'start' });
    this.link.start(this.core);
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
    this.log.info({ ev: 'gate.started', ports, follower: this.opts.follower, fence: this.opts.fenceCommand ?? [] }, 'gate listening');
    if (!this.opts.fenceCommand?.length) {
      this.log.warn({ ev: 'gate.no_fence' }, 'running without a fence command: a revoked client whose calls do not drain is held, never acked, until they drain or an operator confirms a fence (nfsha fence-confirm)');
    }
    return ports;
  }

  async stop(): Promise<GracefulStopOutcome> {
    const outcome = await stopGateGracefully(this.core, this.link, { drainTimeoutMs: this.opts.stopDrainTimeoutMs ?? DEFAULT_GATE_TIMING.revokeDrainTimeoutMs, clock: this.clock, log: this.log });
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    this.client.close();
    if (this.eventFd !== undefined) fs.closeSync(this.eventFd);
    return outcome;
  }
}
