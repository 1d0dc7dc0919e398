import type { Clock, TimerHandle } from '../common/clock';
import { Unavailable } from '../common/errors';
import { mutant } from '../common/mutants';

/**
 * A new leader's grace period (DESIGN §4): it grants nothing an old session
 * might still hold until every registered Access Server has introduced itself
 * again, or the grace period has passed, whichever comes first. When it ends
 * by time, a registered server that never came back may be a frozen SCVM
 * whose NFS server still holds calls (its own fences could not run): with a
 * fence agent, those are fenced before anything is granted. Without one, a
 * missing server that could not fence its own NFS server when last heard of
 * holds every login (UNAVAILABLE, naming it) until it comes back or an
 * operator confirms it is down (`nfsha fence-confirm`): its calls are not
 * bounded by any lease.
 */
export class Readiness {
  private readonly missing: Set<string>;
  private readonly unfenced: Set<string>;
  private readonly refusers: Array<(err: Error) => void> = [];
  /** With nobody registered there is nobody to wait for but the unknown: wait the grace out. */
  private readonly expectedAny: boolean;
  private readonly deadline: number;
  private done = false;
  private readonly waiters: Array<() => void> = [];
  private timer?: TimerHandle;

  constructor(
    private readonly clock: Clock,
    expected: Iterable<string>,
    graceMs: number,
    /** Fences servers that never came back; resolves true once all are confirmed. */
    private readonly fenceMissing?: (serverIds: string[]) => Promise<boolean>,
    /** Expected servers that could not fence their NFS server when last heard of. */
    unfenced: Iterable<string> = [],
  ) {
    this.missing = new Set(expected);
    this.unfenced = new Set(unfenced);
    this.expectedAny = this.missing.size > 0;
    this.deadline = clock.now() + graceMs;
    this.arm();
  }

  /**
   * Timers can fire early (Node schedules them from the loop time it cached,
   * which lags after a stall): the grace ends when the clock says so, not
   * when a timer fired.
   */
  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      if (this.clock.now() < this.deadline && !mutant('timers-trusted-on-time')) return this.arm();
      if (!this.missing.size) return this.finish();
      if (!this.fenceMissing) {
        if (!this.heldBy().length) return this.finish();
        // Each waiting login learns whether the hold concerns it.
        for (const r of this.refusers.splice(0)) r(this.holdError());
        this.waiters.length = 0;
        return;
      }
      void this.fenceThenFinish();
    }, Math.max(0, this.deadline - this.clock.now()));
  }

  private fencing = false;

  private async fenceThenFinish(): Promise<void> {
    if (this.fencing || this.done) return;
    this.fencing = true;
    const ok = await this.fenceMissing!([...this.missing]).catch(() => false);
    this.fencing = false;
    if (ok || !this.missing.size) return this.finish();
    // Not confirmed: grant nothing yet, try again in a second.
    this.timer = this.clock.setTimeout(() => void this.fenceThenFinish(), 1000);
  }

  isReady(): boolean {
    return this.done || (this.clock.now() >= this.deadline && (this.fenceMissing ? this.missing.size === 0 : !this.heldBy().length));
  }

  /**
   * The grace still runs its time, or its fence agent is fencing the
   * servers it awaited (status shows it not ready): a bounded, visible hold
   * of every login.
   */
  inProgress(): boolean {
    return !this.done && (this.clock.now() < this.deadline || this.fencing);
  }

  /** Missing servers that keep the grace from ending by time (no fence agent, no fence of their own). */
  heldBy(requester?: string): string[] {
    if (this.fenceMissing || mutant('grace-ends-over-unfenced-server')) return [];
    // A server's own logins are not held by it: the client stays on its NFS server.
    return [...this.missing].filter((id) => this.unfenced.has(id) && id !== requester);
  }

  private holdError(requester?: string): Unavailable {
    const ids = this.heldBy(requester);
    return new Unavailable(`the grace period is over but ${ids.join(', ')} could not fence its NFS server when last heard of and has not come back to this master: it may still serve clients; once it is surely down, run ${ids.map((id) => `nfsha fence-confirm ${id}`).join(' and ')}`);
  }

  introduced(serverId: string): void {
    this.missing.delete(serverId);
    this.finishIfNothingHolds();
  }

  /** Ends the grace once every awaited server is back, or once its time is over and no server without a fence holds it. */
  private finishIfNothingHolds(): void {
    if (this.missing.size === 0 && this.expectedAny) this.finish();
    else if (!this.done && this.clock.now() >= this.deadline && !this.fenceMissing && !this.heldBy().length) this.finish();
  }

  /**
   * The server introduced itself, but an NFS layer of it left with calls
   * unknown and nothing fenced since: it stays awaited as if it had not
   * come back, and without a fence of its own it holds others' logins after
   * the grace (until an operator confirms a fence, or it introduces itself
   * clean).
   */
  unaccounted(serverId: string, canFence: boolean): void {
    if (this.done) return;
    if (!this.missing.has(serverId)) this.addedUnaccounted.add(serverId);
    this.missing.add(serverId);
    if (!canFence) this.unfenced.add(serverId);
  }

  /** Servers unaccounted() made awaited that were not before. */
  private readonly addedUnaccounted = new Set<string>();

  /**
   * The server's fence works now (a new follower process fenced its NFS
   * server at start, or a fence made it whole): it no longer holds the grace
   * past its time, though a new process still does not end it early (a hung
   * gate of its predecessor runs out its lease meanwhile).
   */
  fenceWorks(serverId: string): void {
    if (this.done || !this.unfenced.delete(serverId)) return;
    this.finishIfNothingHolds();
  }

  /**
   * A server that introduced itself unaccounted says a fence made it whole.
   * A session that continues an earlier one speaks for everything its server
   * may serve: it counts as introduced. A new follower process does not (a
   * hung gate of its predecessor): only what unaccounted() added is undone,
   * and a server the grace awaited anyway stays awaited.
   */
  accounted(serverId: string, speaksForAll: boolean): void {
    if (this.done) return;
    this.fenceWorks(serverId);
    if (speaksForAll) return this.introduced(serverId);
    if (!this.addedUnaccounted.delete(serverId)) return;
    this.missing.delete(serverId);
    this.finishIfNothingHolds();
  }

  /** An operator confirmed this server is down: it no longer holds the grace. True if it was awaited. */
  fenceConfirmed(serverId: string): boolean {
    const was = this.missing.has(serverId);
    this.introduced(serverId);
    return was;
  }

  /** Resolves once `requester`'s logins may be granted; rejects while servers without a fence hold the grace. */
  ready(requester?: string): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    if (this.clock.now() >= this.deadline && !this.fenceMissing) {
      return this.heldBy(requester).length ? Promise.reject(this.holdError(requester)) : Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve);
      this.refusers.push((err) => (this.heldBy(requester).length ? reject(this.holdError(requester)) : resolve()));
    });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.refusers.length = 0;
    for (const w of this.waiters.splice(0)) w();
  }

  dispose(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
  }
}
