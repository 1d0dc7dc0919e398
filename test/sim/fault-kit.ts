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

/** Cuts `p` off from every live master, both ways, for `forMs`. */
export function cutFromMasters(f: FaultKit, p: SimProcess, forMs: number): void {
  const masters = f.w.masters.map((x) => x.proc).filter((mp): mp is NonNullable<typeof mp> => !!mp && !mp.dead);
  for (const mp of masters) f.cut(p, mp);
  f.k.after(forMs, () => { for (const mp of masters) f.w.net.heal(p, mp); });
}
