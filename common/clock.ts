/**
 * Monotonic time and timers behind one interface, so lease and session logic can
 * run on a fake clock in tests. Times are milliseconds on this machine's
 * CLOCK_MONOTONIC: comparable between processes on the same machine (event logs
 * of several gates are checked against each other), never across machines.
 */
export interface Clock {
  /** Milliseconds on the monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | object;

export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export const systemClock: Clock = {
  now: monotonicMs,
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return t as unknown as TimerHandle;
  },
  clearTimeout: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
};


/** A repeating timer on a Clock (each run scheduled after the last). */
export function setIntervalOn(clock: Clock, ms: number, fn: () => void): { stop(): void } {
  let handle: TimerHandle | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    fn();
    if (!stopped) handle = clock.setTimeout(tick, ms);
  };
  handle = clock.setTimeout(tick, ms);
  return { stop: () => { stopped = true; if (handle) clock.clearTimeout(handle); } };
}
