import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TlsSettings } from '../common/tls';
import type { Clock, TimerHandle } from '../common/clock';
import { Backoff } from '../common/backoff';
import { deadlineIn } from '../common/grpc-server';
import { MasterEndpoints, masterClient } from '../common/master-endpoints';
import type { Logger } from '../common/log';
import { nfshaGrpc, type SessionMasterClient } from '../common/proto';
import type { FollowerMessage } from '../gen/nfsha/v1/FollowerMessage';
import type { MasterMessage__Output } from '../gen/nfsha/v1/MasterMessage';
import type { Revoke__Output } from '../gen/nfsha/v1/Revoke';
import type { LoginReply__Output } from '../gen/nfsha/v1/LoginReply';
import type { OwnedClient } from '../gen/nfsha/v1/OwnedClient';
import type { Lease } from './lease';
import type { NfsHealth } from '../gen/nfsha/v1/NfsHealth';

/** The session protocol this follower speaks (master.proto SessionProtocol). */
export const FOLLOWER_PROTOCOL = 1;

export interface ServerIdentity {
  serverId: string;
  hostId: string;
  storageIp: string;
  mgmtIp: string;
}

export interface MasterSessionEvents {
  /** A session was granted (new or resumed). */
  granted: [info: { sessionId: string; epoch: number; resumed: boolean }];
  /** A new session replaced any earlier one: only `adopted` of the claimed clients are still ours. */
  replaced: [info: { sessionId: string; epoch: number; adopted: string[] }];
  revoke: [revoke: Revoke__Output];
  /** The master ended the session (expired, condemned): its clients are no longer ours. */
  sessionGone: [reason: string];
}

export interface MasterSessionOptions {
  /** Master candidates; the session follows "not leader" redirects among them. */
  masters: string[];
  identity: ServerIdentity;
  clock: Clock;
  lease: Lease;
  log: Logger;
  /** Clients to report in the introduction. */
  ownedClients: () => OwnedClient[];
  /** Highest epoch seen, reported in the introduction. */
  highestEpoch: () => number;
  /** The NFS service's health now, reported in the introduction and every keepalive. */
  nfsHealth?: () => NfsHealth;
  /** mTLS towards the masters (a follower certificate), or plain text on loopback. */
  tls: TlsSettings;
}

/** How long a master candidate may take to answer an introduction. */
const GRANT_TIMEOUT_MS = 1500;

type SessionStream = grpc.ClientDuplexStream<FollowerMessage, MasterMessage__Output>;

/**
 * The follower's keepalive stream to the master: introduce, keep alive, relay
 * revokes, and reopen the stream with capped, jittered backoff when it breaks.
 */
export class MasterSession extends EventEmitter<MasterSessionEvents> {
  readonly endpoints: MasterEndpoints<SessionMasterClient>;
  private stream?: SessionStream;
  private sessionId = '';
  private epoch = 0;
  private masterProtocol = 0;
  private seq = 0;
  private keepaliveTimer?: TimerHandle;
  private reconnectTimer?: TimerHandle;
  private stopped = false;
  private readonly backoff = new Backoff(100, 2000);

  constructor(private readonly opts: MasterSessionOptions) {
    super();
    const Client = nfshaGrpc().SessionMaster;
    this.endpoints = new MasterEndpoints(opts.masters, opts.tls, (address) => masterClient<SessionMasterClient>(Client, address, opts.tls));
  }

  get currentSessionId(): string {
    return this.sessionId;
  }

  start(): void {
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.stream?.cancel();
    this.endpoints.close();
  }

  private clearTimers(): void {
    if (this.keepaliveTimer) this.opts.clock.clearTimeout(this.keepaliveTimer);
    if (this.reconnectTimer) this.opts.clock.clearTimeout(this.reconnectTimer);
    this.keepaliveTimer = this.reconnectTimer = undefined;
  }

  private open(): void {
    if (this.stopped) return;
    const { clock, identity, lease, log } = this.opts;
    const stream = this.endpoints.client().Session();
    this.stream = stream;
    const introSentAt = clock.now();
    let granted = false;
    // A candidate that accepts the connection but never answers (a frozen
    // master) must not hold us: without a grant soon, try the next one.
    const grantTimer = clock.setTimeout(() => {
      if (!granted && this.stream === stream) {
        stream.cancel();
        closed(Object.assign(new Error('no answer to the introduction'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'no answer to the introduction', metadata: new grpc.Metadata() }) as grpc.ServiceError);
      }
    }, GRANT_TIMEOUT_MS);
    stream.write({
      introduction: {
        ...identity,
        clients: this.opts.ownedClients(),
        highestEpoch: this.opts.highestEpoch(),
        resumeSessionId: this.sessionId,
        protocol: FOLLOWER_PROTOCOL,
        nfs: this.opts.nfsHealth?.() ?? 'NFS_HEALTH_UNSPECIFIED',
      },
    });
    stream.on('data', (msg: MasterMessage__Output) => {
      if (this.stream !== stream) return;
      switch (msg.kind) {
        case 'granted': {
          const g = msg.granted!;
          granted = true;
          clock.clearTimeout(grantTimer);
          this.backoff.reset();
          const resumed = g.resumed && g.sessionId === this.sessionId;
          if (!resumed) this.emit('replaced', { sessionId: g.sessionId, epoch: g.epoch, adopted: g.adoptedClients });
          this.sessionId = g.sessionId;
          this.epoch = g.epoch;
          this.masterProtocol = g.protocol;
          if (!lease.start(introSentAt, g.ttlMs)) {
            log.warn({ ev: 'session.grant.late', session: g.sessionId }, 'grant arrived after its lease would end; reconnecting');
            stream.cancel();
            return;
          }
          log.info({ ev: resumed ? 'session.resumed' : 'session.opened', session: g.sessionId, epoch: g.epoch, ttl_ms: g.ttlMs }, 'session with master');
          this.emit('granted', { sessionId: g.sessionId, epoch: g.epoch, resumed });
          this.scheduleKeepalive(g.keepaliveIntervalMs || 500);
          break;
        }
        case 'keepaliveAck':
          lease.acked(msg.keepaliveAck!.seq, msg.keepaliveAck!.ttlMs);
          break;
        case 'revoke':
          this.emit('revoke', msg.revoke!);
          break;
      }
    });
    const closed = (err?: grpc.ServiceError) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      clock.clearTimeout(grantTimer);
      if (this.keepaliveTimer) clock.clearTimeout(this.keepaliveTimer);
      this.keepaliveTimer = undefined;
      const code = err?.code;
      const switched = this.endpoints.failed(err);
      if (code === grpc.status.NOT_FOUND || code === grpc.status.ABORTED) {
        // The master says this session is over: it will not renew it again.
        const reason = err?.details ?? 'session ended by master';
        if (this.sessionId) this.emit('sessionGone', reason);
        this.sessionId = '';
      }
      if (this.stopped) return;
      const wait = switched === 'redirect' ? 20 : this.backoff.next();
      log[granted ? 'info' : 'debug']({ ev: 'session.stream.closed', code, why: err?.details ?? 'stream ended', granted, retry_ms: wait, next_master: this.endpoints.current }, 'keepalive stream closed');
      this.reconnectTimer = clock.setTimeout(() => this.open(), wait);
    };
    stream.on('error', (err: grpc.ServiceError) => closed(err));
    stream.on('end', () => closed());
  }

  private scheduleKeepalive(intervalMs: number): void {
    const { clock, lease } = this.opts;
    const tick = () => {
      const stream = this.stream;
      if (!stream) return;
      // A stream that delivers no acks for a whole TTL is stuck (blackholed):
      // the lease has fenced already; start over on a fresh stream.
      if (!lease.isLive()) {
        stream.cancel();
        return;
      }
      this.seq += 1;
      lease.sent(this.seq);
      stream.write({ keepalive: { seq: this.seq, nfs: this.opts.nfsHealth?.() ?? 'NFS_HEALTH_UNSPECIFIED' } });
      this.keepaliveTimer = clock.setTimeout(tick, intervalMs);
    };
    this.keepaliveTimer = clock.setTimeout(tick, 0);
  }

  sendRevokeAck(revokeId: string): void {
    this.stream?.write({ revokeAck: { revokeId } });
  }

  /**
   * Tells the master a revoke is draining, so it keeps waiting instead of
   * condemning the session; only to masters that know the message.
   */
  sendRevokeProgress(revokeId: string, callsLeft: number): boolean {
    if (this.masterProtocol < 1 || !this.stream) return false;
    this.stream.write({ revokeProgress: { revokeId, callsLeft } });
    return true;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  login(clientAddress: string, timeoutMs: number): Promise<LoginReply__Output> {
    return new Promise((resolve, reject) => {
      this.endpoints.client().Login({ sessionId: this.sessionId, clientAddress }, { deadline: deadlineIn(timeoutMs) }, (err, reply) =>
        err ? reject(err) : resolve(reply!),
      );
    });
  }

  logout(clientId: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.endpoints.client().Logout({ sessionId: this.sessionId, clientId }, { deadline: deadlineIn(timeoutMs) }, (err, reply) =>
        err ? reject(err) : resolve(reply!.released),
      );
    });
  }
}
