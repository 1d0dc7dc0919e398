import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import { KeyedMutex } from '../common/keyed-mutex';
import { NotFound, ResourceExhausted, Unavailable } from '../common/errors';
import type { Logger } from '../common/log';
import { compareTokens, formatToken, type Token } from '../common/token';
import type { HostRegistry } from './identity';
import { SessionState, type Session, type SessionTable } from './sessions';
import type { FencingTokens } from './tokens';
import { DEFAULT_MASTER_LIMITS, LIMIT, type MasterLimits } from './limits';
import type { FenceAgent } from './fence-agent';
import { mutant } from '../common/mutants';

export interface Ownership {
  sessionId: string;
  token: Token;
  /** How long the login that granted it took (its revokes and drains): about the host's IO pause when it moved. */
  loginMs?: number;
}

export interface LoginResult {
  clientId: string;
  token: Token;
  revoked: number;
  alreadyOwned: boolean;
}

/** How a revoke ended: acked, its server confirmed fenced by an operator, or neither within the limits. */
type RevokeOutcome = 'acked' | 'fenced' | 'unanswered' | 'undrained';

/**
 * A client that cannot move (DESIGN §4, "fail safe, not open"): its holder
 * did not drain, or is silent, and has no working fence; nothing proves its
 * NFS server stopped. Ends when the holder drains, a fence agent succeeds or
 * an operator confirms a fence (ConfirmFence).
 */
export interface Hold {
  clientId: string;
  serverId: string;
  sessionId: string;
  reason: string;
  since: number;
}

interface PendingRevoke {
  sessionId: string;
  serverId: string;
  clientId: string;
  settle: (outcome: RevokeOutcome) => void;
  /** The holder reported a drain in progress: wait longer (up to the drain limit). */
  progress: (callsLeft: number) => void;
  /** Writes the revoke again to the session's stream (it resumed on a new one). */
  resend: () => void;
}

export interface LoginCoordinatorOptions {
  clock: Clock;
  sessions: SessionTable;
  registry: HostRegistry;
  tokens: FencingTokens;
  /** How long a connected holder may be silent about a revoke before its session is condemned. */
  revokeAckTimeoutMs: number;
  /**
   * Longest a holder that keeps reporting drain progress is waited for, from
   * the revoke; then its session is condemned and waited out. Default: the
   * session TTL (its NFS layer fences the NFS server well before that).
   */
  revokeDrainLimitMs?: number;
  log: Logger;
  gates?: LoginGates;
  observer?: LoginObserver;
  limits?: MasterLimits;
  /** Run against a silent holder's SCVM before its client moves (fence-agent.ts). */
  fenceAgent?: FenceAgent;
  /** Revoke ids: random, unless the simulation seeds them. */
  ids?: () => string;
}

/** What the coordinator needs from the master around it. */
export interface LoginGates {
  /** Still the leader, by this master's own lease timer: no grant or revoke otherwise. */
  mayAct(): boolean;
  /** Resolves once `requester`'s logins may be granted (after a new leader's grace period). */
  ready(requester?: string): Promise<void>;
}

const ALWAYS: LoginGates = { mayAct: () => true, ready: () => Promise.resolve() };

/**
 * The token of a hold with no grant behind it (no epoch is 0): every grant
 * outranks it, and a login on the holding session itself gets a real one.
 */
const NO_GRANT: Token = { epoch: 0, sequence: 0 };

/** Hooks for metrics: what logins and revokes did, and how long they took. */
export interface LoginObserver {
  loginGranted(revoked: number, seconds: number): void;
  loginRefused(code: string): void;
  revokeAcked(seconds: number): void;
  revokeWaitedOut(): void;
  /** A login refused because the client is held (no working fence at its holder). */
  revokeHeld?(): void;
}

/**
 * Client ownership and Login Revoke (DESIGN §3, §4). Normally a client has at
 * most one holder; after a failover the followers' claims are adopted, and a
 * conflict leaves several holders until the lower tokens are revoked. A login
 * first revokes every other holder and waits for its ack, or waits a silent
 * holder out until its lease has surely expired. Logins, logouts and revokes
 * of one client run one at a time.
 */
export class LoginCoordinator {
  private readonly holders = new Map<string, Ownership[]>();
  /** Clients held per session, for the per-session limit and clientsOf. */
  private readonly bySession = new Map<string, Set<string>>();
  /**
   * The newest token this master has granted or adopted for each client, kept
   * after the client is let go: a claim older than it is left over (a later
   * grant ended it). One entry per client ever seen; a new master starts empty.
   */
  private readonly newestToken = new Map<string, Token>();
  /** Logins in flight per session, and in all; each in-flight login holds a client slot of its session. */
  private readonly inFlight = new Map<string, number>();
  private inFlightTotal = 0;
  private readonly pending = new Map<string, PendingRevoke>();
  private readonly pendingLogins = new Set<string>();
  private readonly mutex = new KeyedMutex();
  private readonly holds = new Map<string, Hold>();
  /** When an operator last confirmed each server's NFS server stopped (clock ms). */
  private readonly confirmedFences = new Map<string, number>();

  private readonly clock: Clock;
  private readonly sessions: SessionTable;
  private readonly registry: HostRegistry;
  private readonly tokens: FencingTokens;
  private readonly log: Logger;
  private readonly gates: LoginGates;
  private readonly observer?: LoginObserver;
  private readonly limits: MasterLimits;
  readonly fenceAgent?: FenceAgent;

  constructor(private readonly opts: LoginCoordinatorOptions) {
    this.clock = opts.clock;
    this.sessions = opts.sessions;
    this.registry = opts.registry;
    this.tokens = opts.tokens;
    this.log = opts.log;
    this.gates = opts.gates ?? ALWAYS;
    this.observer = opts.observer;
    this.limits = opts.limits ?? DEFAULT_MASTER_LIMITS;
    this.fenceAgent = opts.fenceAgent;
  }

  /** The holder with the highest token (the owner), if any. */
  owner(clientId: string): Ownership | undefined {
    const hs = this.holders.get(clientId);
    return hs?.length ? hs.reduce((a, b) => (compareTokens(a.token, b.token) >= 0 ? a : b)) : undefined;
  }

  ownerships(): Array<[string, Ownership]> {
    return [...this.holders.entries()].flatMap(([c, hs]) => hs.map((h) => [c, h] as [string, Ownership]));
  }

  /** Clients that cannot move until a fence is confirmed or their holder drains. */
  heldClients(): Hold[] {
    return [...this.holds.values()];
  }

  /**
   * The holder can prove its NFS server stops by itself: it announced a
   * fence command at the follower and every NFS layer, within the budget,
   * none failing. Only then may a wait-out stand in for its ack.
   */
  private mayWaitOut(session: Session): boolean {
    return session.fencing === 'FENCING_READY' || mutant('master-waitout-without-fence');
  }

  /** An operator confirmed the session's server stopped after the session's last renewal. */
  private fenceConfirmed(session: Session): boolean {
    return (this.confirmedFences.get(session.serverId) ?? -Infinity) >= session.renewedAt;
  }

  /**
   * An operator's word that `serverId`'s NFS server has stopped (checked by
   * hand): revokes held for it end as fenced, and holds of its sessions that
   * are no longer live are dropped. Returns the clients released.
   */
  async confirmFence(serverId: string, operator: string, reason: string, awaitedByGrace = false): Promise<{ released: string[]; sessions: number }> {
    const mine = this.sessions.ofServer(serverId);
    if (!mine.length && awaitedByGrace) return { released: [], sessions: 0 };
    if (!mine.length) throw new NotFound(`no session of server ${JSON.stringify(serverId)} is known to this master: nothing of it is held`);
    this.confirmedFences.set(serverId, this.clock.now());
    this.log.warn({ ev: 'fence.confirmed', server: serverId, operator, why: reason, sessions: mine.map((s) => s.id) }, 'operator confirmed the server\'s NFS server stopped');
    const released = new Set<string>();
    for (const p of [...this.pending.values()]) {
      if (p.serverId === serverId) {
        released.add(p.clientId);
        p.settle('fenced');
      }
    }
    for (const s of mine) if (this.sessions.state(s) === SessionState.Live) s.sink?.confirmFence?.(operator, reason);
    const dead = new Set(mine.filter((s) => this.sessions.state(s) !== SessionState.Live).map((s) => s.id));
    for (const [clientId, hs] of [...this.holders]) {
      if (!hs.some((h) => dead.has(h.sessionId))) continue;
      await this.mutex.run(clientId, async () => {
        for (const h of (this.holders.get(clientId) ?? []).filter((x) => dead.has(x.sessionId))) this.dropHolder(clientId, h);
      });
      released.add(clientId);
    }
    for (const [clientId, h] of [...this.holds]) {
      if (h.serverId === serverId) {
        this.holds.delete(clientId);
        released.add(clientId);
      }
    }
    return { released: [...released], sessions: mine.length };
  }

  /** Nothing under way: no login waiting, no revoke unanswered, no client held (the simulation's steady state). */
  quiet(): boolean {
    return this.pendingLogins.size === 0 && this.pending.size === 0 && this.holds.size === 0;
  }

  isLoginPending(clientId: string): boolean {
    return this.pendingLogins.has(clientId);
  }

  clientsOf(sessionId: string): string[] {
    return [...(this.bySession.get(sessionId) ?? [])];
  }

  private addHolder(clientId: string, holder: Ownership): void {
    const newest = this.newestToken.get(clientId);
    if (holder.token.epoch > 0 && (!newest || compareTokens(holder.token, newest) > 0)) this.newestToken.set(clientId, holder.token);
    const hs = this.holders.get(clientId) ?? [];
    hs.push(holder);
    this.holders.set(clientId, hs);
    let set = this.bySession.get(holder.sessionId);
    if (!set) this.bySession.set(holder.sessionId, (set = new Set()));
    set.add(clientId);
  }

  /** Resolves the client identity for a login from `address` on `sessionId`. */
  resolve(sessionId: string, address: string): string {
    const s = this.sessions.requireLive(sessionId);
    return this.registry.resolve(address, s.hostId, s.serverId);
  }

  private requireLeader(): void {
    if (!this.gates.mayAct()) throw new Unavailable('this master is no longer the leader');
  }

  /** Counts a login in flight, or refuses it past the pending-login limits. */
  private beginLogin(sessionId: string): () => void {
    const mine = this.inFlight.get(sessionId) ?? 0;
    if (mine >= this.limits.maxPendingLoginsPerSession) {
      throw new ResourceExhausted(`session ${sessionId} already has ${mine} logins in flight (limit ${this.limits.maxPendingLoginsPerSession})`, LIMIT.pendingLoginsPerSession);
    }
    if (this.inFlightTotal >= this.limits.maxPendingLogins) {
      throw new ResourceExhausted(`${this.inFlightTotal} logins in flight (limit ${this.limits.maxPendingLogins})`, LIMIT.pendingLogins);
    }
    this.inFlight.set(sessionId, mine + 1);
    this.inFlightTotal++;
    return () => {
      this.inFlightTotal--;
      const n = (this.inFlight.get(sessionId) ?? 1) - 1;
      if (n > 0) this.inFlight.set(sessionId, n);
      else this.inFlight.delete(sessionId);
    };
  }

  /**
   * Checked before anything is revoked: counting the logins in flight (each
   * may add a client), so a login never takes a client away and then fails.
   */
  private requireRoomFor(sessionId: string, clientId: string): void {
    const held = this.bySession.get(sessionId);
    if (held?.has(clientId)) return;
    const inFlightOthers = (this.inFlight.get(sessionId) ?? 1) - 1;
    if ((held?.size ?? 0) + inFlightOthers >= this.limits.maxClientsPerSession) {
      throw new ResourceExhausted(`session ${sessionId} already owns ${held?.size ?? 0} clients, ${inFlightOthers} more in flight (limit ${this.limits.maxClientsPerSession})`, LIMIT.clientsPerSession);
    }
  }

  async login(sessionId: string, address: string): Promise<LoginResult> {
    const started = this.clock.now();
    let end: (() => void) | undefined;
    try {
      end = this.beginLogin(sessionId);
      const clientId = this.resolve(sessionId, address);
      this.requireRoomFor(sessionId, clientId);
      await this.gates.ready(this.sessions.get(sessionId)?.serverId);
      const r = await this.mutex.run(clientId, async () => {
        this.pendingLogins.add(clientId);
        try {
          return await this.loginLocked(sessionId, clientId, started);
        } finally {
          this.pendingLogins.delete(clientId);
        }
      });
      this.observer?.loginGranted(r.revoked, (this.clock.now() - started) / 1000);
      return r;
    } catch (err) {
      this.observer?.loginRefused(err instanceof ResourceExhausted ? `limit:${err.limit}` : (err as Error).name);
      throw err;
    } finally {
      end?.();
    }
  }

  private async loginLocked(sessionId: string, clientId: string, started: number): Promise<LoginResult> {
    this.requireLeader();
    const requester = this.sessions.requireLive(sessionId);
    let revoked = 0;
    for (let round = 0; ; round++) {
      const current = this.holders.get(clientId) ?? [];
      const mine = current.find((h) => h.sessionId === sessionId);
      const others = current.filter((h) => h.sessionId !== sessionId);
      // A hold adopted from an older term carries that term's token, which a
      // follower that has seen this epoch refuses: it gets a token of this term.
      // So does a grant this master revoked there, whose drain ended held: the
      // follower refuses the token it was told to revoke, and the client (on
      // the same NFS server, calls in order) gets a new one.
      const revokedHere = this.holds.get(clientId)?.sessionId === sessionId && !mutant('master-regrants-revoked-token');
      if (round === 0 && mine && others.length === 0 && mine.token.epoch === this.tokens.epoch && !revokedHere) {
        return { clientId, token: mine.token, revoked: 0, alreadyOwned: true };
      }
      if (others.length === 0 || (round > 0 && mutant('master-grants-without-looking-again'))) break;
      // While we waited, a holder may have come back: a follower whose stream
      // broke re-introduces itself in a new session claiming the client
      // (adoption does not take this lock). Look again until no one else
      // holds it; a grant now would leave that holder serving too.
      if (round >= 8) throw new Unavailable(`${clientId} keeps being claimed by other sessions; retry`);
      await Promise.all(others.map((h) => this.takeAway(clientId, h, `login on ${requester.serverId}`, requester.serverId)));
      revoked += others.length;
    }
    // The requester may have expired, or this master lost leadership, while we
    // waited: granting now would hand the client to a fenced follower or
    // issue a token a newer leader does not know.
    this.sessions.requireLive(sessionId);
    this.requireLeader();
    // The fence agent may have killed the requester's SCVM while we waited
    // (a grace's fence of servers that did not come back, say): its follower
    // is gone, and a grant would leave the client held by a dead session, to
    // be fenced again later, killing the follower that replaced it.
    if (this.fenceAgent?.fencedSinceRenewal(requester) && !mutant('master-grants-to-fenced-session')) {
      throw new Unavailable(`${requester.serverId} was fenced after session ${sessionId} last renewed: that follower is gone, and its successor logs in again`);
    }
    const token = this.tokens.next();
    const mine = (this.holders.get(clientId) ?? []).find((h) => h.sessionId === sessionId);
    if (mine) this.dropHolder(clientId, mine);
    this.addHolder(clientId, { sessionId, token, loginMs: Math.round(this.clock.now() - started) });
    this.log.info({ ev: 'login.granted', client: clientId, server: requester.serverId, session: sessionId, token: formatToken(token), revoked }, 'login granted');
    return { clientId, token, revoked, alreadyOwned: false };
  }

  private dropHolder(clientId: string, holder: Ownership): void {
    if (this.holds.get(clientId)?.sessionId === holder.sessionId) this.holds.delete(clientId);
    const rest = (this.holders.get(clientId) ?? []).filter((h) => h !== holder);
    if (rest.length) this.holders.set(clientId, rest);
    else this.holders.delete(clientId);
    const held = this.bySession.get(holder.sessionId);
    if (held && !rest.some((h) => h.sessionId === holder.sessionId)) {
      held.delete(clientId);
      if (!held.size) this.bySession.delete(holder.sessionId);
    }
  }

  /**
   * Ends `holder`'s hold on `clientId` safely: its ack, or (silent) the fence
   * agent and waiting until its lease surely ran out.
   */
  private async takeAway(clientId: string, holder: Ownership, reason: string, forServer?: string): Promise<void> {
    const session = this.sessions.get(holder.sessionId);
    if (session && session.serverId === forServer && this.sessions.state(session) !== SessionState.Live && !mutant('master-fences-own-requester')) {
      // An earlier session of the requester's own server (its follower
      // restarted or lost its stream): the client stays on the same NFS
      // server, so there is nothing to wait out or fence. Doing either would
      // fence the requester itself (the fence agent kills the whole SCVM,
      // then grants to the session it just killed: found by the
      // simulation's liveness phase), or hold the client for a confirmation
      // of the server asking for it.
      this.log.info({ ev: 'revoke.same_server', client: clientId, server: session.serverId, session: session.id }, 'earlier session of the same server: taken over');
    } else if (session) {
      const outcome = this.clock.now() < this.sessions.surelyExpiredAt(session) ? await this.revoke(session, clientId, holder.token, reason) : 'unanswered';
      if (outcome === 'undrained' && !this.mayWaitOut(session)) {
        // Draining, not dead: the holder keeps its session (and its other
        // clients); only this client waits, and the login says why.
        throw this.hold(session, clientId, `its NFS layer did not drain the client's calls and ${this.fencingOf(session)}`);
      }
      if (outcome === 'unanswered' || outcome === 'undrained') await this.waitOut(session, clientId);
    }
    this.dropHolder(clientId, holder);
  }

  private fencingOf(session: Session): string {
    const what = session.fencing === 'FENCING_FAILED' ? 'its fence failed' : session.fencing === 'FENCING_READY' ? 'it has a fence' : 'it has no fence command';
    return session.fencingDetail ? `${what} (${session.fencingDetail})` : what;
  }

  /** Records that `clientId` cannot move from `session` now; returns the login's error. */
  private hold(session: Session, clientId: string, why: string): Unavailable {
    const prev = this.holds.get(clientId);
    const reason = `${clientId} is held by ${session.serverId}: ${why}; it moves once the calls drain, a fence succeeds, or an operator who checked that ${session.serverId}'s NFS server is stopped runs \`nfsha fence-confirm ${session.serverId}\``;
    this.holds.set(clientId, { clientId, serverId: session.serverId, sessionId: session.id, reason, since: prev?.sessionId === session.id ? prev.since : this.clock.now() });
    if (!prev || prev.reason !== reason) this.log.error({ ev: 'login.held', client: clientId, server: session.serverId, session: session.id, why }, 'client held: nothing proves its holder stopped');
    this.observer?.revokeHeld?.();
    return new Unavailable(reason);
  }

  /** Sends a revoke to a live, connected holder and awaits its ack, or how it failed. */
  private async revoke(session: Session, clientId: string, token: Token, reason: string): Promise<RevokeOutcome> {
    const connected = this.sessions.state(session) === SessionState.Live && session.sink !== undefined;
    if (!connected || !this.gates.mayAct()) return 'unanswered';
    const revokeId = this.opts.ids?.() ?? randomBytes(8).toString('hex');
    const started = this.clock.now();
    this.log.info({ ev: 'revoke.sent', client: clientId, server: session.serverId, session: session.id, revoke: revokeId, why: reason }, 'revoke sent');
    const limit = started + (this.opts.revokeDrainLimitMs ?? this.sessions.timing.ttlMs);
    let drained = 0;
    let progressed = false;
    const outcome = await new Promise<RevokeOutcome>((resolve) => {
      let timer = this.clock.setTimeout(() => settle(progressed ? 'undrained' : 'unanswered'), this.opts.revokeAckTimeoutMs);
      const settle = (o: RevokeOutcome) => {
        if (!this.pending.delete(revokeId)) return;
        this.clock.clearTimeout(timer);
        resolve(o);
      };
      // DESIGN §4: a follower that says it is draining keeps its session;
      // only this client waits, and not past the drain limit.
      const rearm = () => {
        this.clock.clearTimeout(timer);
        const wait = Math.min(this.opts.revokeAckTimeoutMs, limit - this.clock.now());
        timer = this.clock.setTimeout(() => settle(progressed ? 'undrained' : 'unanswered'), Math.max(0, wait));
      };
      const progress = (callsLeft: number) => {
        drained = callsLeft;
        progressed = true;
        rearm();
      };
      const msg = { revokeId, clientId, epoch: this.tokens.epoch, reason, token };
      const resend = () => {
        if (!session.sink || !this.gates.mayAct()) return;
        this.log.info({ ev: 'revoke.resent', client: clientId, server: session.serverId, session: session.id, revoke: revokeId }, 'revoke sent again on the resumed stream');
        rearm();
        session.sink.sendRevoke(msg);
      };
      this.pending.set(revokeId, { sessionId: session.id, serverId: session.serverId, clientId, settle, progress, resend });
      session.sink!.sendRevoke(msg);
    });
    if (outcome === 'undrained') this.log.warn({ ev: 'revoke.drain.limit', client: clientId, server: session.serverId, revoke: revokeId, calls_left: drained }, 'holder did not finish draining in time');
    if (outcome === 'acked') {
      this.observer?.revokeAcked((this.clock.now() - started) / 1000);
      this.log.info({ ev: 'revoke.acked', client: clientId, server: session.serverId, revoke: revokeId, ms: Math.round(this.clock.now() - started) }, 'revoke acknowledged');
    }
    return outcome;
  }

  /**
   * Stops renewing the holder's session, then waits until its lease has surely
   * run out on the follower's own clock; only then may the client move. With
   * a fence agent, a holder that never confirmed it stopped is fenced first
   * (and a confirmed fence ends the wait: nothing is left to wait for).
   */
  private async waitOut(session: Session, clientId: string): Promise<void> {
    if (this.fenceConfirmed(session)) return;
    // Without a working fence at the holder, its lease running out proves
    // nothing about calls its NFS server still holds: a fence agent or an
    // operator must. Its own follower continuing in a new session (whose
    // hold is revoked separately) or a new follower that fenced at start
    // leave only the old lease to wait for, as before.
    const onlyLeaseLeft = this.sessions.successorOf(session) !== undefined || this.sessions.replacedAfterFence(session) !== undefined;
    if (!this.mayWaitOut(session) && !onlyLeaseLeft) return this.fenceOrHold(session, clientId, this.fencingOf(session));
    const failedLater = this.laterFenceFailure(session);
    if (failedLater) return this.fenceOrHold(session, clientId, failedLater);
    if (this.condemnIfLive(session, clientId)) {
      this.log.warn({ ev: 'session.condemned', server: session.serverId, session: session.id, client: clientId }, 'holder did not acknowledge revoke; waiting out its lease');
    }
    this.observer?.revokeWaitedOut();
    // A new follower process that fenced the NFS server at start does not
    // end the wait: the old follower's gate may be hung, not gone, and when
    // it runs again it forwards until its own lease deadline, to an NFS
    // server restarted meanwhile (the simulation found this: seeds 19 and
    // 1040 of test/integration/simulation.test.ts). After its lease, that
    // fence still lets the holds be forgotten (mayForget).
    if (this.fenceAgent?.configured && !this.sessions.successorOf(session)) {
      this.log.warn({ ev: 'revoke.fence', client: clientId, server: session.serverId, session: session.id }, 'silent holder: running the fence agent');
      if (!(await this.fenceAgent.fence(session, `${clientId} moves away from silent holder ${session.serverId}`))) {
        throw new Unavailable(`fencing silent holder ${session.serverId} of ${clientId} failed; the client cannot move until it succeeds`);
      }
      this.log.info({ ev: 'revoke.fenced', client: clientId, server: session.serverId, session: session.id }, 'silent holder fenced: no wait-out needed');
      return;
    }
    const until = this.sessions.surelyExpiredAt(session);
    this.log.info({ ev: 'revoke.waitout', client: clientId, server: session.serverId, session: session.id, ms: Math.max(0, Math.round(until - this.clock.now())) }, 'waiting out silent holder');
    // Timers can fire early (Node schedules from a cached loop time): trust
    // the clock, and wait again for what is left.
    if (mutant('timers-trusted-on-time')) return void await new Promise<void>((resolve) => this.clock.setTimeout(resolve, until - this.clock.now()));
    while (this.clock.now() < until) {
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, until - this.clock.now()));
    }
    // The server may have come back meanwhile, unable to fence.
    const failedSince = this.laterFenceFailure(session);
    if (failedSince) return this.fenceOrHold(session, clientId, failedSince);
  }

  /**
   * Why a later session of the holder's server leaves `session`'s calls
   * unproven: its follower's fence failed, so nothing shows that what
   * `session`'s NFS layers left in the NFS server (a gate that died with its
   * follower leaves no one to fence at the lease's fence point) is dead.
   */
  private laterFenceFailure(session: Session): string | undefined {
    const later = this.sessions.laterFenceFailed(session);
    return later && `a later follower of it reports its fence failed, in ${later.from}${later.detail ? ` (${later.detail})` : ''}`;
  }

  /** Condemns a holder that is still live and ends its stream; true if it was live. */
  private condemnIfLive(session: Session, clientId: string): boolean {
    if (this.sessions.state(session) !== SessionState.Live) return false;
    this.sessions.condemn(session);
    session.sink?.end(status.ABORTED, `session ${session.id} condemned: revoke of ${clientId} not acknowledged`);
    return true;
  }

  /** Nothing proves the silent holder stopped by itself: the fence agent must, or the client is held. */
  private async fenceOrHold(session: Session, clientId: string, why: string): Promise<void> {
    if (!this.fenceAgent?.configured) throw this.hold(session, clientId, `it is silent and ${why}`);
    this.condemnIfLive(session, clientId);
    this.log.warn({ ev: 'revoke.fence', client: clientId, server: session.serverId, session: session.id, why }, 'silent holder without a working fence: running the fence agent');
    if (!(await this.fenceAgent.fence(session, `${clientId} moves away from silent holder ${session.serverId}`))) {
      throw this.hold(session, clientId, `it is silent, ${why}, and the fence agent failed`);
    }
  }

  /**
   * Issue 18 hole g: `session` resumed on a new stream. A revoke written to
   * the old one may have been lost with it, and then no ack ever comes and a
   * healthy holder is condemned and fenced: send each revoke it has not
   * acked again, with a fresh ack timeout (never past the drain limit). A
   * follower still handling that revoke id ignores the copy; one that
   * handled it (its ack lost with the old stream) acks it again.
   */
  resendPending(session: Session): void {
    if (mutant('master-revoke-lost-with-stream')) return;
    for (const p of [...this.pending.values()]) if (p.sessionId === session.id) p.resend();
  }

  /** A revoke ack from `sessionId`; acks from any other session are ignored. */
  onRevokeAck(sessionId: string, revokeId: string): boolean {
    const p = this.pending.get(revokeId);
    if (!p || p.sessionId !== sessionId) return false;
    p.settle('acked');
    return true;
  }

  /** A holder reports a revoke still draining; from any other session it is ignored. */
  onRevokeProgress(sessionId: string, revokeId: string, callsLeft: number): boolean {
    const p = this.pending.get(revokeId);
    if (!p || p.sessionId !== sessionId) return false;
    p.progress(callsLeft);
    return true;
  }

  /**
   * The session lets the client go. With `token`, only the grant it names
   * (or an older one): a logout that arrives after a newer login of the same
   * client on the same session (late, or repeated) must not free that newer
   * grant, or the next login elsewhere is granted while this session still
   * serves the client. Without a token (a follower of the previous release),
   * whatever the session holds.
   */
  async logout(sessionId: string, clientId: string, token?: Token): Promise<boolean> {
    if (!this.sessions.get(sessionId)) throw new NotFound(`unknown session ${JSON.stringify(sessionId)}`);
    return this.mutex.run(clientId, async () => {
      const mine = this.holders.get(clientId)?.find((h) => h.sessionId === sessionId);
      if (!mine) return false;
      if (token && compareTokens(mine.token, token) > 0 && !mutant('master-logout-frees-newer-grant')) {
        this.log.info({ ev: 'logout.stale', client: clientId, session: sessionId, token: formatToken(token), held: formatToken(mine.token) }, 'logout of an older grant: the newer one stays');
        return false;
      }
      this.dropHolder(clientId, mine);
      this.log.info({ ev: 'logout', client: clientId, session: sessionId }, 'client logged out');
      return true;
    });
  }

  /**
   * Adopts the clients a follower says it serves (its introduction, after a
   * failover or a master restart): ownership is soft state rebuilt from the
   * followers. A client claimed by two sessions keeps the higher fencing token;
   * the lower holder is revoked right away.
   */
  adopt(sessionId: string, claims: Array<{ clientId: string; token: Token; addresses?: string[] }>): string[] {
    const adopted: string[] = [];
    const refused: string[] = [];
    const staleClaims: string[] = [];
    const movedClaims: string[] = [];
    for (const c of claims) {
      const hs = this.holders.get(c.clientId) ?? [];
      if (hs.some((h) => h.sessionId === sessionId)) continue;
      if (c.token.epoch > this.tokens.epoch) continue; // a token from the future is not ours to honour
      // A claim is a fact, not a request: the follower serves that client
      // until it has dropped it. So every claim is held; past the limit it
      // is revoked at once (the follower drops it on its own too), and a
      // login elsewhere waits for that revoke like any other.
      const newest = this.newestToken.get(c.clientId);
      const stale = newest !== undefined && compareTokens(c.token, newest) < 0 && !mutant('master-adopts-stale-claim');
      const holder = { sessionId, token: c.token };
      this.addHolder(c.clientId, holder);
      if (stale) {
        // This master granted the client again since that token (after a
        // revoke, a wait-out or a logout), so the claim is left over, e.g.
        // from a follower cut off while it held it. Adopted, it would let the
        // follower admit the client again under the old token. Held, so a
        // login elsewhere waits for the revoke; not listed, so the follower
        // drops it.
        staleClaims.push(c.clientId);
        void this.revokeFrom(c.clientId, sessionId, `claim of token ${formatToken(c.token)} is older than token ${formatToken(newest)} granted since`);
        continue;
      }
      const moved = this.addressNotOf(sessionId, c.clientId, c.addresses ?? []);
      if (moved !== undefined && !mutant('master-adopts-claim-of-moved-address')) {
        // The follower admits the client from an address the registry now
        // gives another host (or none): adopted, the follower would serve
        // that host's connections as this client, without asking (campaign
        // seed 2082951979: the host renumbered while its holder's stream was
        // down, so the revoke of the old address went to a session that
        // died, and the follower's next introduction claimed it again).
        // Held, so a login elsewhere waits for the revoke; not listed, so
        // the follower drops it and forgets the address.
        movedClaims.push(c.clientId);
        void this.revokeFrom(c.clientId, sessionId, `claimed from ${moved}, which is no longer ${c.clientId}'s address`);
        continue;
      }
      if ((this.bySession.get(sessionId)?.size ?? 0) > this.limits.maxClientsPerSession) {
        refused.push(c.clientId);
        if (mutant('master-over-limit-claim-unheld')) {
          // Race 7's revert: the claim is refused and forgotten; the
          // follower drops the client on its own, and nothing makes a login
          // elsewhere wait for that.
          this.dropHolder(c.clientId, holder);
          continue;
        }
        void this.revokeFrom(c.clientId, sessionId, `over the limit of ${this.limits.maxClientsPerSession} clients per session`);
        continue;
      }
      adopted.push(c.clientId);
      if (this.holders.get(c.clientId)!.length > 1) void this.resolveConflict(c.clientId);
    }
    if (adopted.length) this.log.info({ ev: 'clients.adopted', session: sessionId, clients: adopted }, 'adopted clients from introduction');
    if (staleClaims.length) this.log.warn({ ev: 'clients.stale_claims', session: sessionId, clients: staleClaims }, 'claims older than a grant made since: revoking them');
    if (movedClaims.length) this.log.warn({ ev: 'clients.moved_address_claims', session: sessionId, clients: movedClaims }, 'claims from an address that names another host now: revoking them');
    if (refused.length) this.log.warn({ ev: 'clients.not_adopted', session: sessionId, clients: refused, limit: this.limits.maxClientsPerSession }, 'claims over the per-session limit: revoking them');
    return adopted;
  }

  /** The first of `addresses` that does not name `clientId` on this session now, if any. */
  private addressNotOf(sessionId: string, clientId: string, addresses: readonly string[]): string | undefined {
    for (const address of addresses) {
      let owner: string | undefined;
      try {
        owner = this.resolve(sessionId, address);
      } catch {
        owner = undefined; // no host has it now (or it is no address at all)
      }
      if (owner !== clientId) return address;
    }
    return undefined;
  }

  /**
   * Issue 18 hole f: clients a follower lists with calls in flight at its
   * server but no grant (its NFS layers still drain them, or a revoke of
   * them is held there), whatever the follower forgot. Each is held for the
   * session under NO_GRANT, so a login elsewhere waits, and revoked at once,
   * so the hold ends when those calls are done (the follower drained them or
   * fenced its NFS server) and otherwise stays, as any undrained revoke
   * does. None is adopted: the follower serves none of them. Returns the
   * clients held.
   */
  holdInFlight(sessionId: string, clientIds: readonly string[]): string[] {
    if (mutant('follower-claims-omit-inflight')) return [];
    const held: string[] = [];
    for (const clientId of new Set(clientIds)) {
      if ((this.holders.get(clientId) ?? []).some((h) => h.sessionId === sessionId)) continue;
      this.addHolder(clientId, { sessionId, token: NO_GRANT });
      held.push(clientId);
      void this.revokeFrom(clientId, sessionId, 'calls in flight at a server that holds no grant for the client');
    }
    if (held.length) this.log.warn({ ev: 'clients.in_flight_held', session: sessionId, clients: held }, 'clients with calls in flight at a server without a grant: held there and revoked');
    return held;
  }

  /** Takes the client away from one session's hold (in the background). */
  private revokeFrom(clientId: string, sessionId: string, reason: string): Promise<void> {
    return this.mutex.run(clientId, async () => {
      const hold = (this.holders.get(clientId) ?? []).find((h) => h.sessionId === sessionId);
      if (hold) await this.takeAway(clientId, hold, reason);
    }).catch((err: Error) => this.log.warn({ ev: 'client.revoke.failed', client: clientId, err: err.message }, 'could not revoke a claim'));
  }

  /** Takes the client away from every holder (in the background of whoever asked). */
  revokeAll(clientId: string, reason: string): Promise<void> {
    return this.mutex.run(clientId, async () => {
      const hs = this.holders.get(clientId) ?? [];
      if (!hs.length) return;
      this.log.info({ ev: 'client.revoke_all', client: clientId, holders: hs.length, why: reason }, 'revoking every holder');
      await Promise.all(hs.map((h) => this.takeAway(clientId, h, reason)));
    }).catch((err: Error) => this.log.warn({ ev: 'client.revoke_all.failed', client: clientId, err: err.message }, 'could not revoke every holder'));
  }

  private resolveConflict(clientId: string): Promise<void> {
    return this.mutex.run(clientId, async () => {
      const hs = this.holders.get(clientId) ?? [];
      if (hs.length < 2) return;
      const keep = this.owner(clientId)!;
      this.log.warn({ ev: 'ownership.conflict', client: clientId, keep: formatToken(keep.token), holders: hs.length }, 'conflicting claims; revoking lower tokens');
      await Promise.all(hs.filter((h) => h !== keep).map((h) => this.takeAway(clientId, h, 'conflicting claim with a lower fencing token')));
    });
  }

  /**
   * Whether a dead session's holds may be forgotten: with a fence agent,
   * only once its SCVM was fenced, its follower process continued in a new
   * session within its lease, or a new follower fenced the NFS server at start.
   */
  mayForget(session: Session): boolean {
    if (!this.bySession.get(session.id)?.size || this.fenceConfirmed(session)) return true;
    if (this.sessions.laterFenceFailed(session)) return this.fenceAgent?.isConfirmed(session) === true;
    // Without a working fence its holds stay until a fence is confirmed:
    // forgetting them would free its clients unproven.
    if (!this.mayWaitOut(session)) {
      return this.fenceAgent?.isConfirmed(session) === true || this.sessions.successorOf(session) !== undefined || this.sessions.replacedAfterFence(session) !== undefined;
    }
    if (!this.fenceAgent?.configured) return true;
    return this.fenceAgent.isConfirmed(session) || this.sessions.successorOf(session) !== undefined || this.sessions.replacedAfterFence(session) !== undefined;
  }

  /** Forgets holds of sessions that are gone (surely expired). */
  forgetSessions(sessionIds: Set<string>): void {
    for (const [clientId, hs] of this.holders) {
      if (this.mutex.isBusy(clientId)) continue;
      for (const h of hs.filter((h) => sessionIds.has(h.sessionId))) this.dropHolder(clientId, h);
    }
    for (const id of sessionIds) if (!this.bySession.get(id)?.size) this.bySession.delete(id);
  }
}
