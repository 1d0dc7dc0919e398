import type { FaultKit, FaultMenu } from './fault-kit';
import type { Recipe } from './recipes';
import type { SimHost, SimScvm } from './world';

/** Fault kinds this file adds (schedule.ts draws them like any other). */
export const RACE_FAULT_KINDS: string[] = [
  'master-stall-over-move',
  'master-down-past-lease',
];

export const RACE_RECIPES: Recipe[] = [
  {
    // The master freezes (GC, CPU starvation) just as a holder goes silent
    // and its host moves on: the login and the silent holder's stream end
    // wait in its socket, and when it wakes the wait-out is armed from the
    // loop time cached before the freeze (race 8).
    name: 'master-stall-over-move',
    reaches: ['timers-trusted-on-time'],
    kinds: ['master-stall-over-move'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false },
  },
  {
    // The only master is down longer than a lease: every follower fences by
    // its deadline, and one SCVM's gate froze with a call just forwarded to
    // its hung NFS server (its last report shows none). When the master is
    // back, a fenced follower must not speak for what its gate still holds.
    name: 'master-down-past-lease',
    reaches: ['follower-fenced-keeps-session'],
    kinds: ['master-down-past-lease'],
    world: { mode: 'embedded', fence: 'none' },
    // One strike at a time (each takes the master down for seconds), and
    // hosts with one call at a time and think times (a report of the gate
    // then rarely catches a call in flight).
    swarm: { faultGapMs: [5500, 8000], thinkMaxMs: 1000, depthMax: 1 },
  },
];

/** A host whose route points at `s` (its own host first), if any. */
function hostOn(f: FaultKit, s: SimScvm): SimHost | undefined {
  return f.w.hosts.find((h) => h.i === s.i && h.route.target === s.i) ?? f.w.hosts.find((h) => h.route.target === s.i);
}

export function raceFaults(f: FaultKit): FaultMenu {
  const { w, k, r, pause, cut } = f;
  return [
    ['master-stall-over-move', () => {
      // A follower's stream to the master breaks and stays cut, its NFS
      // server hangs with calls queued, the leader freezes for a second or
      // two, and meanwhile a host that SCVM serves moves to another one:
      // the login for it is handled first thing when the leader wakes.
      const s = f.scvm();
      const m = f.leader();
      const h = hostOn(f, s);
      if (!s.followerProc || !m.proc || !h || w.healedAt !== undefined) return undefined;
      const fp = s.followerProc, mp = m.proc;
      const nfs = s.nfs.proc;
      pause(nfs);
      k.after(r.between(3000, 5000), () => k.resume(nfs));
      pause(mp);
      const stall = r.between(1200, 2600);
      k.after(stall, () => k.resume(mp));
      for (const x of w.masters) w.net.reset(fp, x.address);
      cut(fp, mp);
      k.after(r.between(3000, 6000), () => w.net.heal(fp, mp));
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(20, 400), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, m${m.k} (${stall.toFixed(0)} ms), ${h.hostId}→scvm-${to.i}`;
    }],
    ['master-down-past-lease', () => {
      const s = f.scvm();
      const m = f.leader();
      const h = hostOn(f, s);
      const g = s.gate?.proc;
      if (!m.proc || !h || !g || w.healedAt !== undefined) return undefined;
      const nfs = s.nfs.proc;
      pause(nfs);
      k.after(r.between(8000, 12000), () => k.resume(nfs));
      // The gate freezes right after it forwarded a call to the hung server
      // (a GC pause or a preempted process), before its next report.
      const freeze = () => {
        if (w.healedAt !== undefined || g.dead) return;
        pause(g);
        k.after(r.between(7000, 10000), () => k.resume(g));
      };
      let waited = 0;
      const poll = () => {
        if (w.pendingCalls(h.hostId, s.i) > 0 || waited > 1500) return freeze();
        waited += 2;
        k.after(2, poll);
      };
      poll();
      const down = r.between(3300, 4800);
      const at = r.between(200, 700);
      k.after(at, () => {
        m.kill();
        k.after(down, () => m.restart());
      });
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(at + down + r.between(0, 1500), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, m${m.k} down ${down.toFixed(0)} ms, ${h.hostId}→scvm-${to.i}`;
    }],
  ];
}
