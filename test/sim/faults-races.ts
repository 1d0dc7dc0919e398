import { connectedAt, cutFromMasters, leave, visitServedScvm, type FaultKit, type FaultMenu } from './fault-kit';
import type { Recipe } from './recipes';
import type { SimHost, SimScvm } from './world';
import type { SimProcess } from './kernel';

/** Fault kinds this file adds (schedule.ts draws them like any other). */
export const RACE_FAULT_KINDS: string[] = [
  'master-stall-over-move',
  'master-down-past-lease',
  'readdress-under-gate-stall',
  'readdress-over-failover',
  'join-while-registry-fails',
  'readdress-late-admit-then-leave',
  'lease-stretched-by-gate-stall',
  'hung-gate-over-follower-restart-and-failover',
  'limit-lowered-over-failover',
  'reconnect-then-leave',
  'etcd-slow',
  'holder-cut-as-host-leaves',
  'leader-stalls-loading-registry',
];

export const RACE_RECIPES: Recipe[] = [
  {
    // A new leader freezes as it loads the registry, with a lease keepalive
    // on its way too, and wakes past its lease's safe end: the read's
    // answer, handled first, finds the lease lapsed on this clock, and the
    // keepalive's, handled next, renews it (seed 398908720). A term given
    // up there leaves a leader that never builds one.
    name: 'new-leader-stalls-loading-registry',
    reaches: ['master-term-given-up-on-lapse'],
    kinds: ['leader-stalls-loading-registry'],
    world: { mode: 'elected' },
    swarm: { faultGapMs: [6000, 9000], lateTimerChance: 0 },
    // Reaches in 16 of 60 seeds (2026-12-08): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
  },
  {
    // Race 1: a host moves on while its holder's follower is cut off from
    // the masters; the login elsewhere revokes, condemns and waits out the
    // old session, and the follower comes back in a new session claiming
    // the host before the wait-out ends. A grant that does not look again
    // leaves the host served by both.
    name: 'holder-cut-as-host-leaves',
    reaches: ['master-grants-without-looking-again'],
    kinds: ['holder-cut-as-host-leaves'],
    // Without the fence agent the master waits the session out (the agent
    // would kill the SCVM at once).
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 4 s.
    swarm: { faultGapMs: [3000, 6000] },
    // It reaches its bug in 15 of 60 seeds: at weight 1 random searches
    // took 340 and 947 schedules.
    weight: 3,
  },
  {
    // etcd answers late for a while (fsyncs stalling on its disk): the
    // leader's lease keepalives time out until it steps down, and the
    // answer to one sent before that arrives just after. That answer
    // extends a lease whose term is over: leading again on that key would
    // start a second term with the same epoch, whose fencing tokens count
    // from 1 again (swarm seed 583294829): hosts moving meanwhile are
    // granted those tokens a second time.
    name: 'etcd-answers-late',
    reaches: ['election-leads-again-on-same-key'],
    kinds: ['etcd-slow', 'host-move', 'host-move', 'host-move', 'host-move'],
    world: { mode: 'elected' },
    swarm: { faultGapMs: [800, 2500] },
  },
  {
    // The master freezes (GC, CPU starvation) just as a holder goes silent
    // and its host moves on: the login and the silent holder's stream end
    // wait in its socket, and when it wakes the wait-out is armed from the
    // loop time cached before the freeze (race 8).
    name: 'master-stall-over-move',
    reaches: ['timers-trusted-on-time'],
    kinds: ['master-stall-over-move'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false },
    // Reaches in 13 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
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
  {
    // A host reaches a remote SCVM, switches to that SCVM's other address
    // once admitted, and the gate stalls with the follower's answer for the
    // new address on its way while the old connection closes: the release
    // of the old one crosses the admission of the new one (race 2). The
    // host's agent then takes it home.
    name: 'readdress-under-gate-stall',
    reaches: ['follower-release-ignores-newer-admission'],
    kinds: ['readdress-under-gate-stall'],
    world: { fence: 'reliable' },
  },
  {
    // The elected leader loses etcd; just before it steps down hosts switch
    // to the other address of the remote SCVM they are admitted at (the old
    // connection reset). A release of the old one (its logout's answer late,
    // as a share of unary answers are here) holds the client's lock while
    // the new address's login was answered by the old leader, and the
    // follower moves to the new leader meanwhile.
    name: 'readdress-over-failover',
    reaches: ['follower-grant-after-lock-wait-unchecked'],
    kinds: ['readdress-over-failover'],
    world: { mode: 'elected', fence: 'reliable' },
    swarm: { lateReplyRate: 0.2, lateReplyMaxMs: 3000, faultGapMs: [2500, 4000] },
    // It reaches its bug in 8 of 60 seeds: at weight 1 searches found it
    // after 221 to 3,423 random schedules (about 1,200 on average), close
    // enough to the 5,000 budget to fail CI about once in 60 runs.
    weight: 3,
  },
  {
    // A server joins a running cluster while the registry's writes fail (a
    // full disk, etcd over its quota); its host fails back to it; then the
    // leader changes and that host moves on, its old connection left open
    // with calls out. A server granted a session with no record is one the
    // next leader's grace does not wait for: it grants the host elsewhere
    // before that server re-introduces its claim (race 5).
    name: 'join-while-registry-fails',
    reaches: ['master-registers-after-grant'],
    kinds: ['join-while-registry-fails'],
    world: { lateServer: true },
    // Each strike takes about 10 s; the first comes early (the server joins once).
    swarm: { faultGapMs: [1000, 3000] },
    // It reaches its bug in 11 of 60 seeds: at weight 1 a random search
    // took about 1,100 schedules to find it, the slowest of the search.
    weight: 3,
  },
  {
    // A host reaches a remote SCVM through one of its addresses, and the
    // follower's answer to that admission is late (a unary status delivered
    // apart from the stream); the host switches to the other address at
    // once, leaving the first connection waiting. The second is admitted,
    // then the host moves on and closes it: the gate's release covers both
    // admissions, and the master grants the host elsewhere before the late
    // answer reaches the gate (campaign seed 488470164).
    name: 'readdress-late-admit-then-leave',
    reaches: ['gate-admit-after-release'],
    kinds: ['readdress-late-admit-then-leave'],
    world: { fence: 'reliable' },
    // Each strike takes about 3 s.
    swarm: { faultGapMs: [2000, 5000] },
    // Reaches in 15 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
  },
  {
    // A gate stalls (a GC pause, a VM stun) with lease renewals on their
    // way; its follower is cut off from the master meanwhile and then
    // freezes before its own lease ends, and a host the gate serves moves on.
    // The master waits out the follower's lease and grants the host
    // elsewhere: a renewal read late must not stretch the gate's lease past
    // the follower's (race 6, the old relative lease protocol).
    name: 'lease-stretched-by-gate-stall',
    reaches: ['relative-lease-times'],
    kinds: ['lease-stretched-by-gate-stall'],
    // A fence, so the master waits the silent holder out; no fence agent,
    // which would kill the whole SCVM first.
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 8 s.
    swarm: { faultGapMs: [5000, 9000] },
    // Reaches in 14 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
  },
  {
    // A gate hangs with a host's calls queued; its follower dies and a new
    // follower process starts (its start fence kills the NFS server), and
    // the leader restarts. The host moves on, its old connection left open;
    // the gate wakes before its lease's stop point and reads the queued calls
    // before its stream's end. A new follower process cannot speak for the
    // hung gate of its predecessor: the new leader's grace must run its time
    // (seeds 19 and 1040). With the fence agent, which kills the SCVM at the
    // grace's end (the simulation lets a follower die under a frozen gate
    // only then).
    name: 'hung-gate-over-follower-restart-and-failover',
    reaches: ['master-grace-ended-by-new-follower'],
    kinds: ['hung-gate-over-follower-restart-and-failover'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: true },
    // Each strike takes about 6 s (the fence agent's kill and restart).
    swarm: { faultGapMs: [5000, 9000] },
  },
  {
    // An operator lowers the per-session client limit in a rolling restart
    // of the master: a server serving two clients introduces itself to the
    // restarted master, which allows one, while that server's gate stalls.
    // The claim over the limit is still a fact (the gate serves it until the
    // follower's drop reaches it): the client's login elsewhere must wait
    // for its revoke there (race 7).
    name: 'limit-lowered-over-failover',
    reaches: ['master-over-limit-claim-unheld'],
    kinds: ['limit-lowered-over-failover'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false, maxClientsPerSession: 2, limitAfterRestart: 1 },
    swarm: { faultGapMs: [4000, 8000] },
  },
  {
    // A host's connection is reset and it reconnects to the same gate: the
    // follower logs the client out and in again, under a newer token. Many
    // requests arrive a second time, late (a copy held up on the way), so
    // the old logout may come again after the new login; the host then
    // moves on while its calls drain at the gate (campaign seed 53387).
    name: 'late-logout-copy',
    reaches: ['master-logout-frees-newer-grant'],
    kinds: ['reconnect-then-leave'],
    swarm: { lateDuplicateRate: 0.3, lateDuplicateMaxMs: 1500, faultGapMs: [2500, 5000], depthMax: 8, nfsTailChance: 0.2, nfsTailMaxMs: 400 },
    // Reaches in 10 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 4,
  },
];

/** A host whose route points at `s` (its own host first), if any. */
function hostOn(f: FaultKit, s: SimScvm): SimHost | undefined {
  return f.w.hosts.find((h) => h.i === s.i && h.route.target === s.i) ?? f.w.hosts.find((h) => h.route.target === s.i);
}

export function raceFaults(f: FaultKit): FaultMenu {
  const { w, k, r, pause, cut } = f;
  /** Gate process and host pairs a readdress already went through (a gate remembers which client an address is). */
  const readdressed = new Set<string>();
  /**
   * A host and a remote SCVM whose gate has seen neither of the host's
   * addresses (marked used), or, once every pair is used, a gate restarted
   * (it forgets the addresses it saw) and what was done.
   */
  const freshPair = (): readonly [SimHost, SimScvm] | string => {
    const pairs = w.hosts.flatMap((h) => w.scvms.filter((x) => x.i !== h.i && x.gate && !x.gate.proc.dead && !readdressed.has(`${x.gate.proc.name}|${h.hostId}`)).map((x) => [h, x] as const));
    if (!pairs.length) {
      const x = f.scvm();
      x.killGate();
      k.after(r.between(100, 300), () => x.revive());
      return `gate of scvm-${x.i} restarted`;
    }
    const [h, t] = r.pick(pairs);
    readdressed.add(`${t.gate!.proc.name}|${h.hostId}`);
    return [h, t];
  };
  return [
    ['join-while-registry-fails', () => {
      const s = w.scvms[w.scvms.length - 1];
      if (!w.cfg.lateServer || s.followerProc || w.healedAt !== undefined) return undefined;
      const until = k.now + r.between(300, 2000);
      w.failRegistryWritesUntil(until);
      s.revive();
      // Once its host is back there (the agent's hold-down), the leader
      // changes; then the host moves on, the old connection left open.
      const h = w.hosts[s.i - 1];
      k.after(r.between(4500, 7500), () => {
        if (w.healedAt !== undefined) return;
        const m = f.leader();
        m.kill();
        // The joined server's follower is cut off from every master a
        // while (the restarted one too): its gate serves on its lease, and
        // the next leader hears of its claim only later.
        const fp = s.followerProc;
        // Not past its gate's lease stop point (about 2 s after the last renewal).
        const cutFor = r.between(300, 1200);
        const isolate = () => { if (fp) cutFromMasters(f, fp, cutFor); };
        isolate();
        const down = r.between(100, 600);
        k.after(down, () => { m.restart(); isolate(); });
        // The host moves on as the next leader starts, its old connection
        // left open with calls out.
        k.after(down + r.between(50, 800), () => {
          if (w.healedAt !== undefined || h.route.target !== s.i) return;
          const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
          h.move({ target: to.i, via: r.pick(['storage', 'mgmt'] as const) }, true);
        });
      });
      return `scvm-${s.i} joins, writes fail for ${(until - k.now).toFixed(0)} ms; the leader restarts later`;
    }],
    ['holder-cut-as-host-leaves', () => {
      // A host h served at s moves on, its old connection left open, as s's
      // follower is cut off from the masters: the revoke for h's login
      // elsewhere is lost, and the master condemns the session (no ack in
      // 1 s) and waits it out. Then the follower's stream is reset: it
      // opens a new session at once, its lease (and its gate's) still
      // running, claiming h before the wait-out ends (race 1).
      const hosts = w.hosts.filter((x) => connectedAt(x, x.route.target));
      if (!hosts.length) return undefined;
      const h = r.pick(hosts);
      const s = w.scvms[h.route.target - 1];
      const fp = s.followerProc;
      if (!fp || fp.dead) return undefined;
      // Past the revoke's ack timeout, short of the gate's stop point.
      const cutMs = r.between(1100, 1700);
      cutFromMasters(f, fp, cutMs);
      k.after(cutMs, () => { if (w.healedAt === undefined && !fp.dead) for (const x of w.masters) w.net.reset(fp, x.address); });
      k.after(r.between(0, 60), () => {
        if (w.healedAt !== undefined || h.route.target !== s.i) return;
        const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
        h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }, true);
      });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['leader-stalls-loading-registry', () => {
      // etcd answers late (fsyncs stalling) and the leader dies. Whoever
      // wins next sends its last registry read while a lease keepalive is
      // still on its way, and freezes there until a moment between the
      // safe ends its previous keepalive and this one give its lease. On
      // waking, Node handles the answers that came meanwhile before any
      // timer, in the order they came: the read's and the keepalive's
      // either way round.
      const etcd = w.etcd;
      const m = f.leader();
      if (!etcd || !m.proc || m.proc.dead || w.healedAt !== undefined) return undefined;
      etcd.slowFor(r.between(3000, 5000), [20, 250]);
      m.kill();
      k.after(r.between(300, 3000), () => m.restart());
      const keepalivesSent = new Map<SimProcess, number[]>();
      const readAt = new Map<SimProcess, number>();
      const armedUntil = k.now + 6000;
      etcd.onRequest = (p, what, key) => {
        if (k.now > armedUntil || w.healedAt !== undefined) {
          etcd.onRequest = undefined;
          return;
        }
        if (what === 'keepalive') keepalivesSent.set(p, [...(keepalivesSent.get(p) ?? []), k.now].slice(-2));
        const winner = w.masters.find((x) => x.proc === p);
        if (!winner?.leadership) return;
        const sent = keepalivesSent.get(p) ?? [];
        const stallUntilSafeEnd = (previous: number, outstanding: number) => {
          etcd.onRequest = undefined;
          const safeMs = (0.9 * winner.leadership!.leaseMs) / p.machine.rate;
          const wake = r.between(previous + safeMs, outstanding + safeMs);
          if (wake <= k.now) return;
          pause(p);
          k.after(wake - k.now, () => k.resume(p));
        };
        if (what === 'read' && key.endsWith('registry/maintenance/')) {
          readAt.set(p, k.now);
          // A keepalive sent within its deadline (300 ms at a 1 s lease) may still be out.
          if (sent.length === 2 && k.now - sent[1] <= 300) stallUntilSafeEnd(sent[0], sent[1]);
        } else if (what === 'keepalive' && sent.length === 2 && k.now - (readAt.get(p) ?? -Infinity) <= 250) {
          // Or the read is still out as the next keepalive goes.
          stallUntilSafeEnd(sent[0], sent[1]);
        }
      };
      return `m${m.k}`;
    }],
    ['etcd-slow', () => {
      if (!w.etcd || w.healedAt !== undefined) return undefined;
      const ms = r.between(700, 1100);
      w.etcd.slowFor(ms, [250, 450]);
      return `${ms.toFixed(0)} ms`;
    }],
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
    ['readdress-under-gate-stall', () => {
      // A host reaches a remote SCVM through one of its addresses, then
      // switches to the other: the gate asks for the new address while the
      // old connection closes, and the gate stalls (a GC pause) with the
      // follower's answer on its way. Then the host moves on.
      const pair = freshPair();
      if (typeof pair === 'string') return pair;
      const [h, t] = pair;
      const first = r.pick(['storage', 'mgmt'] as const);
      // Just after the agents' route tick (every 500 ms), so that the host's
      // agent moves it home only after the readdress.
      const start = 500 - (k.now % 500) + 1;
      k.after(start, () => { if (w.healedAt === undefined) h.move({ target: t.i, via: first }); });
      // Once the host's connection there is admitted (or it gave up), it
      // switches to the other address; the gate stalls a moment later.
      const readdress = () => {
        if (w.healedAt !== undefined) return;
        h.move({ target: t.i, via: first === 'storage' ? 'mgmt' : 'storage' });
        // The old connection is reset at once (ss -K, as the agent does on Linux).
        for (const old of [...h.older]) if (old.gate === t.i) h.lost(old);
        const g = t.gate?.proc;
        if (g) k.after(r.between(0.5, 4), () => { pause(g); k.after(r.between(20, 300), () => k.resume(g)); });
      };
      let waited = 0;
      const poll = () => {
        const c = h.current;
        if (h.route.target !== t.i) return;
        if ((c && c.gate === t.i && c.conn) || waited > 450) return readdress();
        waited += 2;
        k.after(2, poll);
      };
      k.after(start + 2, poll);
      const to = r.pick(w.scvms.filter((x) => x.i !== t.i));
      k.after(start + 700, () => { if (w.healedAt === undefined && h.route.target === t.i) h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }); });
      return `${h.hostId}→scvm-${t.i} (${first}, then the other), then scvm-${to.i}`;
    }],
    ['readdress-late-admit-then-leave', () => {
      if (w.healedAt !== undefined) return undefined;
      const pair = freshPair();
      if (typeof pair === 'string') return pair;
      const [h, t] = pair;
      const gp = t.gate!.proc;
      const first = r.pick(['storage', 'mgmt'] as const);
      const start = 500 - (k.now % 500) + 1;
      k.after(start, () => {
        if (w.healedAt !== undefined) return;
        w.net.lateNext.set(`${gp.name} Admit`, r.between(1200, 2500));
        h.move({ target: t.i, via: first });
        // Once that admission is asked, the other address, the first left open.
        k.after(r.between(30, 150), () => {
          if (w.healedAt !== undefined || h.route.target !== t.i) return;
          h.move({ target: t.i, via: first === 'storage' ? 'mgmt' : 'storage' }, true);
          let waited = 0;
          const poll = () => {
            const c = h.current;
            if (w.healedAt !== undefined || h.route.target !== t.i) return;
            if (!(c && c.gate === t.i && c.conn) && waited < 600) {
              waited += 2;
              return void k.after(2, poll);
            }
            const to = r.pick(w.scvms.filter((x) => x.i !== t.i));
            h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }, true);
            if (c && c.gate === t.i) h.lost(c);
          };
          k.after(2, poll);
        });
      });
      return `${h.hostId}→scvm-${t.i} (${first}, answer late; then the other), then away`;
    }],
    ['lease-stretched-by-gate-stall', () => {
      const h = w.hosts.find((y) => connectedAt(y, y.route.target));
      if (!h || w.healedAt !== undefined) return undefined;
      const s = w.scvms[h.current!.gate - 1];
      const fp = s.followerProc, gp = s.gate?.proc;
      if (!fp || !gp || fp.dead || gp.dead) return undefined;
      // The gate stalls first, its renewals queuing; a second later the
      // follower is cut off (its lease then ends about 2.5-3 s on).
      const stall = r.between(2500, 3000);
      pause(gp);
      if (!gp.paused) return undefined;
      k.after(stall, () => k.resume(gp));
      const cutAt = r.between(800, 1200);
      k.after(cutAt, () => {
        if (w.healedAt !== undefined || fp.dead) return;
        cutFromMasters(f, fp, r.between(5000, 7000));
        // The host moves on while its holder is silent.
        k.after(r.between(200, 600), () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
      });
      // Once the gate is awake, the follower freezes before its lease ends
      // (so it neither fences its gate at the end of that lease nor renews).
      k.after(stall + r.between(50, 300), () => {
        if (w.healedAt !== undefined || fp.dead) return;
        pause(fp);
        k.after(r.between(2500, 3500), () => k.resume(fp));
      });
      return `gate of scvm-${s.i} stalls ${stall.toFixed(0)} ms, its follower cut off then frozen, ${h.hostId} moves on`;
    }],
    ['hung-gate-over-follower-restart-and-failover', () => {
      const h = w.hosts.find((y) => connectedAt(y, y.route.target) && y.current!.inFlight > 0);
      if (!h || w.healedAt !== undefined) return undefined;
      const s = w.scvms[h.current!.gate - 1];
      const gp = s.gate?.proc;
      if (!gp || gp.dead || !s.followerProc || s.followerProc.dead) return undefined;
      pause(gp);
      if (!gp.paused) return undefined;
      k.after(r.between(900, 1500), () => k.resume(gp));
      const dies = r.between(20, 100);
      k.after(dies, () => {
        s.killFollower();
        k.after(r.between(30, 120), () => s.revive());
      });
      const m = f.leader();
      k.after(dies + r.between(30, 150), () => {
        if (!m.proc || m.proc.dead) return;
        m.kill();
        k.after(r.between(100, 250), () => m.restart());
      });
      // The host moves on once the new leader is back, its old connection
      // left open with calls queued at the hung gate.
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(500, 900), () => {
        if (w.healedAt === undefined && h.route.target === s.i) h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }, true);
      });
      return `gate of scvm-${s.i} hangs, its follower restarts, m${m.k} restarts, ${h.hostId}→scvm-${to.i}`;
    }],
    ['limit-lowered-over-failover', () => {
      // x, a host that came over to s, and s's own host: two claims. s's
      // gate stalls, the leader restarts with the lower limit, and x moves
      // on while the gate still sleeps.
      const m = f.leader();
      const v = visitServedScvm(f, (s, x) => {
        const gp = s.gate?.proc;
        if (!gp || gp.dead || !m.proc || m.proc.dead) return;
        pause(gp);
        if (!gp.paused) return;
        k.after(r.between(1200, 2500), () => k.resume(gp));
        k.after(r.between(0, 50), () => {
          if (!m.proc || m.proc.dead) return;
          m.kill();
          const back = r.between(100, 250);
          k.after(back, () => m.restart());
          k.after(back + r.between(100, 700), () => { if (w.healedAt === undefined && x.route.target === s.i) leave(f, x); });
        });
      });
      return v && `scvm-${v.s.i} serves ${v.x.hostId} too, its gate stalls, m${m.k} restarts with a lower client limit`;
    }],
    ['reconnect-then-leave', () => {
      const h = r.pick(w.hosts);
      const c = h.current;
      if (!c || !connectedAt(h, h.route.target) || w.healedAt !== undefined) return undefined;
      h.lost(c);
      k.after(r.between(1000, 2500), () => { if (w.healedAt === undefined && h.route.target === c.gate) leave(f, h); });
      return `${h.hostId} reconnects to scvm-${c.gate}, then leaves`;
    }],
    ['readdress-over-failover', () => {
      // The elected leader is cut off from etcd (it steps down at the end of
      // its election lease, ~0.7-0.9 s later, and another master is elected
      // a moment after). Just before it steps down, hosts admitted at remote
      // SCVMs switch to those SCVMs' other addresses: a follower releases
      // the old connection (its logout's answer slow to come back) while
      // the new one's login is answered by the old leader, and the follower
      // moves to the new leader before that logout returns.
      if (!w.etcd || w.healedAt !== undefined) return undefined;
      const m = f.leader();
      const mp = m.proc;
      if (!mp) return undefined;
      // Just after an agents' route tick (every 500 ms): the hosts' agents
      // take them home only at the next one, after the readdress.
      const tick = 500 - (k.now % 500) + 1 + (k.now % 500 > 400 ? 500 : 0);
      const readdressAt = tick + r.between(200, 400);
      const cutAt = Math.max(0, readdressAt - r.between(450, 800));
      k.after(cutAt, () => {
        if (w.healedAt !== undefined || mp.dead) return;
        w.etcd!.cut(mp);
        k.after(r.between(2000, 4000), () => w.etcd!.uncut(mp));
      });
      const moved: string[] = [];
      for (const h of w.hosts) {
        // A gate remembers which client an address is, and then holds a
        // release while an admit of that address is out: only a pair the
        // gate has not seen yet opens the window. Once every pair of a host
        // has been used, one of those gates restarts (it forgets them).
        const fresh = w.scvms.filter((x) => x.i !== h.i && x.gate && !x.gate.proc.dead && !readdressed.has(`${x.gate.proc.name}|${h.hostId}`));
        if (!fresh.length) {
          const x = r.pick(w.scvms.filter((y) => y.i !== h.i));
          x.killGate();
          k.after(r.between(100, 300), () => x.revive());
          moved.push(`gate of scvm-${x.i} restarted`);
          continue;
        }
        const t = r.pick(fresh);
        readdressed.add(`${t.gate!.proc.name}|${h.hostId}`);
        const first = r.pick(['storage', 'mgmt'] as const);
        moved.push(`${h.hostId}→scvm-${t.i}`);
        k.after(tick, () => { if (w.healedAt === undefined) h.move({ target: t.i, via: first }); });
        k.after(readdressAt + r.between(-50, 50), () => {
          const c = h.current;
          if (w.healedAt !== undefined || h.route.target !== t.i || !c?.conn) return;
          h.move({ target: t.i, via: first === 'storage' ? 'mgmt' : 'storage' });
          // The old connection is reset at once (ss -K, as the agent does on Linux).
          for (const old of [...h.older]) if (old.gate === t.i) h.lost(old);
        });
      }
      return `m${m.k} cut from etcd, ${moved.join(' ') || 'no host'} (one address, then the other)`;
    }],
  ];
}
