import type { Clock, TimerHandle } from '../common/clock';

/**
 * A new leader's grace period (DESIGN §4): it grants nothing an old session
 * might still hold until every registered Access Server has introduced itself
 * again, or the grace period has passed, whichever comes first. When it ends
 * by time, a registered server that never came back may be a frozen SCVM
 * whose NFS server still holds calls (its own fences could not run): with a
 * fence agent, those are fenced before anything is granted.
 */
export class Readiness {
  private readonly missing: Set<string>;
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
  ) {
    this.missing = new Set(expected);
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
      if (this.clock.now() < this.deadline) return this.arm();
      if (!this.missing.size || !this.fenceMissing) return this.finish();
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
    return this.done || (this.clock.now() >= this.deadline && (!this.fenceMissing || this.missing.size === 0));
  }

  introduced(serverId: string): void {
    this.missing.delete(serverId);
    if (this.missing.size === 0 && this.expectedAny) this.finish();
  }

  ready(): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    for (const w of this.waiters.splice(0)) w();
  }

  dispose(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
  }
}
