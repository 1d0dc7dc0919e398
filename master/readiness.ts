import type { Clock, TimerHandle } from '../common/clock';

/**
 * A new leader's grace period (DESIGN §4): it grants nothing an old session
 * might still hold until every registered Access Server has introduced itself
 * again, or the grace period has passed, whichever comes first.
 */
export class Readiness {
  private readonly missing: Set<string>;
  /** With nobody registered there is nobody to wait for but the unknown: wait the grace out. */
  private readonly expectedAny: boolean;
  private readonly deadline: number;
  private done = false;
  private readonly waiters: Array<() => void> = [];
  private timer?: TimerHandle;

  constructor(private readonly clock: Clock, expected: Iterable<string>, graceMs: number) {
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
      if (this.clock.now() >= this.deadline) this.finish();
      else this.arm();
    }, Math.max(0, this.deadline - this.clock.now()));
  }

  isReady(): boolean {
    return this.done || this.clock.now() >= this.deadline;
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
