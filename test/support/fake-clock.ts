import FakeTimers from '@sinonjs/fake-timers';
import type { Clock, TimerHandle } from '../../common/clock';

/** A Clock driven by @sinonjs/fake-timers: time moves only when the test ticks. */
export interface FakeClock extends Clock {
  tickAsync(ms: number): Promise<void>;
}

export function fakeClock(start = 1_000_000): FakeClock {
  const c = FakeTimers.createClock(start);
  return {
    now: () => c.now,
    setTimeout: (fn, ms) => c.setTimeout(fn, ms) as unknown as TimerHandle,
    clearTimeout: (h) => c.clearTimeout(h as unknown as FakeTimers.TimerId),
    tickAsync: async (ms) => { await c.tickAsync(ms); },
  };
}

/** Lets pending promise callbacks run without moving time. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/**
 * A fake clock whose timers fire `earlyMs` before they are due, as Node's do
 * after a stall (they are scheduled from the loop time it cached, which lags
 * the real clock by the stall). Code that trusts a timer to mean "the time
 * has come" breaks on it; code that re-checks the clock does not.
 */
export function earlyTimers(clock: FakeClock, earlyMs: number): FakeClock {
  return {
    ...clock,
    setTimeout: (fn, ms) => clock.setTimeout(fn, Math.max(0, ms - earlyMs)),
  };
}
