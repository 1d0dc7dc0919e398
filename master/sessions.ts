import { randomBytes } from 'node:crypto';
import type { Clock } from '../common/clock';
import { normalizeIp } from '../common/address';
import { AlreadyExists, NotFound, ResourceExhausted } from '../common/errors';
import { LIMIT } from './limits';
import { mutant } from '../common/mutants';
import type { NfsHealth } from '../gen/nfsha/v1/NfsHealth';
import type { Fencing } from '../gen/nfsha/v1/Fencing';

export enum SessionState {
  /** Keepalives arrive within the TTL. */
  Live = 'live',
  /** No keepalive within the TTL; never live again. */
  Expired = 'expired',
  /** The master stopped renewing it (a revoke went unanswered); never live again. */
  Condemned = 'condemned',
}

/** How the master reaches a session's follower: its keepalive stream. */
export interface SessionSink {
  sendRevoke(revoke: { revokeId: string; clientId: string; epoch: number; reason: string; token: { epoch: number; sequence: number } }): void;
  end(code: number, details: string, metadata?: import('@grpc/grpc-js').Metadata): void;
  /** Tells the follower an operator confirmed its NFS server stopped. */
  confirmFence?(operator: string, reason: string): void;
}

export interface Session {
  readonly id: string;
  readonly serverId: string;
  readonly hostId: string;
  readonly storageIp: string;
  readonly mgmtIp: string;
  /** Master-clock time the last renewing keepalive was received. */
  renewedAt: number;
  /** Master-clock time the session was opened. */
  readonly openedAt: number;
  condemned: boolean;
  sink?: SessionSink;
  /** Master-clock time its keepalive stream closed, while no new one is attached. */
  disconnectedAt?: number;
  /** The follower's NFS service health, from its last keepalive. */
  nfs: NfsHealth;
  /** The session protocol its follower speaks (0: before RevokeProgress). */
  protocol: number;
  /** The session its follower asked to resume when this one was opened instead. */
  readonly continues?: string;
  /** Its follower fenced the NFS server when it started (a new follower process). */
  readonly nfsFencedAtStart: boolean;
  /** Whether it can fence its NFS server, from its introduction and latest keepalive (UNSPECIFIED: an older follower, no). */
  fencing: Fencing;
  fencingDetail: string;
  /** Its follower is stopping gracefully (Keepalive.leaving): listed leaving while the session lives. */
  leaving?: boolean;
  /**
   * Introduced unaccounted (Readiness.unaccounted), and no keepalive since
   * said a fence made it whole; `speaksForAll` when that introduction
   * continued an earlier session (the follower process lived on).
   */
  unaccounted?: { speaksForAll: boolean };
}

export interface IntroductionFields {
  serverId: string;
  hostId: string;
  storageIp: string;
  mgmtIp: string;
  resumeSessionId: string;
  protocol?: number;
  nfs?: NfsHealth;
  nfsFencedAtStart?: boolean;
  fencing?: Fencing;
  fencingDetail?: string;
}

/** A server's latest word on its fence, and where it came from. */
export interface ServerFencing {
  /** The session that said it (none for an introduction that was refused). */
  sessionId?: string;
  /** For messages: "session …", or the refused introduction. */
  from: string;
  /** Master-clock time the session (or the refused introduction) began: later words win. */
  openedAt: number;
  fencing: Fencing;
  detail: string;
}

export interface SessionTiming {
  ttlMs: number;
  clockDriftBound: number;
  graceMarginMs: number;
}

/**
 * The master's sessions and their lease arithmetic. A session's lease counts
 * from when the master *received* a keepalive, so the master's view never
 * expires before the follower's (which counts from when it *sent* it).
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  /** Each server's latest fencing state and the session that reported it (kept after that session ends). */
  private readonly serverFencing = new Map<string, ServerFencing>();

  constructor(
    private readonly clock: Clock,
    readonly timing: SessionTiming,
    private readonly maxSessions = Infinity,
    /** Session ids: random, unless the simulation seeds them. */
    private readonly ids: () => string = () => randomBytes(8).toString('hex'),
  ) {}

  state(s: Session): SessionState {
    if (s.condemned) return SessionState.Condemned;
    return this.clock.now() < s.renewedAt + this.timing.ttlMs ? SessionState.Live : SessionState.Expired;
  }

  /**
   * The instant after which the follower has surely stopped serving: its own
   * lease ran out even if its clock runs slow by the drift bound.
   */
  /**
   * How much of the wait-out past the TTL a follower's fence may use, on
   * the follower's own clock (SessionGranted.wait_out_slack_ms). Not the
   * TTL × drift part: a follower whose clock runs slow by the whole drift
   * bound reaches its lease deadline just as that part runs out, so only
   * the margin is left, and on that slow clock it counts as margin ÷ (1 +
   * drift) (227 ms at defaults). Counting the drift part too (550 ms) let a
   * fence started at the fence point and within its timeout kill the NFS
   * server after the master had granted the client elsewhere.
   */
  get waitOutSlackMs(): number {
    if (mutant('fence-budget-counts-drift')) return Math.ceil(this.timing.ttlMs * this.timing.clockDriftBound) + this.timing.graceMarginMs;
    return Math.floor(this.timing.graceMarginMs / (1 + this.timing.clockDriftBound));
  }

  surelyExpiredAt(s: Session): number {
    return s.renewedAt + Math.ceil(this.timing.ttlMs * (1 + this.timing.clockDriftBound)) + this.timing.graceMarginMs;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  all(): Session[] {
    return [...this.sessions.values()];
  }

  /** Every session of `serverId` this master still knows, oldest first. */
  ofServer(serverId: string): Session[] {
    return this.all().filter((s) => s.serverId === serverId);
  }

  /** A session that may act now, or NOT_FOUND naming why not. */
  requireLive(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new NotFound(`unknown session ${JSON.stringify(id)}`);
    const st = this.state(s);
    if (st !== SessionState.Live) throw new NotFound(`session ${id} is ${st}`);
    return s;
  }

  liveSessionOf(serverId: string): Session | undefined {
    return this.all().find((s) => s.serverId === serverId && this.state(s) === SessionState.Live);
  }

  /**
   * Opens (or resumes) a session for an introduction. Refuses a second live
   * session for the same server id: two followers claiming one server would
   * both admit clients.
   */
  introduce(intro: IntroductionFields): { session: Session; resumed: boolean } {
    const live = this.liveSessionOf(intro.serverId);
    if (live && intro.resumeSessionId === live.id) {
      live.renewedAt = this.clock.now();
      live.protocol = intro.protocol ?? 0;
      if (intro.nfs) live.nfs = intro.nfs;
      this.setFencing(live, intro.fencing ?? 'FENCING_UNSPECIFIED', intro.fencingDetail ?? '');
      return { session: live, resumed: true };
    }
    if (live) {
      // Refused, but it is the server's latest word on its fence: a new
      // follower whose start fence failed, while its dead predecessor's
      // session is still being waited out (recipe seed 136 of
      // follower-and-gate-die-fence-broken).
      if (intro.fencing && !mutant('master-ignores-refused-introduction-fencing')) {
        this.noteServerFencing(intro.serverId, { from: 'an introduction refused while an earlier session lives', openedAt: this.clock.now(), fencing: intro.fencing, detail: intro.fencingDetail ?? '' });
      }
      throw new AlreadyExists(
        `server ${intro.serverId} already has live session ${live.id}; retry after it expires (≤ ${this.timing.ttlMs} ms)`,
      );
    }
    if (this.sessions.size >= this.maxSessions) {
      throw new ResourceExhausted(`the master holds ${this.sessions.size} sessions (limit ${this.maxSessions})`, LIMIT.sessions);
    }
    const session: Session = {
      id: this.ids(),
      serverId: intro.serverId,
      hostId: intro.hostId,
      storageIp: normalizeIp(intro.storageIp) ?? '',
      mgmtIp: normalizeIp(intro.mgmtIp) ?? '',
      renewedAt: this.clock.now(),
      openedAt: this.clock.now(),
      condemned: false,
      nfs: intro.nfs ?? 'NFS_HEALTH_UNSPECIFIED',
      protocol: intro.protocol ?? 0,
      continues: intro.resumeSessionId || undefined,
      nfsFencedAtStart: intro.nfsFencedAtStart === true,
      fencing: intro.fencing ?? 'FENCING_UNSPECIFIED',
      fencingDetail: intro.fencingDetail ?? '',
    };
    this.sessions.set(session.id, session);
    this.setFencing(session, session.fencing, session.fencingDetail);
    return { session, resumed: false };
  }

  /** Renews a live session; false when it is expired or condemned (it never renews again). */
  renew(s: Session): boolean {
    if (this.state(s) !== SessionState.Live) return false;
    s.renewedAt = this.clock.now();
    return true;
  }

  condemn(s: Session): void {
    s.condemned = true;
  }

  /**
   * The live session `s`'s own follower process continued in: it asked to
   * resume `s`, and did so before `s`'s lease could have run out, so it never
   * stopped holding a lease (no lapse in which a frozen NFS layer could have
   * been left behind). A restarted follower, or one back only after its lease
   * ran out, is no such evidence: what its previous self left in flight is
   * unknown.
   */
  successorOf(s: Session): Session | undefined {
    return this.all().find((o) => o.serverId === s.serverId && o.id !== s.id && o.continues === s.id
      && o.openedAt < s.renewedAt + this.timing.ttlMs && this.state(o) === SessionState.Live);
  }

  /**
   * A later session of the same server whose follower fenced the NFS server
   * when it started: everything `s`'s SCVM had forwarded is dead, and `s`'s
   * follower was replaced. As good as a confirmed fence of `s`.
   */
  replacedAfterFence(s: Session): Session | undefined {
    return this.all().find((o) => o.serverId === s.serverId && o.id !== s.id && o.nfsFencedAtStart && o.openedAt >= s.renewedAt);
  }

  /**
   * The latest fence failure a later session of `s`'s server reported,
   * unless a new follower's start fence already covered `s`. `s`'s NFS
   * layers may have died with calls in a hung NFS server, and with them the
   * follower that would fence for them: only a later fence of that server
   * proves those calls dead, and it failed (simulation seed 352024172). Kept
   * per server, past the reporting session's own end: a follower that died
   * again leaves the failure standing until one reports a working fence.
   */
  laterFenceFailed(s: Session): ServerFencing | undefined {
    if (mutant('master-waitout-ignores-later-fence-failure') || this.replacedAfterFence(s)) return undefined;
    const f = this.serverFencing.get(s.serverId);
    if (!f || f.fencing !== 'FENCING_FAILED' || f.sessionId === s.id || f.openedAt < s.renewedAt) return undefined;
    return f;
  }

  /** A session's fencing state, from its introduction or a keepalive; the server's latest is kept past the session. */
  setFencing(session: Session, fencing: Fencing, detail: string): void {
    session.fencing = fencing;
    session.fencingDetail = detail;
    this.noteServerFencing(session.serverId, { sessionId: session.id, from: `session ${session.id}`, openedAt: session.openedAt, fencing, detail });
  }

  private noteServerFencing(serverId: string, word: ServerFencing): void {
    const prev = this.serverFencing.get(serverId);
    // An older session's late word does not overrule a newer one's.
    if (prev && prev.openedAt > word.openedAt) return;
    this.serverFencing.set(serverId, word);
  }

  /** Removes sessions whose follower has surely stopped serving (and that `mayForget`); returns them. */
  sweep(mayForget: (s: Session) => boolean = () => true): Session[] {
    const now = this.clock.now();
    const gone = this.all().filter((s) => this.state(s) !== SessionState.Live && now >= this.surelyExpiredAt(s) && mayForget(s));
    for (const s of gone) this.sessions.delete(s.id);
    return gone;
  }
}
