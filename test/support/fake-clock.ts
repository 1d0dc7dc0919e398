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
