import { Rng } from './kernel';
import { setSimulationMutants } from '../../common/mutants';
import { faultKit, type FaultMenu } from './fault-kit';
import { raceFaults } from './faults-races';
import { holeFaults } from './faults-holes';
import { ENV_FAULT_KINDS, envFaults } from './faults-env';
import { RECIPES, recipeAt, recipeNamed, type Recipe } from './recipes';
import { World, type Swarm, type WorldConfig } from './world';

/** The fault kinds planFaults defines itself (the recipe files add more). */
const BASE_FAULT_KINDS = [
  'follower-kill', 'follower-pause', 'gate-kill', 'gate-pause', 'nfs-hang', 'nfs-crash', 'stall', 'transport-reset',
  'partition', 'master-kill', 'master-pause', 'etcd-cut', 'host-move', 'reset-then-move', 'readdress',
  'master-restart-then-move', 'follower-restart-then-move', 'pile-then-reintroduce', 'failover-with-backlog',
  'gate-stall-then-isolate', 'agent-restart', 'scvm-freeze', 'hang-then-isolate', 'gate-kill-with-backlog',
  'one-way-partition', 'gate-graceful-restart',
] as const;

/**
 * The fault kinds the swarm draws from outside recipes. The recipe files'
 * own kinds strike only within their recipes, in the worlds those recipes
 * set (validated clean there): in other worlds some combine into double
 * faults the design leaves to the fence agent (a flaky fence failing while
 * its follower is cut off), or into an address reused while its old
 * owner's grant lives on, which the follower does not yet handle (see the
 * README's open problems).
 */
export const FAULT_KINDS: readonly string[] = [...BASE_FAULT_KINDS, ...ENV_FAULT_KINDS];

/**
 * The world a seed stands for: mode, size, fence, limits, identity and
 * protocol variants, and (swarm testing, after Groce et al.) the weather:
 * which fault kinds are on at all, how often they strike, how lossy and
 * bursty the network is, how deep and fast the clients are, how long the NFS
 * server's tail. A seed with few fault kinds hits each harder, which finds
 * bugs a uniform mix dilutes. Half the seeds run without any NFS fence (the
 * default a user gets), the other half with one that works or one that
 * fails and runs late.
 */
export function configFor(seed: number, overrides: Partial<WorldConfig> = {}): WorldConfig {
  const r = new Rng(seed ^ 0x5bd1e995);
  const fence = r.chance(0.5) ? 'none' as const : r.chance(0.5) ? 'reliable' as const : 'flaky' as const;
  // A quarter of the seeds draw every kind; a third of the rest focus on one
  // to three kinds, which then strike again and again (the combinations a
  // known bug needs, such as a hang, a gate kill and a session change on one
  // SCVM, are diluted in a broad mix); the others draw each kind by a coin.
  // Of the rest, RECIPE_SHARE of all seeds draw a recipe (recipes.ts): the
  // targeted mix a known bug needs, the rest of the weather still from the
  // seed. A caller that names its fault kinds gets no recipe over them.
  const mix = r.next();
  const recipeDraw = r.next();
  const recipe: Recipe | undefined = overrides.recipe !== undefined ? recipeNamed(overrides.recipe)
    : mix >= 0.25 && !overrides.faultKinds && RECIPES.length && recipeDraw < RECIPE_SHARE / 0.75 ? recipeAt(r.next()) : undefined;
  const kinds = recipe ? recipe.kinds : mix < 0.25 ? [] : mix < 0.5 ? focus(r, 1 + r.int(3)) : FAULT_KINDS.filter(() => r.chance(0.35));
  const gapLo = r.pick([100, 300, 300, 800]);
  const swarm: Swarm = {
    faultGapMs: [gapLo, gapLo + r.pick([700, 2200, 2200, 4000])],
    dropRate: r.pick([0, 0.002, 0.002, 0.02]),
    dupRate: r.pick([0, 0.006, 0.006, 0.05]),
    lateReplyRate: r.pick([0, 0, 0.01, 0.05]),
    lateReplyMaxMs: r.pick([200, 1000, 3000]),
    burstChance: r.pick([0, 0.02, 0.02, 0.1]),
    burstMaxMs: r.pick([50, 300, 300, 900]),
    nfsTailChance: r.pick([0.01, 0.05, 0.05, 0.2]),
    nfsTailMaxMs: r.pick([100, 400, 400, 2500]),
    depthMax: r.pick([1, 2, 2, 2, 4, 4, 8, 8, 8, 32]),
    thinkMaxMs: r.pick([5, 300, 300, 1000]),
    masterDrift: r.chance(0.5),
    driftAtEdge: r.pick([0, 0, 0.3, 0.7]),
    lateTimerChance: r.pick([0, 0, 0.01, 0.05]),
    lateTimerMaxMs: r.pick([20, 200, 1000]),
    pauseAfterCheckChance: r.pick([0, 0, 0, 0.0005, 0.003]),
    lateDuplicateRate: r.pick([0, 0, 0.005, 0.03]),
    lateDuplicateMaxMs: r.pick([300, 1000, 3000]),
    // Not drawn (a recipe sets it): a new draw would reshuffle every seed.
    fenceAgentMs: [10, 200],
  };
  const cfg: WorldConfig = {
    seed,
    mode: r.chance(0.5) ? 'embedded' : 'elected',
    scvms: 3 + r.int(2),
    durationMs: 30_000,
    fenceAgent: r.chance(0.5),
    maxClientsPerSession: r.chance(0.35) ? 1 + r.int(2) : 512,
    lateMgmtRegistration: r.chance(0.3),
    relativeLease: false,
    faultKinds: kinds.length ? [...kinds] : [],
    fence,
    swarm,
    mutants: [],
    ...overrides,
  };
  if (!recipe) return cfg;
  // The recipe's settings win over the seed's, not over the caller's.
  return { ...cfg, ...recipe.world, swarm: { ...swarm, ...recipe.swarm, ...overrides.swarm }, ...overrides, recipe: recipe.name, faultKinds: recipe.kinds };
}

/**
 * Share of all seeds that draw a recipe (drawn only among the seeds that
 * would not strike with every kind). At 0.3 a known bug its recipe reaches
 * in one seed of four waited about 700 schedules for it, and the geometric
 * tails of the slower ones decided how long `--mutants` took (17-27 min)
 * and whether CI found them all within its budget (a search at 0.3 missed
 * one in 5,000, 2026-12-07). Recipes are weather too: the fixed code must
 * pass them, and they found bugs of their own (agent-kill-in-grace-slow-agent).
 * A quarter of the seeds still strike with every kind, and 15% with a
 * focused or a coin-drawn mix.
 */
export const RECIPE_SHARE = 0.6;

/** `n` fault kinds drawn without repeats. */
function focus(r: Rng, n: number): string[] {
  const pool: string[] = [...FAULT_KINDS];
  const out: string[] = [];
  while (out.length < n) out.push(pool.splice(r.int(pool.length), 1)[0]);
  return out;
}

/** Why the run stopped early: the first violation, with the world as it was. */
class Stop extends Error {}

/** The liveness phase ended early: the world settled (World.settled), nothing left under way. */
class Settled extends Error {}

/** How often, and from how long after the heal, the liveness phase looks whether the world settled. */
const SETTLED_LOOK_EVERY_MS = 100;
const SETTLED_LOOK_FROM_MS = 1000;

export interface ScheduleResult {
  seed: number;
  cfg: WorldConfig;
  violations: string[];
  steps: number;
  admissions: number;
  executions: number;
  faults: string[];
  /** The last lines of the trace, when something was found. */
  trace: string[];
}

/**
 * The faults of one schedule, at random times from the seed: processes killed,
 * frozen and thawed, NFS servers hung and crashed, streams reset, machines
 * partitioned, etcd cut off, masters restarted, hosts moved between their
 * private, storage and management paths, agents learning addresses late, and
 * short stalls that make Node's timers fire early.
 */
function planFaults(w: World, log: string[]): void {
  const kit = faultKit(w);
  const { k, r, scvm, leader, pause, cut } = kit;
  const menu: FaultMenu = [
    ['follower-kill', () => {
      const s = scvm();
      s.killFollower();
      k.after(r.between(300, 3000), () => s.revive());
      return `scvm-${s.i}`;
    }],
    ['follower-pause', () => {
      const s = scvm();
      const p = s.followerProc;
      if (!p) return undefined;
      pause(p);
      k.after(r.between(100, 5000), () => k.resume(p));
      return `scvm-${s.i}`;
    }],
    ['gate-kill', () => {
      const s = scvm();
      s.killGate();
      k.after(r.between(200, 2000), () => s.revive());
      return `scvm-${s.i}`;
    }],
    ['gate-graceful-restart', () => {
      // A planned restart (systemctl restart): SIGTERM, then a new process.
      const s = scvm();
      if (!s.stopGateGracefully()) return undefined;
      const stopping = s.gate;
      // The new process starts once the old one exited (its drain may take 1.5 s).
      const start = () => (stopping && !stopping.proc.dead ? k.after(100, start) : s.revive());
      k.after(r.between(200, 2500), start);
      return `scvm-${s.i}`;
    }],
    ['gate-pause', () => {
      const s = scvm();
      const p = s.gate?.proc;
      if (!p) return undefined;
      pause(p);
      k.after(r.between(100, 5000), () => k.resume(p));
      return `scvm-${s.i}`;
    }],
    ['nfs-hang', () => {
      const s = scvm();
      const p = s.nfs.proc;
      pause(p);
      k.after(r.between(200, 5000), () => k.resume(p));
      return `scvm-${s.i}`;
    }],
    ['nfs-crash', () => {
      const s = scvm();
      s.killNfs();
      return `scvm-${s.i}`;
    }],
    ['stall', () => {
      // A short freeze of one process (GC pause, CPU starvation): on waking,
      // its timers set from the stale loop time fire early.
      const procs = w.scvms.flatMap((s) => s.processes()).concat(w.masters.map((m) => m.proc!).filter(Boolean));
      const p = r.pick(procs);
      pause(p);
      k.after(r.between(20, 400), () => k.resume(p));
      return p.name;
    }],
    ['transport-reset', () => {
      const s = scvm();
      if (!s.followerProc) return undefined;
      for (const m of w.masters) w.net.reset(s.followerProc, m.address);
      return `scvm-${s.i}`;
    }],
    ['partition', () => {
      const s = scvm();
      const m = leader();
      if (!s.followerProc || !m.proc) return undefined;
      cut(s.followerProc, m.proc);
      k.after(r.between(200, 5000), () => { if (s.followerProc && m.proc) w.net.heal(s.followerProc, m.proc); });
      return `scvm-${s.i}|m${m.k}`;
    }],
    ['master-kill', () => {
      const m = leader();
      m.kill();
      k.after(r.between(300, 3000), () => m.restart());
      return `m${m.k}`;
    }],
    ['master-pause', () => {
      const m = leader();
      const p = m.proc;
      if (!p) return undefined;
      pause(p);
      k.after(r.between(200, 6000), () => k.resume(p));
      return `m${m.k}`;
    }],
    ['etcd-cut', () => {
      if (!w.etcd) return undefined;
      const m = leader();
      const p = m.proc;
      if (!p) return undefined;
      w.etcd.cut(p);
      k.after(r.between(500, 5000), () => w.etcd!.uncut(p));
      return `m${m.k}`;
    }],
    ['host-move', () => {
      const h = w.hosts[r.int(w.hosts.length)];
      const others = w.scvms.filter((s) => s.i !== h.i);
      const via = r.pick(['local', 'storage', 'mgmt', 'storage', 'mgmt'] as const);
      const target = via === 'local' ? h.i : (h.route.via !== 'local' && r.chance(0.5) ? h.route.target : r.pick(others).i);
      h.move({ target, via });
      return `${h.hostId}→${via === 'local' ? 'local' : `scvm-${target}/${via}`}`;
    }],
    ['reset-then-move', () => {
      // A follower's stream to the master breaks and stays down a moment,
      // while one of its hosts moves to another SCVM (login during the gap).
      const s = scvm();
      const m = leader();
      if (!s.followerProc || !m.proc) return undefined;
      for (const x of w.masters) w.net.reset(s.followerProc, x.address);
      cut(s.followerProc, m.proc);
      const fp = s.followerProc, mp = m.proc;
      k.after(r.between(300, 2500), () => w.net.heal(fp, mp));
      const h = w.hosts.find((x) => x.route.target === s.i) ?? w.hosts[r.int(w.hosts.length)];
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(0, 1500), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, ${h.hostId}→scvm-${to.i}`;
    }],
    ['readdress', () => {
      // A host served by a remote SCVM switches between that SCVM's storage
      // and management addresses: a new source address at the same gate.
      const h = w.hosts.find((x) => x.route.via !== 'local') ?? w.hosts[r.int(w.hosts.length)];
      const target = h.route.via !== 'local' ? h.route.target : r.pick(w.scvms.filter((x) => x.i !== h.i)).i;
      h.move({ target, via: h.route.via === 'storage' ? 'mgmt' : 'storage' });
      return `${h.hostId}@scvm-${target}`;
    }],
    ['master-restart-then-move', () => {
      const m = leader();
      m.kill();
      k.after(r.between(100, 1500), () => m.restart());
      const h = w.hosts[r.int(w.hosts.length)];
      const to = r.pick(w.scvms);
      k.after(r.between(0, 6000), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `m${m.k}, ${h.hostId}→scvm-${to.i}`;
    }],
    ['follower-restart-then-move', () => {
      // A follower dies and comes back while its gate reconnects; meanwhile
      // its host reconnects there and then moves on.
      const s = scvm();
      s.killFollower();
      k.after(r.between(50, 800), () => s.revive());
      const h = w.hosts[s.i - 1];
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(100, 2500), () => h.move({ target: to.i, via: r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, ${h.hostId}→scvm-${to.i}`;
    }],
    ['pile-then-reintroduce', () => {
      // Several hosts end up on one SCVM; its follower introduces itself again
      // (stream reset or master restart) claiming them all, possibly while
      // its NFS server is slow to answer; one of them moves on meanwhile.
      const s = scvm();
      const movers = w.hosts.filter((h) => h.i !== s.i).slice(0, 1 + r.int(2));
      for (const h of movers) h.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) });
      const at = r.between(800, 2500);
      if (r.chance(0.5)) {
        k.after(at - r.between(0, 300), () => {
          const p = s.nfs.proc;
          pause(p);
          k.after(r.between(500, 3000), () => k.resume(p));
        });
      }
      k.after(at, () => {
        if (r.chance(0.5) && s.followerProc) for (const m of w.masters) w.net.reset(s.followerProc, m.address);
        else { const m = leader(); m.kill(); k.after(r.between(100, 1500), () => m.restart()); }
      });
      const h = r.pick(movers);
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(at + r.between(0, 2000), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, ${movers.map((x) => x.hostId).join('+')}, then ${h.hostId}→scvm-${to.i}`;
    }],
    ['failover-with-backlog', () => {
      // The leader dies while one SCVM holds several hosts with calls stuck in
      // its NFS server; after the election one of those hosts moves on.
      const s = scvm();
      const movers = w.hosts.filter((h) => h.i !== s.i).slice(0, 1 + r.int(2));
      for (const h of movers) h.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) });
      const at = r.between(500, 1500);
      k.after(at, () => {
        const p = s.nfs.proc;
        pause(p);
        k.after(r.between(2000, 6000), () => k.resume(p));
        const m = leader();
        m.kill();
        k.after(r.between(500, 4000), () => m.restart());
      });
      const h = r.pick(movers);
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(at + r.between(2500, 6000), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, ${movers.map((x) => x.hostId).join('+')}, then ${h.hostId}→scvm-${to.i}`;
    }],
    ['gate-stall-then-isolate', () => {
      // A gate stalls with a lease renewal on its way; when it wakes its
      // follower is cut off from the master or frozen itself, and the host
      // moves on.
      const s = scvm();
      const g = s.gate?.proc;
      const m = leader();
      if (!g || !s.followerProc || !m.proc) return undefined;
      pause(g);
      const stall = r.between(500, 3000);
      const fp = s.followerProc, mp = m.proc;
      const freeze = r.chance(0.5);
      // Half the freezes come while the gate still sleeps: the follower's
      // last lease message then waits in the gate's socket while the lease
      // runs out, and only a deadline (not the time left) keeps the gate
      // from counting it from when it wakes (race 6). Both frozen at once is
      // a whole SCVM frozen: left out without the fence agent (mayPause).
      const early = freeze && r.chance(0.5);
      if (early) k.after(r.between(0, stall), () => pause(fp));
      k.after(stall, () => { k.resume(g); if (freeze && !early) pause(fp); else if (!freeze) cut(fp, mp); });
      k.after(stall + r.between(3000, 6000), () => { if (freeze) k.resume(fp); else w.net.heal(fp, mp); });
      const h = w.hosts[s.i - 1];
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(stall + r.between(0, 1500), () => h.move({ target: to.i, via: r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i} (${stall.toFixed(0)} ms), ${h.hostId}→scvm-${to.i}`;
    }],
    ['hang-then-isolate', () => {
      // An SCVM's NFS server hangs with calls queued, then its follower goes
      // silent (frozen or cut off from the leader) and a host it serves moves
      // on: without a fence nothing may wait it out (a hold), with one the
      // wait-out must cover the hung calls.
      const s = scvm();
      const m = leader();
      if (!s.followerProc || !m.proc) return undefined;
      const nfs = s.nfs.proc;
      pause(nfs);
      k.after(r.between(3000, 9000), () => k.resume(nfs));
      const fp = s.followerProc, mp = m.proc;
      const freeze = r.chance(0.4);
      k.after(r.between(0, 400), () => {
        // Follower and gate frozen together with a hung NFS server is a whole
        // SCVM frozen: no self-fence can run, only the fence agent (scvm-freeze).
        if (freeze) { pause(fp); if (s.gate && w.cfg.fenceAgent && r.chance(0.5)) pause(s.gate.proc); } else cut(fp, mp);
      });
      k.after(r.between(3000, 8000), () => {
        if (freeze) { k.resume(fp); if (s.gate) k.resume(s.gate.proc); } else w.net.heal(fp, mp);
      });
      const h = w.hosts.find((x) => x.route.target === s.i) ?? w.hosts[s.i - 1];
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(200, 2000), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i} (${freeze ? 'frozen' : 'cut off'}), ${h.hostId}→scvm-${to.i}`;
    }],
    ['gate-kill-with-backlog', () => {
      // A gate dies with calls queued at a hung NFS server; it comes back,
      // its host reconnects there, then moves on (its connection closes and
      // the new gate releases it while the dead gate's calls may still run).
      const s = scvm();
      const nfs = s.nfs.proc;
      pause(nfs);
      k.after(r.between(2000, 7000), () => k.resume(nfs));
      k.after(r.between(50, 400), () => {
        s.killGate();
        k.after(r.between(100, 600), () => s.revive());
      });
      const h = w.hosts.find((x) => x.route.target === s.i) ?? w.hosts[s.i - 1];
      const to = r.pick(w.scvms.filter((x) => x.i !== s.i));
      k.after(r.between(800, 3000), () => h.move({ target: to.i, via: to.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) }));
      return `scvm-${s.i}, ${h.hostId}→scvm-${to.i}`;
    }],
    ['one-way-partition', () => {
      // An asymmetric partition: a follower or a host's agent hears the
      // leader but is not heard (or the other way round), for a while.
      const m = leader();
      if (!m.proc) return undefined;
      const h = w.hosts[r.int(w.hosts.length)];
      const s = scvm();
      const agent = r.chance(0.3);
      const p = agent ? h.agentProc : s.followerProc;
      if (!p || w.healedAt !== undefined) return undefined;
      const mp = m.proc;
      const [from, to] = r.chance(0.5) ? [p, mp] : [mp, p];
      w.net.partitionOneWay(from, to);
      k.after(r.between(300, 6000), () => w.net.healOneWay(from, to));
      return `${from.name}→${to.name} dropped`;
    }],
    ['agent-restart', () => {
      const h = w.hosts[r.int(w.hosts.length)];
      h.startAgent(true);
      return h.hostId;
    }],
  ];
  if (w.cfg.fenceAgent) {
    menu.push(['scvm-freeze', () => {
      const s = scvm();
      const procs = s.processes();
      for (const p of procs) pause(p);
      k.after(r.between(500, 6000), () => { for (const p of procs) k.resume(p); });
      return `scvm-${s.i}`;
    }]);
  }
  menu.push(...envFaults(kit), ...raceFaults(kit), ...holeFaults(kit));
  const chosen = menu.filter(([name]) => w.cfg.faultKinds.includes(name));
  // Every kind: those of FAULT_KINDS (scvm-freeze among them only with the fence agent).
  const allowed = chosen.length ? chosen : menu.filter(([name]) => FAULT_KINDS.includes(name));
  let t = 2000 + r.between(0, 1500);
  while (t < w.cfg.durationMs - 3000) {
    const [name, inject] = allowed[r.int(allowed.length)];
    k.after(t, () => {
      const what = inject();
      if (what === undefined) return;
      log.push(`${k.now.toFixed(0)} ${name} ${what}`);
      w.note('FAULT', `${name} ${what}`);
    });
    t += r.between(...w.cfg.swarm.faultGapMs);
  }
}

/** Runs one schedule to its end or to its first violation. */
export async function runSchedule(cfg: WorldConfig): Promise<ScheduleResult> {
  setSimulationMutants(cfg.mutants);
  const w = new World(cfg);
  // A virtual wall clock: gRPC deadlines are Dates (deadlineIn), and the
  // real Date.now() moving between a deadline's making and its reading made
  // timeouts, and so schedules, differ from run to run.
  const realNow = Date.now;
  Date.now = () => 1_700_000_000_000 + Math.floor(w.kernel.now);
  const faults: string[] = [];
  w.start();
  planFaults(w, faults);
  let lookAt = Infinity;
  const step = () => {
    w.check();
    if (w.violations.length) throw new Stop();
    w.sampleHolds();
    if (w.kernel.now >= lookAt) {
      lookAt = w.kernel.now + SETTLED_LOOK_EVERY_MS;
      if (w.settled()) throw new Settled();
    }
  };
  try {
    await w.kernel.runUntil(cfg.durationMs, step);
    w.healAll();
    lookAt = w.kernel.now + SETTLED_LOOK_FROM_MS;
    try {
      await w.kernel.runUntil(cfg.durationMs + w.livenessBoundMs, step);
      // A host held visibly gets B from the end of its hold (3 B after the heal at most).
      const last = cfg.durationMs + 3 * w.livenessBoundMs;
      for (let due = w.livenessDeadline(); due > w.kernel.now && w.kernel.now < last; due = w.livenessDeadline()) {
        await w.kernel.runUntil(Math.min(due, last), step);
      }
    } catch (err) {
      if (!(err instanceof Settled)) throw err;
      w.note('CHECK', 'settled: one leader, nothing under way, every host home and served; the liveness phase ends here');
    }
    w.checkLiveness();
  } catch (err) {
    if (!(err instanceof Stop)) {
      w.violations.push(`t=${w.kernel.now.toFixed(1)} the simulation itself failed: ${(err as Error).stack ?? err}`);
    }
  } finally {
    setSimulationMutants([]);
    Date.now = realNow;
  }
  return {
    seed: cfg.seed, cfg, violations: w.violations, steps: w.kernel.steps, admissions: w.admissions, executions: w.executions, faults,
    trace: w.violations.length || cfg.keepTrace ? w.kernel.trace.tail(cfg.keepTrace ? 5000 : 200) : [],
  };
}
