import type { FenceResult } from '../../common/fence-command';
import { mutant, type MutantName } from '../../common/mutants';
import type { ProbeState } from '../../common/hysteresis';
import { Metrics } from '../../common/metrics';
import { nfshaGrpc, type GateClient, type MembershipClient, type SessionMasterClient } from '../../common/proto';
import { compareTokens, formatToken, type Token } from '../../common/token';
import { MembershipFollower } from '../../agent/membership-client';
import { decideRoute, type Route } from '../../agent/decision';
import { ProbeTracker } from '../../common/hysteresis';
import { Follower, type NfsHealthSource } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { DEFAULT_GATE_TIMING, GateCore, type AdmitGrant, type ForwardedConn, type GateEventBody } from '../../follower/gate-core';
import { GateLink } from '../../follower/gate-link';
import { stopGateGracefully } from '../../follower/gate-stop';
import { EtcdLeadership } from '../../master/etcd-leadership';
import { EmbeddedLeadership, type Leadership } from '../../master/leadership';
import { MasterMetrics } from '../../master/metrics';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from '../../master/options';
import { MasterRuntime } from '../../master/runtime';
import type { RegistryStore, ServerRecord } from '../../master/leadership';
import type { HostRecord } from '../../master/identity';
import { SessionState, type Session } from '../../master/sessions';
import { SimEtcd } from './etcd-model';
import { Kernel, Machine, SimProcess } from './kernel';
import { simLogger } from './sim-log';
import { CondemnationCheck } from './condemnation-check';
import { connectedAt } from './fault-kit';
import { SimNetwork, type ServiceDefinition } from './transport';
import { EventEmitter } from 'node:events';

const services = (() => {
  let cached: { master: ServiceDefinition; membership: ServiceDefinition; gate: ServiceDefinition } | undefined;
  return () => (cached ??= {
    master: nfshaGrpc().SessionMaster.service as unknown as ServiceDefinition,
    membership: nfshaGrpc().Membership.service as unknown as ServiceDefinition,
    gate: nfshaGrpc().Gate.service as unknown as ServiceDefinition,
  });
})();

export const LOCAL_CLIENT_IP = '192.168.33.1';

/** Mutant fence-budget-counts-drift brings back the defaults of before the fix too: the fence point 500 ms before the deadline. */
function oldFenceLead(): { fenceLeadMs?: number } {
  return mutant('fence-budget-counts-drift') ? { fenceLeadMs: 500 } : {};
}

/** What one schedule simulates; all of it follows from the seed. */
export interface WorldConfig {
  seed: number;
  /** One embedded master, or three candidates elected through (modelled) etcd. */
  mode: 'embedded' | 'elected';
  scvms: number;
  durationMs: number;
  /** The master's fence agent kills a silent holder's SCVM (else the frozen-SCVM fault is left out: a documented limit). */
  fenceAgent: boolean;
  /** Clients one session may own (small values exercise claims the master does not adopt). */
  maxClientsPerSession: number;
  /**
   * Every master process after the first (a restart, another candidate's
   * term) runs with this client limit: an operator lowered
   * --max-clients-per-session in a rolling restart, so a follower may claim
   * more than the new leader allows (recipes only).
   */
  limitAfterRestart?: number;
  /** Agents register hosts' management addresses only after a while (late identity). */
  lateMgmtRegistration: boolean;
  /**
   * The last SCVM's follower and gate start only when a fault (or the heal)
   * brings them up: a server that joins a running cluster, introducing itself
   * for the first time under whatever the faults are doing then (recipes only).
   */
  lateServer?: boolean;
  /**
   * The previous release's follower↔gate protocol: lease renewals and admit
   * replies carry only the milliseconds left, measured on receipt (race 6).
   */
  relativeLease: boolean;
  /** Only these fault kinds (schedule.ts); empty: all. */
  faultKinds: string[];
  /** The targeted fault mix this seed drew (recipes.ts), if any: it names the fault kinds and any settings it needs. */
  recipe?: string;
  /**
   * The NFS fence every follower and gate runs: none (the default a user gets
   * without --fence-command: hold, never ack), one that always works, or one
   * that sometimes fails or outlasts its timeout (the server may die later),
   * or (recipes only) one that sometimes fails at once and otherwise works
   * fast (no slow runs), or one that always works but slowly, killing the
   * NFS server only near the end of its timeout (a `systemctl kill` on a
   * loaded machine).
   */
  fence: 'none' | 'reliable' | 'flaky' | 'fails-fast' | 'slow';
  /** Rates and shapes drawn per seed (swarm testing): what this world's network, disks and clients are like. */
  swarm: Swarm;
  /** Known bugs brought back for this run (common/mutants.ts). */
  mutants: MutantName[];
  /** Keep the whole trace (replaying one seed). */
  keepTrace?: boolean;
}

/** Per-seed knobs (schedule.ts draws them): the same code under different weather. */
export interface Swarm {
  /** Gap between faults, ms. */
  faultGapMs: [number, number];
  /** Unary calls: request dropped, reply dropped, delivered twice. */
  dropRate: number;
  dupRate: number;
  /** A unary call's status arrives late (after later messages on other streams), by up to lateReplyMaxMs. */
  lateReplyRate: number;
  lateReplyMaxMs: number;
  /** A unary request arrives a second time, up to lateDuplicateMaxMs after the original was answered (its second answer lost). */
  lateDuplicateRate: number;
  lateDuplicateMaxMs: number;
  /** A message is queued behind a burst this often, for up to this long. */
  burstChance: number;
  burstMaxMs: number;
  /** An NFS call hits the slow tail this often, for up to this long. */
  nfsTailChance: number;
  nfsTailMaxMs: number;
  /** Calls each host keeps in flight: 1 to this. */
  depthMax: number;
  /** Think time between a reply and the next call, up to. */
  thinkMaxMs: number;
  /** Masters' clocks drift too (within ±√1.1, so any master and follower stay within the 10% the master assumes). */
  masterDrift: boolean;
  /** Chance that a clock sits exactly at the drift bound: a follower as slow against the fastest master as assumed, or a master at its edge. */
  driftAtEdge: number;
  /**
   * Buggify (FoundationDB's word): rare, legal misfortunes through the
   * injection points the code already has. A timer that comes due finds
   * its event loop busy this often (a loaded machine), for up to
   * lateTimerMaxMs, and the whole process stalls that long; a gate stops (SIGSTOP)
   * between its forward check and the write to the NFS server this often
   * per forwarded call. Off after the heal.
   */
  lateTimerChance: number;
  lateTimerMaxMs: number;
  pauseAfterCheckChance: number;
  /** How long the master's fence agent takes to kill an SCVM, from–to (a power-off through IPMI takes seconds). */
  fenceAgentMs: [number, number];
}

/** How long a follower may take to report a failed fence run: three keepalive intervals. */
const FENCE_FAILURE_REPORT_MS = 3 * DEFAULT_MASTER_OPTIONS.keepaliveIntervalMs;

/** The relative drift the master assumes between its clock and a follower's (DEFAULT_MASTER_OPTIONS.clockDriftBound). */
const DRIFT = 1 + DEFAULT_MASTER_OPTIONS.clockDriftBound;


/** One client call from a host through a gate to an NFS server, followed to its end. */
interface SimCall {
  host: string;
  gate: number;
  /** The NFS server process it was sent to. */
  nfs: SimProcess;
  executed: boolean;
}

/** A host's connection as the gate sees it (ForwardedConn): calls forwarded, replies owed. */
class SimConn implements ForwardedConn {
  private static serials = 0;
  readonly serial = ++SimConn.serials;
  stopped = false;
  drained = false;
  why: string | undefined;
  private owed = 0;
  private lost = 0;
  readonly unsentBytes = 0;
  /** Forwarded calls without a reply, by the NFS process they went to. */
  readonly calls = new Set<SimCall>();

  constructor(
    readonly clientId: string,
    readonly openedAt: number,
    readonly gate: SimGate,
    readonly hostConn: HostConn,
    /** The NFS server process this connection reaches (a restarted server is another). */
    readonly nfs: SimProcess,
  ) {}

  get inFlight(): number {
    return this.owed + this.lost;
  }

  /** A call from the host arrives at the gate. */
  receive(call: SimCall): void {
    if (this.stopped) return;
    if (!this.gate.core.mayForward(this)) {
      if (!this.stopped) this.stop('not serving');
      return;
    }
    if (this.nfs.dead) {
      this.backendGone();
      return;
    }
    this.owed++;
    this.calls.add(call);
    call.nfs = this.nfs;
    const w = this.gate.world;
    const k = w.kernel;
    // Buggify: the process stops after the check and before the write
    // (SIGSTOP, a VM stun); the write goes out when it runs again, whatever
    // its lease says by then.
    if (w.cfg.swarm.pauseAfterCheckChance && w.healedAt === undefined && k.rng.chance(w.cfg.swarm.pauseAfterCheckChance) && w.mayPause(this.gate.proc)) {
      const gate = this.gate.proc;
      k.pause(gate);
      k.schedule(k.now, () => {
        // A write to a server that died meanwhile fails: nothing runs, and
        // what the gate had forwarded there is unknown to it.
        if (call.nfs.dead) return void this.backendGone();
        w.sendToNfs(this, call);
      }, gate);
      k.after(k.rng.between(20, 1500), () => k.resume(gate));
      w.note('BUGGIFY', `${gate.name} stops between the forward check and the write`);
      return;
    }
    w.sendToNfs(this, call);
  }

  /** The NFS server's reply arrives at the gate. */
  reply(call: SimCall): void {
    if (!this.calls.delete(call)) return;
    this.owed--;
    if (!this.stopped) this.hostConn.reply(call);
    this.check();
  }

  /** The host closed its side (after a delay, at the gate). */
  clientClosed(): void {
    const w = this.gate.world;
    w.hostGateSend(`${this.hostConn.host.hostId}>gate-${this.hostConn.gate}`, () => this.stop('client closed'), this.gate.proc);
  }

  /** The NFS server process behind this connection died: what it owed is unknown until a fence. */
  backendGone(): void {
    this.lost += this.owed;
    this.owed = 0;
    this.calls.clear();
    if (!this.stopped) this.stop('NFS server closed the connection');
  }

  stop(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.why = why;
    this.hostConn.closedByGate();
    this.gate.core.connStopped(this);
    this.check();
  }

  fenced(): void {
    this.owed = 0;
    this.lost = 0;
    this.calls.clear();
    this.stop('NFS server fenced');
    this.check();
  }

  private check(): void {
    if (!this.stopped || this.drained || this.inFlight > 0) return;
    this.drained = true;
    this.gate.conns.delete(this);
    this.gate.core.connDrained(this);
  }
}

/**
 * The NFS fence as the lab's fence-nfs.sh behaves (kill the server, return
 * once it is gone), absent, or flaky: a run may fail at once without
 * killing anything (the product tries again), take most of its timeout, or
 * outlast it (reported failed, though the kill landed just in time). Left
 * out on purpose: a run that outlasts its timeout and leaves the server
 * running while its SCVM is cut off from the master. No self-fence covers
 * that (the master cannot hear of it); the fence agent (an outside fence)
 * is the cover, as a watchdog is for Pacemaker's sbd.
 */
function nfsFence(world: World, scvm: SimScvm, caller: () => SimProcess): { configured: boolean; timeoutMs: number; fence(why: string): Promise<FenceResult> } {
  const mode = world.cfg.fence;
  const timeoutMs = DEFAULT_FOLLOWER_OPTIONS.fenceTimeoutMs;
  return {
    configured: mode !== 'none',
    timeoutMs,
    fence: (why) => new Promise<FenceResult>((resolve) => {
      const proc = caller();
      const startedAt = proc.clock.now();
      const k = world.kernel;
      const done = (ok: boolean, detail: string) => {
        k.schedule(k.now + k.rng.between(1, 20), () => resolve({ ok, startedAt, ms: proc.clock.now() - startedAt, detail }), proc);
      };
      if (mode === 'none') return void resolve({ ok: false, startedAt, ms: 0, detail: 'no fence command configured' });
      const kill = (note: string) => { world.note(proc.name, `${note} nfs-${scvm.i}: ${why}`); scvm.killNfs(); };
      if (k.now < scvm.fenceBrokenUntil && world.healedAt === undefined) {
        const ms = k.rng.between(5, 50);
        scvm.fenceFailingUntil = Math.max(scvm.fenceFailingUntil, k.now + ms + FENCE_FAILURE_REPORT_MS);
        return void k.after(ms, () => { world.note(proc.name, `fence fails (broken): ${why}`); done(false, 'exit 1'); });
      }
      let fate = mode === 'flaky' ? k.rng.next() : mode === 'fails-fast' ? (k.rng.chance(0.3) ? 0.7 : 0) : 0;
      // A run that fails while this SCVM's follower is frozen or dead cannot
      // be reported to the master: the same double fault reportingFenceFailure
      // keeps out in the other order (a failure first, then the silence), which
      // only the fence agent covers. Without one, such a run works. (Seed
      // 1413917413: three overlapping hang-then-fence-point faults froze the
      // follower before the gate's fence point, whose fence then failed.)
      const reporter = scvm.followerProc;
      const failsUnheard = (fate > 0.9 || (fate > 0.6 && fate <= 0.75)) && !world.cfg.fenceAgent && world.healedAt === undefined && (reporter === undefined || reporter.paused || reporter.dead);
      if (failsUnheard) fate = 0;
      // A run that will fail marks its SCVM from its start to a report's
      // worth after its end (World.reportingFenceFailure).
      const failing = (ms: number) => { scvm.fenceFailingUntil = Math.max(scvm.fenceFailingUntil, k.now + ms + FENCE_FAILURE_REPORT_MS); };
      if (mode === 'slow') {
        k.after(k.rng.between(0.8, 0.95) * timeoutMs, () => { kill('slow fence kills'); done(true, 'ok'); });
      } else if (fate > 0.9) {
        failing(timeoutMs);
        const at = k.rng.between(0.8, 0.95) * timeoutMs;
        k.after(at, () => kill('slow fence kills'));
        k.after(timeoutMs, () => done(false, 'timed out'));
      } else if (fate > 0.75) {
        k.after(k.rng.between(300, 600), () => { kill('slow fence kills'); done(true, 'ok'); });
      } else if (fate > 0.6) {
        const ms = k.rng.between(5, 100);
        failing(ms);
        k.after(ms, () => { world.note(proc.name, `fence fails: ${why}`); done(false, 'exit 1'); });
      } else {
        k.after(k.rng.between(5, 150), () => { kill('fence kills'); done(true, 'ok'); });
      }
    }),
  };
}

export class SimGate {
  readonly proc: SimProcess;
  readonly core: GateCore;
  readonly link: GateLink;
  /** Every connection it forwarded, until drained. */
  readonly conns = new Set<SimConn>();

  constructor(readonly world: World, readonly scvm: SimScvm, gen: number) {
    const k = world.kernel;
    this.proc = new SimProcess(k, `gate-${scvm.i}.${gen}`, scvm.machine);
    const log = simLogger(k, `gate-${scvm.i}`);
    let client = world.net.client<GateClient>(this.proc, scvm.gateAddress, services().gate);
    if (world.cfg.relativeLease || mutant('relative-lease-times')) client = relativeLeaseClient(client);
    this.link = new GateLink({ name: `gate-${scvm.i}`, client, clock: this.proc.clock, log, random: () => k.rng.next() });
    this.core = new GateCore({
      ...DEFAULT_GATE_TIMING,
      ...oldFenceLead(),
      name: `gate-${scvm.i}`, clock: this.proc.clock, log, link: this.link,
      fence: nfsFence(world, scvm, () => this.proc),
      record: (e: GateEventBody) => world.gateEvent(scvm.i, e),
    });
    k.schedule(k.now, () => this.link.start(this.core), this.proc);
  }

  /** A host connects from `address`: admit, then forward its calls. */
  connect(hostConn: HostConn, address: string): void {
    this.core.admit(address).then((grant?: AdmitGrant) => {
      if (!grant || hostConn.closed) {
        this.world.lastRefusal.set(hostConn.host.hostId, `t=${this.world.kernel.now.toFixed(0)} gate-${this.scvm.i}: ${grant ? 'host gone' : 'gate not serving'}`);
        return void hostConn.refused();
      }
      const conn = new SimConn(grant.clientId, this.proc.clock.now(), this, hostConn, this.scvm.nfs.proc);
      if (!this.core.attach(conn, grant)) return void hostConn.refused();
      this.conns.add(conn);
      this.world.noteAdmitted(this.scvm.i, grant);
      hostConn.accepted(conn);
    }, (err: Error) => {
      this.world.lastRefusal.set(hostConn.host.hostId, `t=${this.world.kernel.now.toFixed(0)} gate-${this.scvm.i}: ${err.message}`);
      hostConn.refused();
    });
  }

  kill(): void {
    this.world.kernel.kill(this.proc);
    this.world.net.breakAll(this.proc);
  }

  /** A graceful stop is under way (it may end with calls left and the process exiting). */
  stopping = false;

  /**
   * SIGTERM (a planned restart): the TCP gate's own stop steps (drain,
   * final report, stream end), then the process exits. Runs as the gate.
   */
  async stopGracefully(log: ReturnType<typeof simLogger>): Promise<void> {
    const w = this.world;
    this.stopping = true;
    const outcome = await stopGateGracefully(this.core, this.link, { drainTimeoutMs: DEFAULT_GATE_TIMING.revokeDrainTimeoutMs, clock: this.proc.clock, log });
    if (this.proc.dead) return;
    // Its follower must not count a stop that drained and was reported as
    // a layer that left with calls unknown (World.layerLeftDirty).
    // Clean: drained, and its final report taken, or none sent while its
    // follower could have taken one (running, not frozen).
    const fp = this.scvm.followerProc;
    const couldReport = !outcome.finalReportSent && !!fp && !fp.dead && !fp.paused;
    if (outcome.callsLeft === 0 && (outcome.finalReported || couldReport)) this.scvm.cleanStop = { gate: this, at: w.kernel.now };
    else this.scvm.uncleanDepartureAt = w.kernel.now;
    const exit = () => {
      if (this.proc.dead) return;
      // As for a kill: with its follower frozen and no fence agent, calls it
      // leaves behind would have nobody to fence them (DESIGN §4's limit).
      if (outcome.callsLeft > 0 && !w.cfg.fenceAgent && this.scvm.followerProc?.paused && !this.scvm.followerProc.dead) return void w.kernel.after(50, exit);
      this.kill();
      w.gateDied(this.scvm.i);
    };
    exit();
  }
}

/**
 * The previous release's follower, as a gate sees it: no absolute deadline,
 * only the milliseconds left, which the gate counts from when it reads them.
 */
function relativeLeaseClient(client: GateClient): GateClient {
  const strip = <T extends object>(m: T): T => {
    const c = { ...m } as Record<string, unknown>;
    if (c.lease) c.lease = { ...(c.lease as object), deadlineMonotonicMs: 0 };
    if ('leaseDeadlineMonotonicMs' in c) c.leaseDeadlineMonotonicMs = 0;
    return c as T;
  };
  return new Proxy(client, {
    get(target, prop) {
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      if (prop === 'WatchRevokes') {
        return (...args: unknown[]) => {
          const s = (v as (...a: unknown[]) => EventEmitter)(...args);
          const out = new EventEmitter() as EventEmitter & { cancel(): void };
          out.cancel = () => (s as unknown as { cancel(): void }).cancel();
          for (const ev of ['error', 'end', 'status', 'close']) s.on(ev, (...a: unknown[]) => out.emit(ev, ...a));
          s.on('data', (m: object) => out.emit('data', strip(m)));
          return out;
        };
      }
      if (prop === 'Admit') {
        return (...args: unknown[]) => {
          const cb = args.pop() as (e: unknown, r?: object) => void;
          return (v as (...a: unknown[]) => unknown)(...args, (e: unknown, r?: object) => cb(e, r && strip(r)));
        };
      }
      return v;
    },
  }) as GateClient;
}

/** One SCVM: a follower, its gate (NFS layer) and its NFS server, on one machine. */
export class SimScvm {
  readonly machine: Machine;
  readonly gateAddress: string;
  follower?: Follower;
  followerProc?: SimProcess;
  gate?: SimGate;
  readonly nfs: SimNfs;
  private gen = 0;
  nfsDownSince?: number;
  /** Until then a fence run here is failing or has just failed (the simulation's own record of the outcomes it drew). */
  fenceFailingUntil = -Infinity;
  /** Until then every fence run here fails at once (a broken fence command: a fault sets it; healing ends it). */
  fenceBrokenUntil = -Infinity;
  /**
   * When the fence agent's latest run against this SCVM killed it, which
   * master ran it, whether a session of it opened during that run, and when
   * a follower or gate of it first started again after.
   */
  lastAgentKill?: { at: number; by: SimProcess; term: number | undefined; openedDuringRun: boolean; backAt?: number };
  /** When a master last opened a session of this server. */
  sessionOpenedAt = -Infinity;
  /** Until when a call at this NFS server that hit the slow tail (over 300 ms) runs. */
  slowCallUntil = -Infinity;

  constructor(readonly world: World, readonly i: number) {
    const k = world.kernel;
    // Follower clocks drift within the bound the master assumes (10%)
    // against every master's clock, sometimes exactly at it.
    const rates = world.masters.map((m) => m.machine.rate);
    const lo = Math.max(...rates) / DRIFT, hi = Math.min(...rates) * DRIFT;
    const rate = k.rng.chance(world.cfg.swarm.driftAtEdge) ? (k.rng.chance(0.5) ? lo : hi) : k.rng.between(lo, hi);
    this.machine = new Machine(`scvm-${i}`, k.rng.between(1e5, 1e6), rate);
    this.gateAddress = `gate-${i}`;
    this.nfs = new SimNfs(world, this);
  }

  get hostId(): string {
    return `esx-${this.i}`;
  }

  startFollower(): void {
    const w = this.world;
    const k = w.kernel;
    this.startedAgain();
    const proc = (this.followerProc = new SimProcess(k, `follower-${this.i}.${++this.gen}`, this.machine));
    const health: NfsHealthSource = new SimNfsHealth(this, proc);
    const f = new Follower({
      ...DEFAULT_FOLLOWER_OPTIONS,
      ...oldFenceLead(),
      serverId: `scvm-${this.i}`, hostId: this.hostId,
      storageIp: `10.10.0.${20 + this.i}`, mgmtIp: `10.20.0.${20 + this.i}`,
      master: w.masterAddresses().join(','), gateListen: `unix:/sim/${this.gateAddress}`,
      tls: { insecure: true },
      nfsProbe: ['nfs@127.0.0.1:2050'],
    }, proc.clock, simLogger(k, `follower-${this.i}`), {
      fence: nfsFence(w, this, () => proc),
      nfsHealth: health,
      connect: (address) => w.net.client<SessionMasterClient>(proc, address, services().master),
      random: () => k.rng.next(),
      metrics: new Metrics('follower', { processMetrics: false }),
    });
    this.follower = f;
    const onDirty = f.hub.onDirty;
    f.hub.onDirty = (cause) => { if (cause === 'layer-left') w.layerLeftDirty(this); onDirty?.(cause); };
    w.watchAdmissions(this.i, f);
    w.net.listen(this.gateAddress, proc, [[services().gate, f.handlers()]]);
    k.schedule(k.now, () => void f.run(), proc);
  }

  startGate(): void {
    this.startedAgain();
    this.gate = new SimGate(this.world, this, ++this.gen);
  }

  private startedAgain(): void {
    if (this.lastAgentKill && this.lastAgentKill.backAt === undefined) this.lastAgentKill.backAt = this.world.kernel.now;
  }

  /** Starts the follower and the gate where they are not running (after a fence or a kill). */
  revive(): void {
    if (!this.followerProc || this.followerProc.dead) this.startFollower();
    if (!this.gate || this.gate.proc.dead) this.startGate();
  }

  killFollower(): void {
    if (!this.followerProc || this.followerProc.dead) return;
    // The same the other way round: a follower dying under a frozen gate.
    if (!this.world.cfg.fenceAgent && this.gate?.proc.paused && !this.gate.proc.dead) return;
    this.world.kernel.kill(this.followerProc);
    this.world.net.breakAll(this.followerProc);
    this.world.net.unlisten(this.gateAddress);
  }

  /** The gate that last stopped gracefully, drained and with its final report taken, and when. */
  cleanStop?: { gate: SimGate; at: number };
  /** When a gate last left otherwise (killed, or a stop that left calls or no final report). */
  uncleanDepartureAt = -Infinity;

  /** A planned restart's first half: the gate stops gracefully (SIGTERM) and exits; false when it cannot now. */
  stopGateGracefully(): boolean {
    const g = this.gate;
    if (!g || g.proc.dead || g.proc.paused) return false;
    const k = this.world.kernel;
    k.schedule(k.now, () => void g.stopGracefully(simLogger(k, `gate-${this.i}`)), g.proc);
    return true;
  }

  killGate(): void {
    if (!this.gate || this.gate.proc.dead) return;
    // A gate dying while its follower is frozen leaves nobody on this SCVM
    // to fence its NFS server: like a whole SCVM frozen, only the fence agent
    // covers it (the fence agent's own kills come through here too).
    if (!this.world.cfg.fenceAgent && this.followerProc?.paused && !this.followerProc.dead) return;
    this.uncleanDepartureAt = this.world.kernel.now;
    this.gate.kill();
    this.world.gateDied(this.i);
  }

  killNfs(): void {
    this.nfs.kill();
  }

  processes(): SimProcess[] {
    return [this.followerProc, this.gate?.proc, this.nfs.proc].filter((p): p is SimProcess => p !== undefined);
  }
}

/** The follower's NFS probe, as it would see its server: down once unanswered for 3 probes (1.5 s). */
class SimNfsHealth extends EventEmitter implements NfsHealthSource {
  readonly configured = true;
  state: ProbeState = 'unknown';

  constructor(private readonly scvm: SimScvm, private readonly proc: SimProcess) {
    super();
  }

  start(): void {
    const k = this.scvm.world.kernel;
    const tick = () => {
      const nfs = this.scvm.nfs.proc;
      const answering = !nfs.dead && !nfs.paused;
      if (answering) this.scvm.nfsDownSince = undefined;
      else this.scvm.nfsDownSince ??= k.now;
      const next: ProbeState = answering ? 'up' : k.now - (this.scvm.nfsDownSince ?? k.now) >= 1500 ? 'down' : this.state;
      if (next !== this.state) {
        this.state = next;
        this.emit('changed', next, next === 'down' ? ['nfs'] : []);
      }
      this.proc.clock.setTimeout(tick, 500);
    };
    this.proc.clock.setTimeout(tick, 0);
  }

  stop(): void {
    // Timers die with the process.
  }
}

/** One SCVM's NFS server: executes what reaches it, answers; a killed one is restarted by its supervisor. */
class SimNfs {
  proc: SimProcess;
  private gen = 0;

  constructor(private readonly world: World, private readonly scvm: SimScvm) {
    this.proc = this.spawn();
  }

  private spawn(): SimProcess {
    const p = new SimProcess(this.world.kernel, `nfs-${this.scvm.i}.${++this.gen}`, this.scvm.machine);
    p.simOnly = true;
    return p;
  }

  receive(conn: SimConn, call: SimCall): void {
    const k = this.world.kernel;
    const sw = this.world.cfg.swarm;
    const service = k.rng.chance(sw.nfsTailChance) ? k.rng.between(20, sw.nfsTailMaxMs) : k.rng.between(0.1, 3);
    if (service > 300) this.scvm.slowCallUntil = Math.max(this.scvm.slowCallUntil, k.now + service);
    k.schedule(k.now + service, () => {
      call.executed = true;
      this.world.executed(call);
      this.world.replyToGate(conn, call);
    }, call.nfs);
  }

  kill(): void {
    const k = this.world.kernel;
    if (this.proc.dead) return;
    k.kill(this.proc);
    this.world.nfsDied(this.scvm.i, this.proc);
    // The supervisor restarts it (the lab's loop sleeps 200 ms).
    k.after(200, () => { this.proc = this.spawn(); });
  }
}

/** A host's NFS connection, from its side. */
class HostConn {
  closed = false;
  conn?: SimConn;
  inFlight = 0;
  lastReplyAt: number;
  readonly openedAt: number;

  constructor(readonly host: SimHost, readonly gate: number, readonly address: string) {
    this.lastReplyAt = this.openedAt = host.world.kernel.now;
  }

  /** Messages from the gate to this host (held while a one-way partition holds that direction). */
  private get fromGate(): string {
    return `gate-${this.gate}>${this.host.hostId}`;
  }

  accepted(conn: SimConn): void {
    const w = this.host.world;
    w.hostGateSend(this.fromGate, () => {
      if (this.closed) return;
      this.conn = conn;
      this.host.pump(this);
    }, this.host.proc);
  }

  refused(): void {
    const w = this.host.world;
    w.kernel.schedule(w.kernel.now + w.latency(), () => this.host.lost(this), this.host.proc);
  }

  reply(_call: SimCall): void {
    const w = this.host.world;
    w.hostGateSend(this.fromGate, () => {
      if (this.closed) return;
      this.inFlight--;
      this.lastReplyAt = w.kernel.now;
      this.host.lastDoneAt = w.kernel.now;
      // The next call after a think time: enough calls to have some in
      // flight at every fault, few enough to keep a schedule fast.
      w.kernel.schedule(w.kernel.now + w.kernel.rng.between(0, w.cfg.swarm.thinkMaxMs), () => this.host.pump(this), this.host.proc);
    }, this.host.proc);
  }

  closedByGate(): void {
    const w = this.host.world;
    w.hostGateSend(this.fromGate, () => this.host.lost(this), this.host.proc);
  }
}

/** An ESXi host: its NFS client writes through 192.168.33.2, wherever its route points. */
export class SimHost {
  /** When a call of this host last completed (its reply reached it). */
  lastDoneAt = 0;
  readonly proc: SimProcess;
  readonly hostId: string;
  readonly storageIp: string;
  /** Its management address (a fault may renumber it: renumber()). */
  mgmtIp: string;
  route: { target: number; via: 'local' | 'storage' | 'mgmt' };
  /** The connection new calls go to. */
  current?: HostConn;
  /** Older connections still open (their calls out), until they close or time out. */
  readonly older = new Set<HostConn>();
  agentProc?: SimProcess;
  agent?: MembershipFollower;
  private agentGen = 0;
  readonly depth: number;

  constructor(readonly world: World, readonly i: number) {
    const k = world.kernel;
    this.proc = new SimProcess(k, `esx-${i}`, new Machine(`esx-${i}`, 0, 1));
    this.proc.simOnly = true;
    this.hostId = `esx-${i}`;
    this.storageIp = `10.10.0.${10 + i}`;
    this.mgmtIp = `10.20.0.${10 + i}`;
    this.route = { target: i, via: 'local' };
    this.depth = 1 + k.rng.int(world.cfg.swarm.depthMax);
  }

  sourceAddress(): string {
    return this.route.via === 'local' ? LOCAL_CLIENT_IP : this.route.via === 'storage' ? this.storageIp : this.mgmtIp;
  }

  connect(): void {
    const w = this.world;
    if (this.current && !this.current.closed) return;
    const target = this.route.target;
    const hc = new HostConn(this, target, this.sourceAddress());
    this.current = hc;
    w.hostGateSend(`${this.hostId}>gate-${target}`, () => {
      const gate = w.scvms[target - 1].gate;
      if (!gate || gate.proc.dead) return void hc.refused();
      w.kernel.schedule(w.kernel.now, () => gate.connect(hc, hc.address), gate.proc);
    }, this.proc);
  }

  /** Keeps `depth` calls in flight on the connection. */
  pump(hc: HostConn): void {
    const w = this.world;
    while (hc.conn && !hc.closed && hc.inFlight < this.depth) {
      hc.inFlight++;
      const call: SimCall = { host: this.hostId, gate: hc.gate, nfs: hc.conn.nfs, executed: false };
      const conn = hc.conn;
      w.hostGateSend(`${this.hostId}>gate-${hc.gate}`, () => conn.receive(call), conn.gate.proc);
    }
  }

  lost(hc: HostConn): void {
    if (hc.closed) return;
    hc.closed = true;
    // The host closes its side: a gate that still forwards it sees the client go.
    hc.conn?.clientClosed();
    this.older.delete(hc);
    if (this.current !== hc) return;
    this.current = undefined;
    // Reconnect as an NFS client does, after a short pause.
    this.world.kernel.schedule(this.world.kernel.now + this.world.kernel.rng.between(20, 400), () => this.connect(), this.proc);
  }

  /**
   * The agent changed the route. New calls go to a new connection at once;
   * the old one is reset now (ss -K), closed a moment later, or left until
   * its calls time out, so a host can be connected to two gates for a while.
   */
  move(to: SimHost['route'], keepOld = false): void {
    const w = this.world;
    const r = w.kernel.rng;
    this.route = to;
    w.note(this.hostId, `route → ${to.via === 'local' ? 'local' : `scvm-${to.target} via ${to.via}`}`);
    const old = this.current;
    if (!old) return;
    this.current = undefined;
    this.older.add(old);
    // ss -K resets it at once (Linux); on ESXi the old connection stays
    // until its segments are reset from the far side, or its calls time out
    // (`keepOld`: a fault that wants that outcome).
    const choice = keepOld ? 1 : r.next();
    if (choice < 0.4) this.lost(old);
    else if (choice < 0.7) w.kernel.schedule(w.kernel.now + r.between(0, 1000), () => this.lost(old), this.proc);
    this.connect();
  }

  /** NFS RPC timeout: a connection with calls out and no reply for 3 s is given up. */
  watchdog(): void {
    const w = this.world;
    for (const hc of [this.current, ...this.older]) {
      if (!hc) continue;
      if (hc.inFlight > 0 && w.kernel.now - hc.lastReplyAt > 3000) this.lost(hc);
      else if (!hc.conn && w.kernel.now - hc.openedAt > 3000) this.lost(hc);
    }
    w.kernel.schedule(w.kernel.now + 500, () => this.watchdog(), this.proc);
  }

  /**
   * The agent's route decision every 500 ms, with the real decideRoute over
   * the membership its real MembershipFollower sees: hosts move away when
   * their server is unlisted or its NFS service is down, as in production,
   * not only when a fault moves them. The local SCVM always answers pings
   * (its kernel does, whatever its processes do); a 3 s hold-down.
   */
  routeLoop(): void {
    const w = this.world;
    const k = w.kernel;
    const local = new ProbeTracker(3);
    const listed = new ProbeTracker(3);
    let healthySince: number | undefined;
    const tick = () => {
      const members = this.agent?.last;
      if (members) {
        const now = k.now;
        local.record(true, now);
        listed.record(members.some((m) => m.serverId === `scvm-${this.i}`), now);
        if (local.state === 'up' && listed.state === 'up') healthySince ??= now;
        else healthySince = undefined;
        const current: Route = this.route.via === 'local' ? { kind: 'local' } : { kind: 'remote', gateway: this.route.via === 'storage' ? `10.10.0.${20 + this.route.target}` : `10.20.0.${20 + this.route.target}` };
        const d = decideRoute({
          hostId: this.hostId, localServerId: `scvm-${this.i}`, members, local: local.state, localListed: listed.state,
          localHealthyForMs: healthySince === undefined ? 0 : now - healthySince,
          remote: new Map(members.map((m) => [m.serverId, { storage: true, mgmt: true }])), current, holdDownMs: 3000,
        });
        const r = d.route;
        const next = r.kind === 'local'
          ? { target: this.i, via: 'local' as const }
          : { target: Number(r.gateway.split('.')[3]) - 20, via: r.gateway.startsWith('10.10.') ? 'storage' as const : 'mgmt' as const };
        if (next.target !== this.route.target || next.via !== this.route.via) this.move(next);
      }
      k.schedule(k.now + 500, tick, this.proc, 'timer');
    };
    k.schedule(k.now + 500, tick, this.proc, 'timer');
  }

  /**
   * The host's management address changes (re-IP, so another host may get
   * the old one later): connections from the old address are reset, and its
   * agent starts again and registers the new one.
   */
  renumber(mgmtIp: string): void {
    const old = this.mgmtIp;
    this.world.note(this.hostId, `management address ${old} → ${mgmtIp}`);
    this.mgmtIp = mgmtIp;
    this.world.addressesChanged();
    for (const hc of [this.current, ...this.older]) if (hc && hc.address === old) this.lost(hc);
    this.startAgent(true);
  }

  startAgent(withMgmt: boolean): void {
    const w = this.world;
    const k = w.kernel;
    if (this.agentProc) { k.kill(this.agentProc); w.net.breakAll(this.agentProc); }
    const proc = (this.agentProc = new SimProcess(k, `agent-${this.i}.${++this.agentGen}`, this.proc.machine));
    this.agent = new MembershipFollower(w.masterAddresses().join(','), { hostId: this.hostId, storageIp: this.storageIp, mgmtIp: withMgmt ? this.mgmtIp : '', localServerId: `scvm-${this.i}` },
      simLogger(k, `agent-${this.i}`), { insecure: true }, {
        clock: proc.clock, random: () => k.rng.next(),
        connect: (address) => w.net.client<MembershipClient>(proc, address, services().membership),
      });
    const agent = this.agent;
    k.schedule(k.now, () => agent.start(), proc);
  }
}

/** The embedded master's state directory (--state-dir): survives its restarts. */
export class MemoryRegistry implements RegistryStore {
  private readonly servers = new Map<string, ServerRecord>();
  private readonly hosts = new Map<string, HostRecord>();

  async load(): Promise<{ servers: ServerRecord[]; hosts: HostRecord[] }> {
    return { servers: [...this.servers.values()], hosts: [...this.hosts.values()] };
  }

  /** Until then writes fail (a full or failing disk under the state directory). */
  failUntil = 0;
  constructor(private readonly kernel: Kernel) {}

  async saveServer(s: ServerRecord): Promise<void> {
    if (this.kernel.now < this.failUntil) throw new Error('ENOSPC: no space left on device');
    this.servers.set(s.serverId, s);
  }

  saveHost(h: HostRecord): void {
    if (this.kernel.now < this.failUntil) return;
    this.hosts.set(h.id, h);
  }
}

export class SimMaster {
  proc?: SimProcess;
  readonly disk: MemoryRegistry;
  runtime?: MasterRuntime;
  leadership?: Leadership;
  readonly machine: Machine;
  private gen = 0;

  constructor(readonly world: World, readonly k: number) {
    this.disk = new MemoryRegistry(world.kernel);
    const r = world.kernel.rng;
    const edge = Math.sqrt(DRIFT);
    const rate = !world.cfg.swarm.masterDrift ? 1 : r.chance(world.cfg.swarm.driftAtEdge) ? (r.chance(0.5) ? edge : 1 / edge) : r.between(1 / edge, edge);
    this.machine = new Machine(`m${k}`, r.between(1e5, 1e6), rate);
  }

  get address(): string {
    return `m${this.k}:7410`;
  }

  start(): void {
    const w = this.world;
    const kernel = w.kernel;
    const proc = (this.proc = new SimProcess(kernel, `master-${this.k}.${++this.gen}`, this.machine));
    const log = simLogger(kernel, `master-${this.k}`);
    const lowered = w.cfg.limitAfterRestart !== undefined && (this.k > 1 || this.gen > 1);
    const opts: MasterOptions = {
      ...DEFAULT_MASTER_OPTIONS, id: `m${this.k}`, listen: this.address, tls: { insecure: true },
      limits: { ...DEFAULT_MASTER_OPTIONS.limits, maxClientsPerSession: lowered ? w.cfg.limitAfterRestart! : w.cfg.maxClientsPerSession },
    };
    const self = { id: opts.id, address: this.address };
    this.leadership = w.etcd
      ? new EtcdLeadership({ store: w.etcd.client(proc), self, leaseTtlSeconds: opts.electionTtlSeconds, clock: proc.clock, log, random: () => kernel.rng.next() })
      : new EmbeddedLeadership(self, w.nextEmbeddedEpoch(), this.disk);
    const health = { setStatus: () => undefined };
    this.runtime = new MasterRuntime(opts, this.leadership, health, {
      clock: proc.clock, log, ids: () => kernel.rng.hex(8),
      metrics: new MasterMetrics(log, new Metrics('master', { processMetrics: false })),
      fenceRun: w.cfg.fenceAgent ? (s, why) => w.fenceScvm(s, why, proc) : undefined,
    });
    w.net.listen(this.address, proc, [[services().master, this.runtime.sessionMasterHandlers()], [services().membership, this.runtime.membershipHandlers()]]);
    const leadership = this.leadership;
    kernel.schedule(kernel.now, () => void leadership.start().catch(() => undefined), proc);
  }

  /** Starts it again unless it is running (two embedded masters on one address would be a split brain no software prevents). */
  restart(): void {
    if (this.proc && !this.proc.dead) return;
    this.start();
  }

  kill(): void {
    const w = this.world;
    if (!this.proc || this.proc.dead) return;
    w.kernel.kill(this.proc);
    w.net.breakAll(this.proc);
    w.net.unlisten(this.address);
  }

  isLeader(): boolean {
    return !!this.proc && !this.proc.dead && !!this.runtime?.core();
  }
}

/**
 * A server nothing can be waiting for: its follower lives, its live
 * session's fence works, and its NFS layers account for every call.
 */
function accountsForEveryCall(s: SimScvm | undefined, session: Pick<Session, 'fencing'> | undefined): boolean {
  return !!s?.follower && !!s.followerProc && !s.followerProc.dead && !s.follower.hub.dirty && session?.fencing === 'FENCING_READY';
}

/**
 * The simulated cluster: masters (embedded or elected), SCVMs (follower, gate,
 * NFS server), hosts (NFS clients and agents), on the kernel's virtual time,
 * with the invariants of DESIGN §4 checked after every step, by host identity.
 */
export class World {
  readonly kernel: Kernel;
  readonly net: SimNetwork;
  readonly etcd?: SimEtcd;
  readonly masters: SimMaster[] = [];
  readonly scvms: SimScvm[] = [];
  readonly hosts: SimHost[] = [];
  readonly violations: string[] = [];
  /** Calls sent to an NFS server and not yet executed or dead. */
  private readonly pending = new Set<SimCall>();
  /** Per client id: the newest token admitted anywhere, and where. */
  private readonly lastToken = new Map<string, { token: Token; server: number }>();
  private embeddedEpoch: number;
  admissions = 0;
  executions = 0;

  constructor(readonly cfg: WorldConfig) {
    this.kernel = new Kernel(cfg.seed);
    const k = this.kernel;
    if (cfg.keepTrace) k.trace.keep = 5000;
    this.net = new SimNetwork(k, {
      latency: () => this.latency(),
      unaryFate: () => {
        const x = k.rng.next();
        // Healed means healed: no more lost, repeated or late replies.
        if (this.healedAt !== undefined) return 'deliver';
        const { dropRate, dupRate, lateReplyRate, lateDuplicateRate } = cfg.swarm;
        const fate = x < dropRate ? 'drop-request' : x < 2 * dropRate ? 'drop-reply' : x < 2 * dropRate + dupRate ? 'duplicate'
          : x < 2 * dropRate + dupRate + lateReplyRate ? 'late-reply'
          : x < 2 * dropRate + dupRate + lateReplyRate + lateDuplicateRate ? 'late-duplicate' : 'deliver';
        // A lost or late reply is a fault until the caller's retry could be through (a needless fence's test).
        if (fate !== 'deliver') k.disturbedAt = Math.max(k.disturbedAt, k.now + Math.max(cfg.swarm.lateReplyMaxMs, cfg.swarm.lateDuplicateMaxMs, 1000));
        return fate;
      },
      lateReplyMs: () => k.rng.between(20, cfg.swarm.lateReplyMaxMs),
      lateDuplicateMs: () => k.rng.between(20, cfg.swarm.lateDuplicateMaxMs),
    });
    if (cfg.mode === 'elected') this.etcd = new SimEtcd(k, () => this.latency());
    if (cfg.swarm.lateTimerChance) {
      const { lateTimerChance, lateTimerMaxMs } = cfg.swarm;
      // A late timer stalls its process (Kernel.stall): like a pause, never
      // where the SCVM's other fencer is frozen or dead without the fence
      // agent (mayPause), or no one fences at the lease's fence point.
      k.timerLateness = (p) => (this.healedAt === undefined && this.mayPause(p) && k.rng.chance(lateTimerChance) ? k.rng.between(1, lateTimerMaxMs) : 0);
    }
    const condemnations = new CondemnationCheck({
      now: () => k.now,
      masterProc: (who) => this.masters.find((m) => `master-${m.k}` === who)?.proc,
      followerProc: (serverId) => this.scvms.find((x) => `scvm-${x.i}` === serverId)?.followerProc,
      followerLogName: (serverId) => serverId.replace(/^scvm-/, 'follower-'),
      unheldSince: (a, b) => this.net.unheldSince(a, b),
      maxLatencyMs: () => (cfg.swarm.burstChance > 0 ? cfg.swarm.burstMaxMs : 2),
      violate: (text) => this.violate(text),
    });
    k.onLogEvent = (who, ev, fields, debug) => {
      if (!debug) condemnations.onLogEvent(who, ev, fields);
      if (ev === 'master.term') this.termStartedAt.set(who, k.now);
      if (ev === 'login.granted') this.checkTokenUnique(String(fields.token), String(fields.client), String(fields.session));
      if (ev === 'election.elected') {
        // Each term's epoch is new: its fencing tokens count from 1.
        const epoch = String(fields.epoch);
        if (this.epochsElected.has(epoch)) this.violate(`epoch ${epoch} elected twice (${this.epochsElected.get(epoch)}, then ${who}): a second term would grant the first one's fencing tokens again`);
        else this.epochsElected.set(epoch, who);
      }
      if (ev === 'session.opened' && who.startsWith('master-')) {
        const opened = this.scvms.find((x) => `scvm-${x.i}` === fields.server);
        if (opened) opened.sessionOpenedAt = k.now;
      }
      if (!this.logWatchers.length) return;
      for (const watch of [...this.logWatchers]) if (watch(who, ev, fields) === true) this.logWatchers.splice(this.logWatchers.indexOf(watch), 1);
    };
    this.embeddedEpoch = 1_700_000_000_000 + k.rng.int(1e9);
    const masters = cfg.mode === 'elected' ? 3 : 1;
    for (let m = 1; m <= masters; m++) this.masters.push(new SimMaster(this, m));
    for (let i = 1; i <= cfg.scvms; i++) this.scvms.push(new SimScvm(this, i));
    for (let i = 1; i <= cfg.scvms; i++) this.hosts.push(new SimHost(this, i));
  }

  /** One message's delay: mostly sub-millisecond, sometimes a burst of queueing. */
  latency(): number {
    const r = this.kernel.rng;
    const sw = this.cfg.swarm;
    // After the heal the network is calm: bursts of queueing are faults too.
    if (this.healedAt === undefined && r.chance(sw.burstChance)) {
      const late = r.between(20, sw.burstMaxMs);
      // A fault until the message is through (a needless fence's test).
      this.kernel.disturbedAt = Math.max(this.kernel.disturbedAt, this.kernel.now + late);
      return late;
    }
    return r.between(0.05, 2);
  }

  /**
   * Host↔gate directions a one-way partition holds (`esx-1>gate-2`,
   * `gate-2>esx-1`), with what waits to go on: TCP retransmits, so nothing is
   * lost, only late (the host gives a stalled connection up after 3 s).
   */
  private readonly hostGateHeld = new Map<string, Array<() => void>>();

  /** One message between a host and a gate, after the usual latency, unless that direction is held. */
  hostGateSend(direction: string, fn: () => void, proc: SimProcess): void {
    const held = this.hostGateHeld.size ? this.hostGateHeld.get(direction) : undefined;
    if (held) held.push(() => this.kernel.schedule(this.kernel.now + this.latency(), fn, proc));
    else this.kernel.schedule(this.kernel.now + this.latency(), fn, proc);
  }

  holdHostGate(direction: string): void {
    this.kernel.disturbedAt = this.kernel.now;
    if (this.healedAt === undefined && !this.hostGateHeld.has(direction)) this.hostGateHeld.set(direction, []);
  }

  releaseHostGate(direction: string): void {
    const held = this.hostGateHeld.get(direction);
    if (!held) return;
    this.kernel.disturbedAt = this.kernel.now;
    this.hostGateHeld.delete(direction);
    for (const go of held) go();
  }

  masterAddresses(): string[] {
    return this.masters.map((m) => m.address);
  }

  nextEmbeddedEpoch(): number {
    // The embedded master's epoch is its start time in wall-clock ms (master.ts).
    this.embeddedEpoch += 1000 + this.kernel.rng.int(5000);
    return this.embeddedEpoch;
  }

  note(who: string, text: string): void {
    this.kernel.trace.add(who, text);
  }

  start(): void {
    for (const m of this.masters) m.start();
    const joinLater = this.cfg.lateServer ? this.scvms[this.scvms.length - 1] : undefined;
    for (const s of this.scvms) if (s !== joinLater) { s.startFollower(); s.startGate(); }
    for (const h of this.hosts) {
      h.startAgent(!this.cfg.lateMgmtRegistration || this.kernel.rng.chance(0.5));
      this.kernel.after(this.kernel.rng.between(500, 2500), () => h.connect());
      this.kernel.after(1000, () => h.watchdog());
      h.routeLoop();
    }
  }

  /** The host a client id stands for, by ground truth (not by what the master believes). */
  hostOf(clientId: string, gate: number): string {
    if (clientId.startsWith('host:')) return clientId.slice(5);
    if (clientId.startsWith('local:')) return `esx-${gate}`;
    if (clientId.startsWith('ip:')) {
      const ip = clientId.slice(3);
      const h = this.hosts.find((x) => x.storageIp === ip || x.mgmtIp === ip);
      return h ? h.hostId : clientId;
    }
    return clientId;
  }

  watchAdmissions(i: number, f: Follower): void {
    const grant = f.admissions.grant.bind(f.admissions);
    f.admissions.grant = (address: string, clientId: string, token: Token) => {
      const held = f.admissions.tokenOf(clientId);
      const ok = grant(address, clientId, token);
      if (!ok) return ok;
      // Two admissions of one client from two addresses run side by side, so
      // a follower may be handed an older grant after a newer one; what it
      // holds (and claims, and hands its gate) must not go back.
      const now = f.admissions.tokenOf(clientId);
      if (held && now && compareTokens(now, held) < 0) this.violate(`scvm-${i}'s token for ${clientId} went back from ${formatToken(held)} to ${formatToken(now)}: an older grant landed last`);
      this.checkToken(i, f, clientId, token);
      return ok;
    };
  }

  private checkToken(i: number, f: Follower, clientId: string, token: Token): void {
    if (token.epoch < f.seenEpoch) this.violate(`scvm-${i} admitted ${clientId} with token ${formatToken(token)} from an epoch older than ${f.seenEpoch}, which it had seen`);
    const last = this.lastToken.get(clientId);
    if (last) {
      const c = compareTokens(token, last.token);
      // On one server an older grant may land after a newer one (held above);
      // across servers the older one should have been revoked first.
      if (c < 0 && last.server !== i) this.violate(`${clientId}: token went back from ${formatToken(last.token)} (scvm-${last.server}) to ${formatToken(token)} (scvm-${i})`);
      if (c === 0 && last.server !== i) this.violate(`${clientId}: token ${formatToken(token)} admitted by scvm-${last.server} and scvm-${i}`);
    }
    if (!last || compareTokens(token, last.token) >= 0) this.lastToken.set(clientId, { token, server: i });
  }

  noteAdmitted(i: number, grant: AdmitGrant): void {
    this.admissions++;
    this.note(`gate-${i}`, `admitted ${grant.clientId} token ${formatToken(grant.token)}`);
  }

  gateEvent(i: number, e: GateEventBody): void {
    if (e.ev === 'drop') this.note(`gate-${i}`, `drop ${e.client} (${e.why}), ${e.pending} in flight`);
  }

  gateDied(i: number): void {
    for (const h of this.hosts) if (h.current?.gate === i) h.lost(h.current);
  }

  /** Per host, calls pending at each gate's NFS server (index: gate number): check() reads this, not every call. */
  private readonly pendingByHost = new Map<string, number[]>();

  private countPending(call: SimCall, d: 1 | -1): void {
    let counts = this.pendingByHost.get(call.host);
    if (!counts) this.pendingByHost.set(call.host, (counts = []));
    counts[call.gate] = (counts[call.gate] ?? 0) + d;
  }

  /** Calls of `host` sent to gate `gate`'s NFS server and not yet executed (ground truth, for faults that time a freeze). */
  pendingCalls(host: string, gate: number): number {
    return this.pendingByHost.get(host)?.[gate] ?? 0;
  }

  sendToNfs(conn: SimConn, call: SimCall): void {
    this.pending.add(call);
    this.countPending(call, 1);
    this.kernel.schedule(this.kernel.now + this.latency(), () => this.scvms[call.gate - 1].nfs.receive(conn, call), call.nfs);
  }

  replyToGate(conn: SimConn, call: SimCall): void {
    const gate = this.scvms[call.gate - 1].gate;
    if (!gate) return;
    this.kernel.schedule(this.kernel.now + this.latency(), () => conn.reply(call), gate.proc).quiet = true;
  }

  executed(call: SimCall): void {
    if (this.pending.delete(call)) this.countPending(call, -1);
    this.executions++;
  }

  nfsDied(i: number, proc: SimProcess): void {
    for (const c of [...this.pending]) if (c.nfs === proc && this.pending.delete(c)) this.countPending(c, -1);
    // Every connection to it breaks: its gate learns the server is gone.
    const gate = this.scvms[i - 1].gate;
    if (gate && !gate.proc.dead) {
      this.kernel.schedule(this.kernel.now + this.latency(), () => {
        for (const conn of [...gate.conns]) if (conn.nfs === proc) conn.backendGone();
      }, gate.proc);
    }
  }

  /** The master's fence agent: kill every process of the holder's SCVM from outside, then confirm. */
  fenceScvm(server: ServerRecord, why: string, caller: SimProcess): Promise<FenceResult> {
    const k = this.kernel;
    const startedAt = caller.clock.now();
    const runStartedAt = k.now;
    const scvm = this.scvms.find((s) => `scvm-${s.i}` === server.serverId);
    return new Promise((resolve) => {
      k.after(k.rng.between(...this.cfg.swarm.fenceAgentMs), () => {
        if (scvm) {
          this.note(caller.name, `fence agent kills scvm-${scvm.i}: ${why}`);
          this.checkAgentKillNeeded(scvm, why, caller);
          scvm.killFollower();
          scvm.killGate();
          scvm.killNfs();
          const kill: SimScvm['lastAgentKill'] = { at: k.now, by: caller, term: this.termOf(caller), openedDuringRun: scvm.sessionOpenedAt >= runStartedAt };
          scvm.lastAgentKill = kill;
          // Brought back up later, as an operator (or the hypervisor's restart) would.
          k.after(k.rng.between(1000, 4000), () => scvm.revive());
        }
        k.schedule(k.now + 1, () => resolve({ ok: true, startedAt, ms: caller.clock.now() - startedAt, detail: 'ok' }), caller);
      });
    });
  }

  /**
   * The fence agent kills an SCVM it killed before, which was brought back
   * up since: needless, and a violation, when nothing was disturbed anywhere
   * since it first came back (no process paused, resumed or killed, no partition,
   * no etcd or registry fault, no failed fence run or slow NFS call there).
   * Its new processes then answered everything in time, so no revoke could
   * go unacknowledged and no session silent: the master condemned a healthy
   * SCVM on its own (a new follower told its predecessor was unproven
   * though the agent had killed it, seed 1872910914, fenced again and again).
   * Only when the same master process ran both in one term, and no session of that
   * server opened while the earlier run went on: a new leader cannot know
   * what an earlier one's agent killed (leaders change without a fault too,
   * when etcd answers late), and a run proves dead only what ran when it
   * started (a session that opened during it may have outlived it, as far
   * as the master can tell): it holds what it cannot prove.
   */
  private checkAgentKillNeeded(scvm: SimScvm, why: string, caller: SimProcess): void {
    const last = scvm.lastAgentKill;
    const back = last?.backAt;
    if (!last || back === undefined || last.by !== caller || last.term !== this.termOf(caller) || last.openedDuringRun) return;
    if (this.kernel.disturbedAt >= back || this.faultHoldsNow() || scvm.slowCallUntil >= back || scvm.fenceFailingUntil >= back) return;
    this.violate(`needless fence: the fence agent kills scvm-${scvm.i} (${why}), though nothing was disturbed anywhere since it first came back up at t=${back.toFixed(0)} after the same master's agent killed it at t=${last.at.toFixed(0)} (no process paused or killed since nor paused still, no partition, no etcd or registry fault, no failed fence or slow NFS call there)`);
  }

  /** Every epoch a master was elected with, and which master. */
  private readonly epochsElected = new Map<string, string>();

  /** Every fencing token a master granted, and to which client and session. */
  private readonly tokensGranted = new Map<string, string>();

  /**
   * A fencing token names one grant: a master may hand the same client the
   * same token again in the same session, never to another client or
   * session (two terms with one epoch counted tokens from 1 twice, seed
   * 583294829).
   */
  private checkTokenUnique(token: string, client: string, session: string): void {
    const to = `${client} in session ${session}`;
    const before = this.tokensGranted.get(token);
    if (before === undefined) this.tokensGranted.set(token, to);
    else if (before !== to) this.violate(`fencing token ${token} granted twice: to ${before}, then to ${to}`);
  }

  /** Per master (log name), when its latest leadership term began. */
  private readonly termStartedAt = new Map<string, number>();

  /** When the term of the master process `p` began (its fence agent's memory is that term's). */
  private termOf(p: SimProcess): number | undefined {
    return this.termStartedAt.get(p.name.replace(/\.\d+$/, ''));
  }

  /** Every process of the world that exists now: SCVMs', masters', hosts' and their agents'. */
  private allProcesses(): SimProcess[] {
    const procs = [...this.scvms.flatMap((s) => s.processes()), ...this.masters.map((m) => m.proc), ...this.hosts.flatMap((h) => [h.proc, h.agentProc])];
    return procs.filter((p): p is SimProcess => p !== undefined);
  }

  /** A fault that struck earlier still holds: a process paused, a partition, etcd or the registry failing. */
  private faultHoldsNow(): boolean {
    return this.allProcesses().some((p) => p.paused && !p.dead) || this.net.anyPartition() || this.hostGateHeld.size > 0
      || (this.etcd?.faulty() ?? false) || this.masters.some((m) => this.kernel.now < m.disk.failUntil);
  }

  /** Per host, why its last connection attempt was refused (for a liveness failure's report). */
  readonly lastRefusal = new Map<string, string>();

  /** The registry's writes fail until `until` (a full disk under the embedded master's state directory, etcd over its space quota). */
  failRegistryWritesUntil(until: number): void {
    this.kernel.disturbedAt = this.kernel.now;
    if (this.etcd) this.etcd.plainWritesFailUntil = until;
    else for (const m of this.masters) m.disk.failUntil = until;
  }

  /** Set once every fault was healed (the liveness phase): no new fault takes effect after it. */
  healedAt?: number;

  /**
   * The liveness phase: every process thawed, every partition healed and
   * every call a fault lost ended, etcd reachable, dead followers, gates
   * and masters started again (an NFS server restarts by itself). After that each host must complete a call
   * within `livenessBoundMs`, or be held visibly (the leader names the hold).
   */
  healAll(): void {
    const k = this.kernel;
    this.healedAt = k.now;
    this.note('HEAL', 'every fault healed');
    for (const p of this.allProcesses()) k.resume(p);
    this.net.healAll();
    const lost = this.net.endLostCalls();
    if (lost) this.note('HEAL', `${lost} unary calls lost before the heal end now (UNAVAILABLE): their callers ask again`);
    for (const d of [...this.hostGateHeld.keys()]) this.releaseHostGate(d);
    this.etcd?.heal();
    for (const m of this.masters) m.disk.failUntil = 0;
    for (const s of this.scvms) s.revive();
    for (const m of this.masters) m.restart();
  }

  /** B: grace + wait-out + detection (agent ticks and membership) + 1 s. */
  get livenessBoundMs(): number {
    const o = DEFAULT_MASTER_OPTIONS;
    const drifted = Math.ceil(o.sessionTtlMs * (1 + o.clockDriftBound)) + o.graceMarginMs;
    return drifted + o.electionTtlSeconds * 1000 + drifted + 3 * 500 + 1000 + 1000;
  }

  /** Every hold a leader names: held clients and the grace's holders. */
  private leaderHolds(leader: ReturnType<NonNullable<SimMaster['runtime']>['core']> | undefined): string[] {
    if (!leader) return [];
    // A grace that still runs its time, or whose fence agent still fences
    // the servers it awaited, holds every login visibly (status: not ready),
    // and only so long: seed 488451098's grace killed every SCVM at its end.
    const grace = leader.readiness.inProgress() ? ['grace held: running or fencing the servers it awaited'] : [];
    return [...leader.logins.heldClients().map((x) => `${x.clientId} held by ${x.serverId} (${x.reason})`), ...leader.readiness.heldBy().map((id) => `grace held by ${id}`), ...grace];
  }

  /** Of a leader's holds (`held`), those that explain `h` visibly making no progress. */
  private namedHolds(h: SimHost, held: string[]): string[] {
    // A host refused for a session's client limit while that server holds
    // a client visibly is blocked by that hold (small limits, by config).
    // Or, with a limit below the number of hosts, by the hosts that moved
    // there during the faults (the refusal names the limit: visible too).
    const limited = /RESOURCE_EXHAUSTED/.test(this.lastRefusal.get(h.hostId) ?? '');
    const byLimit = !limited ? [] : Math.min(this.cfg.maxClientsPerSession, this.cfg.limitAfterRestart ?? Infinity) < this.hosts.length ? [`${h.hostId} refused by the client limit`] : held.filter((x) => x.includes(` held by scvm-${h.route.target} `));
    return [...held.filter((x) => x.startsWith(`host:${h.hostId} `) || x.startsWith('grace held')), ...byLimit];
  }

  /** Per host: when a leader last named a hold of it in the liveness phase (sampled). */
  private readonly lastNamedHold = new Map<string, number>();
  private lastHoldSample = -Infinity;

  /**
   * After each step of the liveness phase (at most every 50 ms): which hosts
   * that have not completed a call since the heal a leader names a hold of.
   * A hold that ends (a fence agent's run, a drain) is a heal for its host:
   * it gets B from then.
   */
  sampleHolds(): void {
    if (this.healedAt === undefined || this.kernel.now < this.lastHoldSample + 50) return;
    this.lastHoldSample = this.kernel.now;
    const held = this.leaderHolds(this.masters.find((m) => m.isLeader())?.runtime?.core());
    for (const h of this.hosts) {
      if (h.lastDoneAt > this.healedAt) continue;
      if (this.namedHolds(h, held).length) this.lastNamedHold.set(h.hostId, this.kernel.now);
    }
  }

  /** When the liveness check is due: B after the heal, or B after the last visible hold of a host with no call done since the heal. */
  livenessDeadline(): number {
    let at = this.healedAt! + this.livenessBoundMs;
    for (const h of this.hosts) {
      const held = this.lastNamedHold.get(h.hostId);
      if (h.lastDoneAt <= this.healedAt! && held !== undefined) at = Math.max(at, held + this.livenessBoundMs);
    }
    return at;
  }

  /**
   * After the heal, the steady state: one leader, its grace over, nothing
   * under way at it (no login waiting, no revoke unanswered, no client held,
   * no fence agent run); one live session per server, whose follower holds a
   * live lease, drains nothing, holds no revoke, has every NFS layer
   * accounted for, and whose gate serves; every host home at its own SCVM on
   * one connection, its agent running, a call completed since the heal, and
   * no call of it at any other SCVM's NFS server. Nothing left can act but
   * keepalives and calls: the rest of the liveness phase would repeat them
   * (about half its virtual time: steps fell by 31%, CPU by about 14%, on
   * seeds 50000–50059), so a schedule ends here, its liveness check then
   * passing.
   */
  settled(): boolean {
    if (this.healedAt === undefined) return false;
    const leaders = this.masters.filter((m) => m.isLeader());
    const core = leaders.length === 1 ? leaders[0].runtime?.core() : undefined;
    if (!core || !core.readiness.isReady() || !core.logins.quiet() || core.fenceAgent.running()) return false;
    const sessions = core.sessions.all();
    if (sessions.length !== this.scvms.length || sessions.some((x) => core.sessions.state(x) !== SessionState.Live)) return false;
    for (const s of this.scvms) {
      const fp = s.followerProc;
      const f = s.follower;
      if (!fp || fp.dead || fp.paused || !f || !s.gate || s.gate.proc.dead || s.gate.proc.paused || !s.gate.core.serving()) return false;
      if (!f.lease.isLive() || f.status().draining?.length || f.heldRevokeClients().length || f.hub.dirty) return false;
    }
    for (const h of this.hosts) {
      const ap = h.agentProc;
      if (h.route.target !== h.i || h.route.via !== 'local' || !connectedAt(h, h.i) || h.older.size || h.lastDoneAt <= this.healedAt || !ap || ap.dead || ap.paused) return false;
      const counts = this.pendingByHost.get(h.hostId) ?? [];
      if (counts.some((n, gate) => n > 0 && gate !== h.i)) return false;
    }
    return true;
  }

  /** The simulated host a `host:` client id names. */
  private hostOfClient(clientId: string): SimHost | undefined {
    return this.hosts.find((x) => `host:${x.hostId}` === clientId);
  }

  checkLiveness(): void {
    if (this.healedAt === undefined) return;
    const leader = this.masters.find((m) => m.isLeader())?.runtime?.core();
    // A named hold is visible, but it must be one something keeps: a server
    // whose follower lives, whose fence works and whose NFS layers account
    // for every call holds nobody's logins once the grace has run its time.
    for (const id of leader?.readiness.heldBy() ?? []) {
      const s = this.scvms.find((x) => `scvm-${x.i}` === id);
      const session = leader!.sessions.all().find((x) => x.serverId === id && leader!.sessions.state(x) === 'live');
      if (accountsForEveryCall(s, session)) {
        this.violate(`liveness: the grace holds every login for ${id}, though its follower lives, its fence works and its NFS layers account for every call (a hold nothing keeps; only an operator's fence-confirm would end it)`);
      }
    }
    // The same for a login held by a server: its live session's hold of a
    // client must end once that follower lives, its fence works and its NFS
    // layers account for every call (it acks, or fences and acks). The hold
    // is looked at again at the host's next login, so not while the grace
    // holds every login (campaign seed 1148972970: the revoke's late ack
    // came after the master gave it up, and the grace, held by another
    // server, kept the next login from asking again).
    const askedAgain = leader?.readiness.isReady() ? leader.logins.heldClients() : [];
    for (const hold of askedAgain) {
      const h = this.hostOfClient(hold.clientId);
      if (!h || h.lastDoneAt > this.healedAt) continue;
      const s = this.scvms.find((x) => `scvm-${x.i}` === hold.serverId);
      const session = leader!.sessions.all().find((x) => x.id === hold.sessionId && leader!.sessions.state(x) === 'live');
      if (accountsForEveryCall(s, session) && !s!.followerProc!.paused) {
        this.violate(`liveness: ${hold.clientId} is held by ${hold.serverId} (${hold.reason}), though its follower lives, its fence works and its NFS layers account for every call (a hold nothing keeps)`);
      }
    }
    // A follower holds a revoke only until a fence works: after the heal a
    // configured fence works (now and then after a failed run), so a revoke
    // still held keeps its host from moving for nothing.
    if (this.cfg.fence !== 'none') {
      for (const s of this.scvms) {
        if (!s.follower || !s.followerProc || s.followerProc.dead || s.followerProc.paused) continue;
        for (const clientId of s.follower.heldRevokeClients()) {
          const h = this.hostOfClient(clientId);
          if (h && h.lastDoneAt <= this.healedAt) this.violate(`liveness: scvm-${s.i}'s follower still holds a revoke of ${clientId} for want of a fence, though its fence command works again since the heal`);
        }
      }
    }
    // Nor does an earlier session of the very server the host asks from
    // keep anything safe: the client's calls stay on that NFS server, in
    // order, so a hold by it waits for nothing an operator could confirm.
    // Again only once the grace lets logins through: while it holds every
    // login (held by a server, maybe this one: a new follower without a
    // fence after one whose NFS layer left with calls unknown, whose calls
    // only an operator's fence-confirm proves gone), the login never
    // reaches the takeover (campaign seed 1148976341: the grace was held by
    // another server).
    for (const hold of askedAgain) {
      const h = this.hostOfClient(hold.clientId);
      if (!h || h.lastDoneAt > this.healedAt || `scvm-${h.route.target}` !== hold.serverId) continue;
      // A login refused for the session's client limit never reaches the hold.
      if (/RESOURCE_EXHAUSTED/.test(this.lastRefusal.get(h.hostId) ?? '')) continue;
      const live = leader!.sessions.all().find((x) => x.serverId === hold.serverId && leader!.sessions.state(x) === 'live');
      if (live && live.id !== hold.sessionId) this.violate(`liveness: ${h.hostId} is held by an earlier session of ${hold.serverId}, the server it logs in at (${hold.reason})`);
    }
    const held = this.leaderHolds(leader);
    for (const h of this.hosts) {
      if (h.lastDoneAt > this.healedAt) continue;
      const named = this.namedHolds(h, held);
      if (named.length) {
        this.note('CHECK', `${h.hostId} completed no call since the heal, held visibly: ${named.join('; ')}`);
        continue;
      }
      const route = h.route.via === 'local' ? 'local' : `scvm-${h.route.target} via ${h.route.via}`;
      const heldUntil = this.lastNamedHold.get(h.hostId);
      const since = heldUntil === undefined ? '' : ` or after a leader last named its hold (t=${heldUntil.toFixed(0)})`;
      this.violate(`liveness: ${h.hostId} completed no call in ${this.livenessBoundMs} ms after every fault healed (t=${this.healedAt.toFixed(0)})${since}, and no leader names a hold of it${leader ? '' : ' (no leader)'}; routed ${route}, last refusal ${this.lastRefusal.get(h.hostId) ?? 'none'}`);
    }
  }

  /** False for the second of one SCVM's follower and gate to freeze, without the fence agent (schedule.ts). */
  mayPause(p: SimProcess): boolean {
    if (this.healedAt !== undefined) return false;
    if (this.cfg.fenceAgent) return true;
    for (const s of this.scvms) {
      if (this.reportingFenceFailure(s) && (p === s.followerProc || p === s.gate?.proc)) return false;
      // A gate in a graceful stop may give up draining and exit with calls
      // left at a hung NFS server: with its follower frozen, nobody could
      // fence them (seed 398923953 of a 50,000-schedule campaign).
      if (p === s.followerProc && s.gate?.stopping && !s.gate.proc.dead) return false;
      const sibling = p === s.followerProc ? s.gate?.proc : p === s.gate?.proc ? s.followerProc : undefined;
      // Frozen or dead, the sibling cannot fence either.
      if (sibling) return !sibling.paused && !sibling.dead;
    }
    return true;
  }

  /**
   * A fence run of this SCVM is failing or failed a moment ago: until its
   * follower could have told the master (a few keepalives), silencing the SCVM too (its
   * follower or gate frozen, its follower cut off) is a double fault no
   * software on the SCVM can answer, and the master cannot know the fence it
   * counts on failed: like a whole SCVM frozen, only the fence agent covers
   * it, and without one the simulation leaves that combination out.
   */
  reportingFenceFailure(s: SimScvm): boolean {
    return !this.cfg.fenceAgent && this.kernel.now < s.fenceFailingUntil;
  }

  /** Whether a fault may cut `a` from `b` now (see reportingFenceFailure). */
  mayCut(a: SimProcess, b: SimProcess): boolean {
    if (this.healedAt !== undefined) return false;
    return !this.scvms.some((s) => s.followerProc !== undefined && (a === s.followerProc || b === s.followerProc) && this.reportingFenceFailure(s));
  }

  /**
   * A follower counted an NFS layer that left as dirty (it will fence the
   * NFS server). Needless, and a violation, when the only layer that left
   * lately stopped gracefully, drained, and its final report was taken:
   * nothing it forwarded can still be in the NFS server.
   */
  layerLeftDirty(s: SimScvm): void {
    const stop = s.cleanStop;
    // Only while that gate is the last one started (no newer stream could
    // have been the one that left) and nothing else left since.
    if (stop && s.gate === stop.gate && this.kernel.now - stop.at < 500 && s.uncleanDepartureAt < stop.at) {
      this.violate(`needless fence: gate-${s.i} stopped gracefully (drained, final report taken) and its follower counted it a layer that left with calls unknown`);
    }
  }

  violate(text: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.kernel.now.toFixed(1)} ${text}`);
    this.note('CHECK', `VIOLATION ${text}`);
  }

  /**
   * DESIGN §4 by host identity: no host served by two gates at once, where a
   * gate serves a host while it has it admitted with a valid lease (on its
   * own clock) or while a call it forwarded for it may still run in its NFS
   * server.
   */
  /** Per gate number, the host each admitted client id stands for (hostOf is fixed per id and gate). */
  private readonly hostCaches: Array<Map<string, string>> = [];

  /**
   * Faults that strike on what a component said (its log events, debug
   * ones included, which the trace leaves out): a watcher returns true
   * when it is done and is then removed.
   */
  readonly logWatchers: Array<(who: string, ev: string, fields: Record<string, unknown>) => boolean | void> = [];

  /** A host's address changed (SimHost.renumber): which host an ip: client id stands for may too. */
  addressesChanged(): void {
    this.hostCaches.length = 0;
  }
  private readonly servedBits = new Map<string, number>();

  check(): void {
    // A bit per gate, per host: cheap enough for every step (no allocation
    // on the common path; this ran after each of ~100k steps per schedule).
    const servedBy = this.servedBits;
    servedBy.clear();
    let any = false;
    for (const s of this.scvms) {
      const g = s.gate;
      if (!g || g.proc.dead || !g.core.serving()) continue;
      const bit = 1 << s.i;
      const cache = (this.hostCaches[s.i] ??= new Map());
      for (const c of g.core.admittedIds()) {
        let host = cache.get(c);
        if (host === undefined) cache.set(c, (host = this.hostOf(c, s.i)));
        const bits = servedBy.get(host);
        if (bits === undefined) servedBy.set(host, bit);
        else if (!(bits & bit)) {
          any = true;
          servedBy.set(host, bits | bit);
        }
      }
    }
    // Calls to a dead NFS server left `pending` when it died (nfsDied).
    for (const [host, counts] of this.pendingByHost) {
      for (let gate = 1; gate < counts.length; gate++) {
        if (!counts[gate]) continue;
        const bits = servedBy.get(host) ?? 0;
        if (bits && !(bits & (1 << gate))) any = true;
        servedBy.set(host, bits | (1 << gate));
      }
    }
    if (!any) return;
    for (const [host, bits] of servedBy) {
      const gates = this.scvms.filter((s) => bits & (1 << s.i)).map((s) => `gate-${s.i}`);
      if (gates.length > 1) this.violate(`${host} served by ${gates.join(' and ')} at once`);
    }
  }
}
