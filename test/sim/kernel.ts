import { promiseHooks } from 'node:v8';
import type { Clock, TimerHandle } from '../../common/clock';

/** A small seeded PRNG (sfc32 seeded by splitmix32): a schedule is a pure function of its seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split(); this.b = split(); this.c = split(); this.d = split();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Hex id of `bytes` bytes (session and revoke ids). */
  hex(bytes = 8): string {
    let s = '';
    for (let i = 0; i < bytes; i++) s += this.int(256).toString(16).padStart(2, '0');
    return s;
  }
}

/** One machine's CLOCK_MONOTONIC: an offset and a rate against virtual time (drift). */
export class Machine {
  constructor(readonly name: string, public offset: number, public rate: number) {}
}

/** A process: its events wait while it is paused and vanish when it dies. */
export class SimProcess {
  paused = false;
  dead = false;
  /**
   * Runs only the simulation's own synchronous code (a host's NFS client, an
   * NFS server): its events start no promise chains and can only end a
   * call or start one at a gate, never make a gate serve, so the kernel
   * neither settles promises nor checks the invariants after them (over
   * half of all events; the invariants are checked after every event of
   * the real code).
   */
  simOnly = false;
  /** Paused only by a stall (Kernel.stall), which ends it. */
  stalled = false;
  /** Virtual time the current pause began. */
  pausedAt = 0;
  /** Virtual time the last pause ended (never paused: -Infinity). */
  resumedAt = -Infinity;
  /** Virtual time the process started. */
  readonly startedAt: number;
  /** Events that came due while paused, in arrival order. */
  readonly deferred: SimEvent[] = [];
  /**
   * The loop time Node cached for the callback now running: timers set now
   * count from it. After a pause it lags the clock by the pause, so timers set
   * by the I/O handled first fire early (issue: timers are trusted to be on time).
   */
  loopTime?: number;
  readonly clock: ProcClock;

  constructor(readonly kernel: Kernel, readonly name: string, readonly machine: Machine) {
    this.clock = new ProcClock(kernel, this);
    this.startedAt = kernel.now;
  }
}

export type EventKind = 'io' | 'timer';

export interface SimEvent {
  at: number;
  order: number;
  proc?: SimProcess;
  kind: EventKind;
  run: () => void;
  cancelled: boolean;
  /** Run on the loop time the process had cached when it stopped (I/O handled first after a pause). */
  staleLoopTime?: number;
  /**
   * Changes nothing the invariant check reads (an NFS reply reaching its
   * gate): unless it started promise work, the check after it is skipped.
   */
  quiet?: boolean;
  /** A timer whose lateness was drawn (Kernel.timerLateness), once. */
  lateAsked?: boolean;
}

/** The clock a process sees: its machine's monotonic time; timers run on the kernel. */
export class ProcClock implements Clock {
  constructor(private readonly kernel: Kernel, private readonly proc: SimProcess) {}

  now(): number {
    return this.proc.machine.offset + this.kernel.now * this.proc.machine.rate;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const base = this.proc.loopTime ?? this.kernel.now;
    return this.kernel.schedule(base + Math.max(0, ms) / this.proc.machine.rate, fn, this.proc, 'timer') as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as unknown as SimEvent).cancelled = true;
  }
}

/** A binary min-heap of events by (at, order). */
class EventHeap {
  private readonly items: SimEvent[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): SimEvent | undefined {
    return this.items[0];
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  push(e: SimEvent): void {
    const h = this.items;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      const t = h[i];
      h[i] = h[p];
      h[p] = t;
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        const t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
      }
    }
    return top;
  }
}

/**
 * Counts every promise created or settled in this thread, and every promise
 * job run: the kernel's way to see whether an event left promise callbacks
 * to run. The real code and the simulation queue work no other way (no
 * queueMicrotask or nextTick).
 */
let promiseActivity = 0;
let promiseJobs = 0;
promiseHooks.createHook({
  init: () => { promiseActivity++; },
  settled: () => { promiseActivity++; },
  before: () => { promiseJobs++; },
});

/** What one `await undefined` on an empty microtask queue creates and settles (measured: 3-4). */
const EMPTY_TURN_ACTIVITY = 4;

/**
 * Lets pending promise callbacks (the real code's awaits) run before the
 * next event, as Node runs every microtask before it polls for I/O again.
 * Each turn queues this function's own continuation behind everything
 * already queued; a turn in which that continuation was the only job that
 * ran (and nothing was created beyond what an empty turn creates) found
 * the queue empty, so the queue is drained exactly, in as many turns as
 * the longest chain of awaits needs. A bound stops a runaway loop from
 * hanging the schedule. Deterministic, and much cheaper than a macrotask
 * per step (or a fixed number of turns).
 */
export async function settle(): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    const jobs = promiseJobs;
    const activity = promiseActivity;
    await undefined;
    if (promiseJobs - jobs === 1 && promiseActivity - activity <= EMPTY_TURN_ACTIVITY) return;
  }
}

/**
 * A bounded trace of what happened, for a failing schedule's report. Lines
 * are formatted only when read (tail): most schedules pass and print nothing,
 * and formatting every log line was a large share of a schedule's cost.
 */
export class Trace {
  private readonly times: number[] = [];
  private readonly whos: string[] = [];
  private readonly texts: Array<string | (() => string)> = [];
  constructor(private readonly kernel: Kernel, public keep = 400) {}

  add(who: string, text: string | (() => string)): void {
    this.times.push(this.kernel.now);
    this.whos.push(who);
    this.texts.push(text);
    if (this.times.length > this.keep * 2) {
      const drop = this.times.length - this.keep;
      this.times.splice(0, drop);
      this.whos.splice(0, drop);
      this.texts.splice(0, drop);
    }
  }

  tail(n = this.keep): string[] {
    const from = Math.max(0, this.times.length - n);
    const out: string[] = [];
    for (let i = from; i < this.times.length; i++) {
      const t = this.texts[i];
      out.push(`${this.times[i].toFixed(1).padStart(9)} ${this.whos[i].padEnd(12)} ${typeof t === 'string' ? t : t()}`);
    }
    return out;
  }
}

/**
 * Virtual time and a seeded scheduler: events run one at a time in time
 * order, ties broken at random; after each one every promise callback runs
 * (settle) and `afterStep` checks the invariants. Paused processes hold their
 * events; on resume their I/O is delivered before their overdue timers, with
 * the stale loop time Node would have, as a real process waking from SIGSTOP.
 */
export class Kernel {
  now = 0;
  readonly rng: Rng;
  readonly trace: Trace;
  /**
   * Buggify: for a timer of `proc` that came due, how long its event loop
   * is busy first (a loaded machine), if at all: the process stalls, as if
   * paused, for that long (`stall`).
   */
  timerLateness?: (proc: SimProcess) => number;
  /** Sees every structured event the real code logs (`ev` set), as it is logged: the world's checks read the components' own decisions. */
  onLogEvent?: (who: string, ev: string, fields: Record<string, unknown>, debug?: boolean) => void;
  private readonly heap = new EventHeap();
  steps = 0;
  /**
   * When a fault last changed what runs or what reaches whom (a process
   * paused, resumed or killed; the network, etcd or the registry broken or
   * healed): a fence with nothing like it since the last one is needless
   * (World.fenceScvm).
   */
  disturbedAt = -Infinity;

  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
    this.trace = new Trace(this);
  }

  schedule(at: number, run: () => void, proc?: SimProcess, kind: EventKind = 'io'): SimEvent {
    // Every field set here, in one order: events that gained fields later
    // had several shapes, and the heap's comparisons went megamorphic.
    const e: SimEvent = { at: Math.max(at, this.now), order: this.rng.next(), proc, kind, run, cancelled: false, staleLoopTime: undefined, quiet: false, lateAsked: false };
    this.heap.push(e);
    return e;
  }

  /** Runs `fn` at `delay` ms of virtual time from now, outside any process (the world's own actions). */
  after(delay: number, fn: () => void): SimEvent {
    return this.schedule(this.now + delay, fn);
  }

  pause(p: SimProcess): void {
    // A fault that freezes a stalled process keeps it frozen past the stall.
    p.stalled = false;
    if (p.paused || p.dead) return;
    p.paused = true;
    p.pausedAt = this.now;
    this.disturbedAt = this.now;
  }

  /**
   * `p`'s event loop is busy for `ms`: it is paused that long, unless
   * something else pauses it meanwhile (then that one resumes it). A stall
   * is a pause, so what may not be paused (World.mayPause) may not stall:
   * a late timer used to be late on its own, and a gate's fence point 874 ms
   * late, decided before its follower froze, ran after the master's wait-out
   * ended (seeds 812916475 and 5361 of slow-fence-at-drift-bound).
   */
  stall(p: SimProcess, ms: number): void {
    if (p.paused || p.dead) return;
    this.pause(p);
    p.stalled = true;
    this.after(ms, () => { if (p.stalled) this.resume(p); });
  }

  resume(p: SimProcess): void {
    p.stalled = false;
    if (!p.paused) return;
    p.paused = false;
    p.resumedAt = this.now;
    if (p.dead) return;
    this.disturbedAt = this.now;
    const held = p.deferred.splice(0);
    // I/O first (Node polls sockets before it runs the timers that came due),
    // each handled on the loop time cached when the process stopped.
    const stale = p.pausedAt;
    let k = 0;
    for (const e of held) {
      // The same event object: a timer handle cleared later must still cancel it.
      e.at = this.now;
      if (e.kind === 'io') {
        e.order = -1 + (k++) * 1e-6;
        e.staleLoopTime = stale;
      } else {
        e.order = this.rng.next();
      }
      this.heap.push(e);
    }
  }

  kill(p: SimProcess): void {
    this.disturbedAt = this.now;
    p.dead = true;
    p.deferred.length = 0;
  }

  /** Runs events up to virtual time `until`; `afterStep` may throw to stop the run. */
  async runUntil(until: number, afterStep: () => void): Promise<void> {
    let busy = false;
    for (;;) {
      const e = this.heap.peek();
      if (!e || e.at > until) break;
      this.heap.pop();
      if (e.cancelled) continue;
      const p = e.proc;
      if (p?.dead) continue;
      if (p && !p.paused && e.kind === 'timer' && !e.lateAsked && this.timerLateness) {
        // Once per timer: after the stall it runs.
        e.lateAsked = true;
        this.now = e.at;
        const late = this.timerLateness(p);
        if (late > 0) this.stall(p, late);
      }
      if (p?.paused) {
        p.deferred.push(e);
        continue;
      }
      this.now = e.at;
      this.steps++;
      // Node caches the loop time for a whole callback and the promise
      // callbacks it starts; after a pause that time is stale.
      if (p && e.staleLoopTime !== undefined) p.loopTime = e.staleLoopTime;
      try {
        // An event that created or settled no promise (most of them: a call
        // crossing a gate runs only synchronous code) left nothing to run.
        const before = promiseActivity;
        e.run();
        busy = promiseActivity !== before;
        if (!p?.simOnly && busy) await settle();
      } finally {
        if (p) p.loopTime = undefined;
      }
      if (!p?.simOnly && (busy || !e.quiet)) afterStep();
    }
    this.now = Math.max(this.now, until);
  }
}
