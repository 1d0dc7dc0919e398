import type { Kernel, Rng, SimProcess } from './kernel';
import type { SimHost, SimMaster, SimScvm, World } from './world';

/** One fault kind: injects itself now, and says what it hit (undefined: nothing to hit, not logged). */
export type FaultMenu = Array<[string, () => string | undefined]>;

/**
 * What a fault needs from the world, with the rules every fault obeys: no
 * pause of a process whose SCVM would then be wholly frozen without the
 * fence agent (mayPause), and no partition once the liveness phase began.
 */
export interface FaultKit {
  w: World;
  k: Kernel;
  r: Rng;
  scvm(): SimScvm;
  leader(): SimMaster;
  pause(p: SimProcess): void;
  cut(a: SimProcess, b: SimProcess): void;
}

export function faultKit(w: World): FaultKit {
  const k = w.kernel;
  const r = k.rng;
  return {
    w, k, r,
    scvm: () => w.scvms[r.int(w.scvms.length)],
    leader: () => w.masters.find((m) => m.isLeader()) ?? w.masters[r.int(w.masters.length)],
    // Follower and gate of one SCVM frozen at once is a whole SCVM frozen: no
    // self-fence can run, only the fence agent covers it (DESIGN §4). Without
    // the agent the second freeze is left out, however the faults combine.
    pause: (p) => { if (w.mayPause(p)) k.pause(p); },
    // Nor do partitions, etcd cuts or kills land after the liveness phase began.
    cut: (a, b) => { if (w.mayCut(a, b)) w.net.partition(a, b); },
  };
}

/** The host moves to another SCVM and resets its old connection at once (ss -K). */
export function leave(f: FaultKit, h: SimHost): string {
  const { w, r } = f;
  const to = r.pick(w.scvms.filter((x) => x.i !== h.route.target));
  const old = h.current;
  h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) });
  if (old) h.lost(old);
  return `scvm-${to.i}`;
}

/** `h` routes to SCVM `i` and has an open connection its gate accepted. */
export function connectedAt(h: SimHost, i: number): boolean {
  return h.route.target === i && !!h.current?.conn && !h.current.closed && h.current.gate === i;
}

/**
 * Cuts `p` off from every live master, both ways, for `forMs`; through
 * `cut`, which by default leaves out what the fault kit's rules forbid.
 */
export function cutFromMasters(f: FaultKit, p: SimProcess, forMs: number, cut: (a: SimProcess, b: SimProcess) => void = f.cut): void {
  const masters = f.w.masters.map((x) => x.proc).filter((mp): mp is NonNullable<typeof mp> => !!mp && !mp.dead);
  for (const mp of masters) cut(p, mp);
  f.k.after(forMs, () => { for (const mp of masters) f.w.net.heal(p, mp); });
}

/** Runs `then` as soon as `test()` holds, looked at now and every `everyMs` until `until` (given up then, or at the heal). */
export function whenSo(f: FaultKit, test: () => boolean, until: number, everyMs: number, then: () => void): void {
  const { w, k } = f;
  const poll = () => {
    if (w.healedAt !== undefined || k.now > until) return;
    if (test()) return then();
    k.after(everyMs, poll);
  };
  poll();
}

/** Runs `then` once `h` has a connection accepted at `s`'s gate (polled from `from` ms, given up after `within` ms). */
export function whenConnected(f: FaultKit, h: SimHost, s: SimScvm, from: number, within: number, then: () => void): void {
  const until = f.k.now + from + within;
  f.k.after(from, () => whenSo(f, () => connectedAt(h, s.i), until, 10, then));
}

/**
 * Brings a host x over to s, an SCVM that serves a host of its own: moved
 * just after the agents' route tick (every 500 ms), so it is admitted there
 * before its agent takes it home. `then` runs once x is connected there
 * (given up after 450 ms).
 */
export function visitServedScvm(f: FaultKit, then: (s: SimScvm, x: SimHost) => void): { s: SimScvm; x: SimHost } | undefined {
  const { w, k, r } = f;
  const s = r.pick(w.scvms.filter((y) => y.gate && !y.gate.proc.dead && w.hosts.some((h) => connectedAt(h, y.i))));
  if (!s || w.healedAt !== undefined) return undefined;
  const others = w.hosts.filter((h) => h.route.target !== s.i);
  if (!others.length) return undefined;
  const x = r.pick(others);
  const tick = 500 - (k.now % 500) + 1;
  k.after(tick, () => { if (w.healedAt === undefined && x.route.target !== s.i) x.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) }); });
  whenConnected(f, x, s, tick, 450, () => then(s, x));
  return { s, x };
}
