import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TlsSettings } from '../common/tls';
import type { Clock, TimerHandle } from '../common/clock';
import { Backoff } from '../common/backoff';
import { deadlineIn } from '../common/grpc-client';
import { MasterEndpoints, masterClient } from '../common/master-endpoints';
import type { Logger } from '../common/log';
import type { Token } from '../common/token';
import { nfshaGrpc, type SessionMasterClient } from '../common/proto';
import { StreamLoop } from '../common/stream-loop';
import type { FollowerMessage } from '../gen/nfsha/v1/FollowerMessage';
import type { MasterMessage__Output } from '../gen/nfsha/v1/MasterMessage';
import type { Revoke__Output } from '../gen/nfsha/v1/Revoke';
import type { LoginReply__Output } from '../gen/nfsha/v1/LoginReply';
import type { OwnedClient } from '../gen/nfsha/v1/OwnedClient';
import type { Lease } from './lease';
import type { NfsHealth } from '../gen/nfsha/v1/NfsHealth';
import type { Fencing } from '../gen/nfsha/v1/Fencing';

/**
 * Keepalive intervals without an ack after which the stream counts as stuck.
 * 3: one late ack (a GC pause, a busy leader) is no reason to move.
 */
const ACK_SILENCE_INTERVALS = 3;
/**
 * Longest wait between tries to reach a master. Short: after a leader dies
 * the followers must find its successor before their leases end (README,
 * "Leader election and failover"); one try per follower per 500 ms is cheap.
 */
const RECONNECT_MAX_MS = 500;

/** The session protocol this follower speaks (master.proto SessionProtocol). */
export const FOLLOWER_PROTOCOL = 3;

export interface ServerIdentity {
  serverId: string;
  hostId: string;
  storageIp: string;
  mgmtIp: string;
}

export interface MasterSessionEvents {
  /** A session was granted (new or resumed). */
  granted: [info: { sessionId: string; epoch: number; resumed: boolean; predecessorUnproven?: boolean }];
  /** A new session replaced any earlier one: only `adopted` of the claimed clients are still ours. */
  replaced: [info: { sessionId: string; epoch: number; adopted: string[] }];
  revoke: [revoke: Revoke__Output];
  /** The master ended the session (expired, condemned): its clients are no longer ours. */
  sessionGone: [reason: string];
  /** An operator confirmed our NFS server stopped (ConfirmFence). */
  fenceConfirmed: [info: { operator: string; reason: string }];
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
  /** Clients with calls in flight here but no grant, reported in the introduction. */
  clientsInFlight?: () => string[];
  /** An NFS layer left with calls unknown and no fence ran since. */
  nfsUnaccounted?: () => boolean;
  /** Highest epoch seen, reported in the introduction. */
  highestEpoch: () => number;
  /** The NFS service's health now, reported in the introduction and every keepalive. */
  nfsHealth?: () => NfsHealth;
  /** This follower process fenced its NFS server when it started. */
  nfsFencedAtStart?: () => boolean;
  /** Whether this server can fence its NFS server now, reported in the introduction and every keepalive. */
  fencing?: () => { fencing: Fencing; detail: string };
  /** Whether the follower is stopping gracefully (Keepalive.leaving). */
  leaving?: () => boolean;
  /** mTLS towards the masters (a follower certificate), or plain text on loopback. */
  tls: TlsSettings;
  /** How to reach a master candidate (grpc-js by default; the simulation injects its own). */
  connect?: (address: string) => SessionMasterClient;
  /** Randomness for the reconnect backoff's jitter. */
  random?: () => number;
}

/**
 * How long a master candidate may take to answer an introduction. A leader
 * answers in milliseconds (its grace delays logins, not introductions); one
 * that does not is frozen or cut off, and a follower redirected to it by a
 * candidate that has not noticed yet must move on while its lease runs.
 */
const GRANT_TIMEOUT_MS = 700;

type SessionStream = grpc.ClientDuplexStream<FollowerMessage, MasterMessage__Output>;

/**
 * The follower's keepalive stream to the master: introduce, keep alive, relay
 * revokes, and reopen the stream with capped, jittered backoff when it breaks.
 */
export class MasterSession extends EventEmitter<MasterSessionEvents> {
  readonly endpoints: MasterEndpoints<SessionMasterClient>;
  private readonly loop: StreamLoop<SessionStream, MasterMessage__Output>;
  private sessionId = '';
  private epoch = 0;
  private masterProtocol = 0;
  private slackMs = 0;
  private seq = 0;
  private introSentAt = 0;
  /** An introduction is out and not yet answered: a login reply now belongs to no session the next master knows. */
  private introducing = false;
  private keepaliveTimer?: TimerHandle;
  private tickNow?: () => void;
  private everGranted = false;
  /** Clock time of the last keepalive ack or grant. */
  private lastAckAt = 0;

  constructor(private readonly opts: MasterSessionOptions) {
    super();
    const Client = nfshaGrpc().SessionMaster;
    this.endpoints = new MasterEndpoints(opts.masters, opts.tls, opts.connect ?? ((address) => masterClient<SessionMasterClient>(Client, address, opts.tls)));
    this.loop = new StreamLoop<SessionStream, MasterMessage__Output>({
      clock: opts.clock,
      backoff: new Backoff(100, RECONNECT_MAX_MS, opts.random),
      firstAnswerMs: GRANT_TIMEOUT_MS,
      open: () => this.introduce(),
      failed: (err) => this.endpoints.failed(err),
      data: (stream, msg) => this.onMessage(stream, msg),
      closed: (err, granted, retryMs) => this.onClosed(err, granted, retryMs),
    });
  }

  /** The master's wait-out slack past the TTL (0 until a protocol-2 master granted a session). */
  get waitOutSlackMs(): number {
    return this.slackMs;
  }

  get currentSessionId(): string {
    return this.sessionId;
  }

  /**
   * The lease ended (fenced): this session cannot be resumed, and the next
   * introduction must not speak for it. A new leader lets a resuming
   * follower end its grace early, as one that lists everything it may still
   * serve; a fenced follower lists nothing while its NFS layers may still be
   * fencing what they had in flight (simulation seed 784).
   */
  forgetSession(): void {
    this.sessionId = '';
  }

  /** True between sending an introduction and its answer. */
  get isIntroducing(): boolean {
    return this.introducing;
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.stopKeepalives();
    this.loop.stop();
    this.endpoints.close();
  }

  private stopKeepalives(): void {
    if (this.keepaliveTimer) this.opts.clock.clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  private introduce(): SessionStream {
    const stream = this.endpoints.client().Session() as SessionStream;
    this.introSentAt = this.opts.clock.now();
    this.introducing = true;
    stream.write({
      introduction: {
        ...this.opts.identity,
        clients: this.opts.ownedClients(),
        clientsInFlight: this.opts.clientsInFlight?.() ?? [],
        nfsUnaccounted: this.opts.nfsUnaccounted?.() ?? false,
        highestEpoch: this.opts.highestEpoch(),
        resumeSessionId: this.sessionId,
        protocol: FOLLOWER_PROTOCOL,
        nfs: this.opts.nfsHealth?.() ?? 'NFS_HEALTH_UNSPECIFIED',
        // Only until this process's first session: it speaks of what came before.
        nfsFencedAtStart: !this.everGranted && (this.opts.nfsFencedAtStart?.() ?? false),
        ...this.fencingFields(),
      },
    });
    return stream;
  }

  private onMessage(stream: SessionStream, msg: MasterMessage__Output): void {
    const { lease, log } = this.opts;
    switch (msg.kind) {
      case 'granted': {
        const g = msg.granted!;
        this.introducing = false;
        this.everGranted = true;
        const resumed = g.resumed && g.sessionId === this.sessionId;
        if (!resumed) this.emit('replaced', { sessionId: g.sessionId, epoch: g.epoch, adopted: g.adoptedClients });
        this.sessionId = g.sessionId;
        this.epoch = g.epoch;
        this.masterProtocol = g.protocol;
        this.slackMs = g.waitOutSlackMs;
        if (!lease.start(this.introSentAt, g.ttlMs)) {
          log.warn({ ev: 'session.grant.late', session: g.sessionId }, 'grant arrived after its lease would end; reconnecting');
          stream.cancel();
          return;
        }
        log.info({ ev: resumed ? 'session.resumed' : 'session.opened', session: g.sessionId, epoch: g.epoch, ttl_ms: g.ttlMs }, 'session with master');
        this.emit('granted', { sessionId: g.sessionId, epoch: g.epoch, resumed, predecessorUnproven: g.predecessorUnproven === true });
        this.lastAckAt = this.opts.clock.now();
        this.scheduleKeepalive(stream, g.keepaliveIntervalMs || 500);
        break;
      }
      case 'keepaliveAck':
        this.lastAckAt = this.opts.clock.now();
        lease.acked(msg.keepaliveAck!.seq, msg.keepaliveAck!.ttlMs);
        break;
      case 'revoke':
        this.emit('revoke', msg.revoke!);
        break;
      case 'fenceConfirmed':
        this.emit('fenceConfirmed', { operator: msg.fenceConfirmed!.operator, reason: msg.fenceConfirmed!.reason });
        break;
    }
  }

  private onClosed(err: grpc.ServiceError | undefined, granted: boolean, retryMs: number): void {
    this.introducing = false;
    this.stopKeepalives();
    const code = err?.code;
    if (code === grpc.status.NOT_FOUND || code === grpc.status.ABORTED) {
      // The master says this session is over: it will not renew it again.
      const reason = err?.details ?? 'session ended by master';
      if (this.sessionId) this.emit('sessionGone', reason);
      this.sessionId = '';
    }
    this.opts.log[granted ? 'info' : 'debug']({ ev: 'session.stream.closed', code, why: err?.details ?? 'stream ended', granted, retry_ms: retryMs, next_master: this.endpoints.current }, 'keepalive stream closed');
  }

  private scheduleKeepalive(stream: SessionStream, intervalMs: number): void {
    const { clock, lease } = this.opts;
    this.stopKeepalives();
    const tick = () => {
      if (this.loop.current !== stream) return;
      // A stream without acks for a few intervals is stuck: the leader is
      // frozen, partitioned or gone without a reset. Start over (the next
      // candidate may lead by now) while the lease still runs, so a new
      // leader can renew it before it ends: the lease, not the stream, is
      // what lets us serve, and it is only ever extended by acks.
      if (!lease.isLive() || clock.now() - this.lastAckAt > ACK_SILENCE_INTERVALS * intervalMs) {
        this.opts.log.info({ ev: 'session.stream.silent', silent_ms: Math.round(clock.now() - this.lastAckAt), lease_ms: Math.round(lease.remainingMs()) }, 'no keepalive acks: trying the master candidates again');
        this.loop.abandon(lease.isLive() ? 'no keepalive acks' : 'no keepalive acks for a whole TTL');
        return;
      }
      this.seq += 1;
      lease.sent(this.seq);
      stream.write({ keepalive: { seq: this.seq, nfs: this.opts.nfsHealth?.() ?? 'NFS_HEALTH_UNSPECIFIED', ...this.fencingFields(), leaving: this.opts.leaving?.() ?? false, nfsUnaccounted: this.opts.nfsUnaccounted?.() ?? false } });
      this.keepaliveTimer = clock.setTimeout(tick, intervalMs);
    };
    this.tickNow = () => {
      this.stopKeepalives();
      tick();
    };
    this.keepaliveTimer = clock.setTimeout(tick, 0);
  }

  /** Whether a granted session's stream is open now (a master to tell things to). */
  get streaming(): boolean {
    return this.loop.current !== undefined && this.sessionId !== '';
  }

  /** Sends a keepalive now (news the master should not wait an interval for), then on the usual period. */
  keepaliveNow(): void {
    this.tickNow?.();
  }

  private fencingFields(): { fencing: Fencing; fencingDetail: string } {
    const f = this.opts.fencing?.() ?? { fencing: 'FENCING_NONE' as const, detail: 'not reported' };
    return { fencing: f.fencing, fencingDetail: f.detail };
  }

  sendRevokeAck(revokeId: string): void {
    this.loop.current?.write({ revokeAck: { revokeId } });
  }

  /**
   * Tells the master a revoke is draining, so it keeps waiting instead of
   * condemning the session; only to masters that know the message.
   */
  sendRevokeProgress(revokeId: string, callsLeft: number): boolean {
    const stream = this.loop.current;
    if (this.masterProtocol < 1 || !stream) return false;
    stream.write({ revokeProgress: { revokeId, callsLeft } });
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

  /** Releases `token`'s grant of the client (the master keeps a newer one). */
  logout(clientId: string, token: Token | undefined, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.endpoints.client().Logout({ sessionId: this.sessionId, clientId, token }, { deadline: deadlineIn(timeoutMs) }, (err, reply) =>
        err ? reject(err) : resolve(reply!.released),
      );
    });
  }
}
