import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import { KeyedMutex } from '../common/keyed-mutex';
import { NotFound } from '../common/errors';
import type { Logger } from '../common/log';
import type { Token } from '../common/token';
import { formatToken } from '../common/token';
import type { HostRegistry } from './identity';
import { SessionState, type Session, type SessionTable } from './sessions';
import type { FencingTokens } from './tokens';

export interface Ownership {
  sessionId: string;
  token: Token;
}

export interface LoginResult {
  clientId: string;
  token: Token;
  revoked: number;
  alreadyOwned: boolean;
}

interface PendingRevoke {
  sessionId: string;
  clientId: string;
  settle: (acked: boolean) => void;
}

/**
 * Client ownership and Login Revoke (DESIGN §3, §4): a client is owned by at
 * most one session; a login elsewhere first revokes it on the holder and waits
 * for the ack, or waits a silent holder out until its lease has surely expired.
 * Logins, logouts and revokes of one client run one at a time.
 */
export class LoginCoordinator {
  private readonly owners = new Map<string, Ownership>();
  private readonly pending = new Map<string, PendingRevoke>();
  private readonly pendingLogins = new Set<string>();
  private readonly mutex = new KeyedMutex();

  constructor(
    private readonly clock: Clock,
    private readonly sessions: SessionTable,
    private readonly registry: HostRegistry,
    private readonly tokens: FencingTokens,
    private readonly revokeAckTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  owner(clientId: string): Ownership | undefined {
    return this.owners.get(clientId);
  }

  ownerships(): Array<[string, Ownership]> {
    return [...this.owners.entries()];
  }

  isLoginPending(clientId: string): boolean {
    return this.pendingLogins.has(clientId);
  }

  clientsOf(sessionId: string): string[] {
    return this.ownerships().filter(([, o]) => o.sessionId === sessionId).map(([c]) => c);
  }

  /** Resolves the client identity for a login from `address` on `sessionId`. */
  resolve(sessionId: string, address: string): string {
    const s = this.sessions.requireLive(sessionId);
    return this.registry.resolve(address, s.hostId, s.serverId);
  }

  async login(sessionId: string, address: string): Promise<LoginResult> {
    const clientId = this.resolve(sessionId, address);
    return this.mutex.run(clientId, async () => {
      this.pendingLogins.add(clientId);
      try {
        return await this.loginLocked(sessionId, clientId);
      } finally {
        this.pendingLogins.delete(clientId);
      }
    });
  }

  private async loginLocked(sessionId: string, clientId: string): Promise<LoginResult> {
    const requester = this.sessions.requireLive(sessionId);
    const holder = this.owners.get(clientId);
    if (holder?.sessionId === sessionId) {
      return { clientId, token: holder.token, revoked: 0, alreadyOwned: true };
    }
    let revoked = 0;
    if (holder) {
      await this.takeAway(clientId, holder, `login on ${requester.serverId}`);
      revoked = 1;
    }
    // The requester may have expired while we waited: granting to it now would
    // hand the client to a follower that has fenced itself.
    this.sessions.requireLive(sessionId);
    const token = this.tokens.next();
    this.owners.set(clientId, { sessionId, token });
    this.log.info({ ev: 'login.granted', client: clientId, server: requester.serverId, session: sessionId, token: formatToken(token), revoked }, 'login granted');
    return { clientId, token, revoked, alreadyOwned: false };
  }

  /** Ends `holder`'s ownership of `clientId` safely: ack, or wait until surely expired. */
  private async takeAway(clientId: string, holder: Ownership, reason: string): Promise<void> {
    const session = this.sessions.get(holder.sessionId);
    if (session && this.clock.now() < this.sessions.surelyExpiredAt(session)) {
      const acked = await this.revoke(session, clientId, holder.token, reason);
      if (!acked) {
        await this.waitOut(session, clientId);
      }
    }
    if (this.owners.get(clientId) === holder) this.owners.delete(clientId);
  }

  /** Sends a revoke to a live, connected holder and awaits its ack; false if it cannot answer. */
  private async revoke(session: Session, clientId: string, token: Token, reason: string): Promise<boolean> {
    const connected = this.sessions.state(session) === SessionState.Live && session.sink !== undefined;
    if (!connected) return false;
    const revokeId = randomBytes(8).toString('hex');
    const started = this.clock.now();
    this.log.info({ ev: 'revoke.sent', client: clientId, server: session.serverId, session: session.id, revoke: revokeId, why: reason }, 'revoke sent');
    const acked = await new Promise<boolean>((resolve) => {
      const timer = this.clock.setTimeout(() => settle(false), this.revokeAckTimeoutMs);
      const settle = (ok: boolean) => {
        if (!this.pending.delete(revokeId)) return;
        this.clock.clearTimeout(timer);
        resolve(ok);
      };
      this.pending.set(revokeId, { sessionId: session.id, clientId, settle });
      session.sink!.sendRevoke({ revokeId, clientId, epoch: this.tokens.epoch, reason, token });
    });
    if (acked) {
      this.log.info({ ev: 'revoke.acked', client: clientId, server: session.serverId, revoke: revokeId, ms: Math.round(this.clock.now() - started) }, 'revoke acknowledged');
    }
    return acked;
  }

  /**
   * Stops renewing the holder's session, then waits until its lease has surely
   * run out on the follower's own clock; only then may the client move.
   */
  private async waitOut(session: Session, clientId: string): Promise<void> {
    if (this.sessions.state(session) === SessionState.Live) {
      this.sessions.condemn(session);
      session.sink?.end(status.ABORTED, `session ${session.id} condemned: revoke of ${clientId} not acknowledged`);
      this.log.warn({ ev: 'session.condemned', server: session.serverId, session: session.id, client: clientId }, 'holder did not acknowledge revoke; waiting out its lease');
    }
    const wait = this.sessions.surelyExpiredAt(session) - this.clock.now();
    this.log.info({ ev: 'revoke.waitout', client: clientId, server: session.serverId, session: session.id, ms: Math.max(0, Math.round(wait)) }, 'waiting out silent holder');
    if (wait > 0) await new Promise<void>((resolve) => this.clock.setTimeout(resolve, wait));
  }

  /** A revoke ack from `sessionId`; acks from any other session are ignored. */
  onRevokeAck(sessionId: string, revokeId: string): boolean {
    const p = this.pending.get(revokeId);
    if (!p || p.sessionId !== sessionId) return false;
    p.settle(true);
    return true;
  }

  async logout(sessionId: string, clientId: string): Promise<boolean> {
    if (!this.sessions.get(sessionId)) throw new NotFound(`unknown session ${JSON.stringify(sessionId)}`);
    return this.mutex.run(clientId, async () => {
      const o = this.owners.get(clientId);
      if (o?.sessionId !== sessionId) return false;
      this.owners.delete(clientId);
      this.log.info({ ev: 'logout', client: clientId, session: sessionId }, 'client logged out');
      return true;
    });
  }

  /** Forgets ownership held by sessions that are gone (surely expired). */
  forgetSessions(sessionIds: Set<string>): void {
    for (const [clientId, o] of this.owners) {
      if (sessionIds.has(o.sessionId) && !this.mutex.isBusy(clientId)) this.owners.delete(clientId);
    }
  }
}
