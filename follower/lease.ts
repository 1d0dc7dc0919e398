import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../common/clock';

export enum LeaseState {
  /** No session with the master yet: admit nothing. */
  NoSession = 'no-session',
  /** A keepalive sent less than TTL ago was acked: may serve until the deadline. */
  Live = 'live',
  /** The deadline passed without an ack: every client dropped, admit nothing. */
  Fenced = 'fenced',
}

export interface LeaseEvents {
  renewed: [remainingMs: number];
  fenced: [reason: string];
}

/**
 * The follower's side of the session lease (DESIGN §4). The lease starts when
 * the follower *sent* the keepalive the master acked, so it always ends before
 * the master's view of it (which starts on receipt). Liveness is computed from
 * the clock on every question, never only from a timer having fired: a process
 * that wakes from SIGSTOP may handle I/O before its timers run.
 */
export class Lease extends EventEmitter<LeaseEvents> {
  private state = LeaseState.NoSession;
  private deadline = 0;
  private ttlMs = 0;
  private readonly sentAt = new Map<number, number>();
  private timer?: TimerHandle;

  constructor(private readonly clock: Clock) {
    super();
  }

  get current(): LeaseState {
    if (this.state === LeaseState.Live && this.clock.now() >= this.deadline) return LeaseState.Fenced;
    return this.state;
  }

  isLive(): boolean {
    return this.current === LeaseState.Live;
  }

  remainingMs(): number {
    return this.isLive() ? Math.max(0, this.deadline - this.clock.now()) : 0;
  }

  /**
   * The deadline (clock ms) of the latest lease, live or not: its NFS layers
   * may have served until then, so it still matters after a fence.
   */
  get deadlineMs(): number {
    return this.deadline;
  }

  /** Records when keepalive `seq` left. */
  sent(seq: number): void {
    this.sentAt.set(seq, this.clock.now());
  }

  /** The master acked `seq`: the lease runs TTL from when `seq` was sent. */
  acked(seq: number, ttlMs: number): void {
    const sent = this.sentAt.get(seq);
    if (sent === undefined) return;
    for (const s of this.sentAt.keys()) if (s <= seq) this.sentAt.delete(s);
    // Only start() revives a fenced lease: a new or resumed session.
    if (this.current !== LeaseState.Live) return;
    this.ttlMs = ttlMs;
    const deadline = sent + ttlMs;
    if (deadline > this.deadline) {
      this.deadline = deadline;
      this.arm();
      this.emit('renewed', this.deadline - this.clock.now());
    }
  }

  /** A session was granted in reply to the introduction sent at `introSentAt`. */
  start(introSentAt: number, ttlMs: number): boolean {
    const sent = introSentAt;
    this.sentAt.clear();
    if (sent + ttlMs <= this.clock.now()) return false;
    this.ttlMs = ttlMs;
    this.state = LeaseState.Live;
    this.deadline = sent + ttlMs;
    this.arm();
    this.emit('renewed', this.deadline - this.clock.now());
    return true;
  }

  /** Drops the lease now (deadline passed, or the master said the session is gone). */
  fence(reason: string): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const wasServing = this.state === LeaseState.Live;
    this.state = LeaseState.Fenced;
    this.sentAt.clear();
    if (wasServing) this.emit('fenced', reason);
  }

  private arm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.clock.now() >= this.deadline) this.fence(`no keepalive acked within ${this.ttlMs} ms`);
      else this.arm();
    }, this.deadline - this.clock.now());
  }

  /** Stops the timer for shutdown. */
  dispose(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
