import { createLogger, type Logger } from '../common/log';
import { systemClock, type Clock, type TimerHandle } from '../common/clock';
import { decideRoute, describeRoute, LOCAL, sameRoute, type Decision, type MemberView, type RemoteReachability, type Route } from './decision';
import { IcmpProber } from './icmp-prober';
import { MembershipFollower, type MembershipSource } from './membership-client';
import { loadOwnIdentity } from '../common/tls';
import type { AgentOptions } from './options';
import { ProbeTracker } from '../common/hysteresis';
import type { RouteBackend } from './routes/backend';
import { tcpProbe } from './tcp-prober';
import { AgentMetrics } from './agent-metrics';

/** Probes one address; `local` probes go over the private link to the local SCVM. */
export type Prober = (ip: string, local: boolean, timeoutMs: number) => Promise<boolean>;

/** What the agent talks to, swapped for fakes in unit tests. */
export interface AgentDeps {
  clock: Clock;
  probe: Prober;
  membership: MembershipSource;
  log: Logger;
}

export interface AgentState {
  route: Route;
  lastDecision?: Decision;
  members: MemberView[];
  masterConnected: boolean;
}

/**
 * The IO Reroute agent's loop: each tick probe, read the route back, decide,
 * and apply only what changed (repairing drift). Every change is one log line
 * with its reason.
 */
export class Agent {
  private readonly local: ProbeTracker;
  private readonly localListed: ProbeTracker;
  private readonly remote = new Map<string, { storage: ProbeTracker; mgmt: ProbeTracker }>();
  private readonly clock: Clock;
  private readonly membership: MembershipSource;
  private readonly prober: Prober;
  private readonly closeProber?: () => void;
  readonly log: Logger;
  private members: MemberView[] | undefined;
  private intended?: Route;
  private localHealthySince?: number;
  private timer?: TimerHandle;
  private localTimer?: TimerHandle;
  private stopped = false;
  private lastAlarm = '';
  private reported = false;
  private started = false;
  private ticking = false;
  private kicked = false;
  private nextProbeAt = 0;
  state: AgentState = { route: LOCAL, members: [], masterConnected: false };
  /** Only when served (--metrics-listen). */
  readonly metrics?: AgentMetrics;
  private metricsServer?: { address: string; close(): Promise<void> };

  constructor(readonly opts: AgentOptions, private readonly backend: RouteBackend, deps: Partial<AgentDeps> = {}) {
    this.log = deps.log ?? createLogger('agent', { host: opts.hostId });
    this.clock = deps.clock ?? systemClock;
    if (deps.probe) {
      this.prober = deps.probe;
    } else {
      const icmp = icmpProber(opts.privateInterface);
      this.prober = icmp.probe;
      this.closeProber = icmp.close;
    }
    this.local = new ProbeTracker(opts.missesToFail);
    this.localListed = new ProbeTracker(opts.missesToFail);
    this.members = opts.peers.length ? opts.peers : undefined;
    if (!deps.membership && !opts.tls.insecure) {
      loadOwnIdentity(opts.tls.dir, ['agent'], opts.hostId);
    }
    this.membership = deps.membership ?? new MembershipFollower(opts.master, { hostId: opts.hostId, storageIp: opts.storageIp, mgmtIp: opts.mgmtIp, localServerId: opts.localServerId }, this.log, opts.tls, { clock: this.clock });
    this.membership.on('members', (m) => {
      const leavingBefore = leavingOf(this.members);
      this.members = m;
      // A server marked leaving (maintenance) or back: act now, not at the
      // next tick, and without waiting for probes (an operator said so).
      if (leavingOf(m) !== leavingBefore) this.kick();
    });
    this.membership.on('connected', () => { this.reported = false; });
    if (opts.metricsListen) this.metrics = new AgentMetrics(() => ({ routeRemote: this.state.route.kind === 'remote', masterConnected: this.membership.connected }), opts.tls);
  }

  private trackerOf(serverId: string) {
    let t = this.remote.get(serverId);
    if (!t) {
      t = { storage: new ProbeTracker(this.opts.missesToFail), mgmt: new ProbeTracker(this.opts.missesToFail) };
      this.remote.set(serverId, t);
    }
    return t;
  }

  private async probeOnce(ip: string, local: boolean, everyMs: number): Promise<boolean> {
    const timeout = Math.max(15, Math.floor(everyMs * 0.8));
    const target = local ? 'local' : 'remote';
    const t0 = this.clock.now();
    const icmp = await this.prober(ip, local, timeout);
    this.metrics?.probed(target, icmp, (this.clock.now() - t0) / 1000);
    if (!icmp || !this.opts.tcpProbePort) return icmp;
    return tcpProbe(ip, this.opts.tcpProbePort, timeout);
  }

  /** Probes every remote member's storage and management IPs, in parallel (the local SCVM has its own loop). */
  private async probeRound(members: MemberView[]): Promise<void> {
    const now = this.clock.now();
    const remotes = members.filter((m) => m.serverId !== this.opts.localServerId && m.hostId !== this.opts.hostId);
    const jobs: Array<Promise<void>> = [];
    for (const m of remotes) {
      const t = this.trackerOf(m.serverId);
      if (m.storageIp) jobs.push(this.probeOnce(m.storageIp, false, this.opts.probeIntervalMs).then((ok) => t.storage.record(ok, now)));
      if (m.mgmtIp) jobs.push(this.probeOnce(m.mgmtIp, false, this.opts.probeIntervalMs).then((ok) => t.mgmt.record(ok, now)));
    }
    await Promise.all(jobs);
  }

  /**
   * The local SCVM's liveness, on its own loop every localProbeIntervalMs
   * (100 ms by default, against 500 ms for the rest): when its state
   * changes, the agent decides at once (a kick), so a dead local SCVM is
   * left after missesToFail × 100 ms, not at the next tick after 3 × 500 ms.
   * Reading the route back (an `ip` or `esxcli` run) stays on the slower
   * tick. Failing back still waits the whole hold-down.
   */
  private async localLoop(): Promise<void> {
    if (this.stopped) return;
    const begun = this.clock.now();
    const before = `${this.local.state}/${this.localListed.state}`;
    try {
      this.local.record(await this.probeOnce(this.opts.nfsAddress, true, this.opts.localProbeIntervalMs), begun);
    } catch (err) {
      // No raw socket at all is fatal, as in the tick; anything else is a miss.
      if ((err as Error).name === 'ProbeSetupError') throw err;
      this.local.record(false, begun);
    }
    // Whether the master lists the local server (its follower in session,
    // its NFS server up) is counted on this loop too: the master unlists a
    // server whose follower's stream closed 1 s ago, and waiting 3 ticks of
    // 500 ms more to believe it doubled what a follower kill costs.
    if (this.members) this.localListed.record(this.members.some((m) => m.serverId === this.opts.localServerId), begun);
    if (this.stopped) return;
    if (`${this.local.state}/${this.localListed.state}` !== before) this.kick();
    this.localTimer = this.clock.setTimeout(() => void this.localLoop().catch(this.fatal), Math.max(0, begun + this.opts.localProbeIntervalMs - this.clock.now()));
  }

  /** What the agent cannot run without (an ICMP raw socket): say so and exit 1, for the init script's watchdog to report. */
  private readonly fatal = (err: Error): void => {
    process.stderr.write(`nfsha agent: ${err.message}\n`);
    process.exit(1);
  };

  /** One round: probe (unless `probe` is false: a kick acts on what it knows), read the route back, decide, apply. */
  async tick(probe = true): Promise<void> {
    const started = this.clock.now();
    const members = this.members;
    if (members && probe) await this.probeRound(members);
    const actual = await this.backend.read();
    if (this.intended === undefined) {
      this.intended = actual;
      this.log.info({ ev: 'route.adopted', route: describeRoute(actual) }, 'adopted the existing route');
    }
    this.state.route = actual;
    this.state.masterConnected = this.membership.connected;
    if (!members) return; // no membership yet and no configured peers: nothing to decide on

    const now = this.clock.now();
    const localLeaving = members.some((m) => m.serverId === this.opts.localServerId && m.leaving);
    // Maintenance counts as a break: the hold-down starts when it ends.
    if (this.local.state === 'up' && this.localListed.state === 'up' && !localLeaving) this.localHealthySince ??= now;
    else this.localHealthySince = undefined;
    const remote = new Map<string, RemoteReachability>();
    for (const [id, t] of this.remote) remote.set(id, { storage: t.storage.state === 'up', mgmt: t.mgmt.state === 'up' });

    const decision = decideRoute({
      hostId: this.opts.hostId,
      localServerId: this.opts.localServerId,
      members,
      local: this.local.state,
      localListed: this.localListed.state,
      localHealthyForMs: this.localHealthySince === undefined ? 0 : now - this.localHealthySince,
      localLeaving,
      remote,
      current: this.intended,
      holdDownMs: this.opts.holdDownMs,
    });
    this.state.lastDecision = decision;
    this.state.members = members;
    if (decision.alarm) {
      if (this.lastAlarm !== decision.reason) this.log.error({ ev: 'route.no_healthy_target', route: describeRoute(actual), why: decision.reason }, 'no healthy Access Server');
      this.lastAlarm = decision.reason;
    } else {
      this.lastAlarm = '';
    }
    if (sameRoute(decision.route, actual)) {
      this.intended = decision.route;
      if (!this.reported) this.report();
      return;
    }
    const drift = sameRoute(decision.route, this.intended) && !sameRoute(actual, this.intended);
    await this.backend.apply(decision.route, actual);
    this.metrics?.routeChanged(drift ? 'repair' : decision.route.kind === 'local' ? 'failback' : actual.kind === 'local' ? 'reroute' : 'switch');
    this.intended = decision.route;
    this.state.route = decision.route;
    this.log.warn({
      ev: drift ? 'route.repaired' : 'route.changed',
      from: describeRoute(actual),
      to: describeRoute(decision.route),
      target: decision.target?.serverId ?? 'local',
      via: decision.target?.via,
      why: drift ? `route changed behind the agent's back; ${decision.reason}` : decision.reason,
      tick_ms: Math.round(this.clock.now() - started),
    }, drift ? 'route repaired' : 'route changed');
    this.report();
  }

  private report(): void {
    this.reported = true;
    const d = this.state.lastDecision;
    const route = this.state.route;
    this.membership.report({
      hostId: this.opts.hostId,
      route: route.kind,
      gateway: route.kind === 'remote' ? route.gateway : '',
      targetServerId: d?.target?.serverId ?? '',
      reason: d?.reason ?? '',
    });
  }

  start(): void {
    if (this.opts.metricsListen) {
      this.metrics!.serve(this.opts.metricsListen).then((m) => { this.metricsServer = m; }, (err: Error) => this.log.error({ ev: 'metrics.failed', err: err.message }, 'cannot serve metrics'));
    }
    this.membership.start();
    this.started = true;
    void this.localLoop().catch(this.fatal);
    void this.loop(true).catch(this.fatal);
    this.log.info({ ev: 'agent.started', backend: this.backend.name, master: this.opts.master, probe_ms: this.opts.probeIntervalMs, local_probe_ms: this.opts.localProbeIntervalMs, hold_down_ms: this.opts.holdDownMs }, 'agent running');
  }

  /** Runs ticks one at a time: a kick during a tick runs one more right after it. */
  private async loop(probe: boolean): Promise<void> {
    if (this.stopped) return;
    if (this.ticking) {
      this.kicked = true;
      return;
    }
    this.ticking = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const begun = this.clock.now();
    try {
      await this.tick(probe);
    } catch (err) {
      this.log.error({ ev: 'agent.tick.failed', err: (err as Error).message }, 'tick failed');
      if ((err as Error).name === 'ProbeSetupError') {
        process.exitCode = 1;
        this.stop();
        throw err;
      }
    } finally {
      this.ticking = false;
    }
    if (this.stopped) return;
    // A kicked tick does not move the probe schedule.
    if (probe) this.nextProbeAt = begun + this.opts.probeIntervalMs;
    if (this.kicked) {
      this.kicked = false;
      return this.loop(false);
    }
    const wait = this.nextProbeAt - this.clock.now();
    // A kicked tick that ran just as a probe tick was due: run that one now
    // (a timer of 0 fires a millisecond late, and the schedule would creep).
    if (wait <= 0 && !probe) return this.loop(true);
    this.timer = this.clock.setTimeout(() => void this.loop(true).catch(() => undefined), Math.max(0, wait));
  }

  /** Acts on news now (a tick without probes), once the agent runs. */
  private kick(): void {
    if (this.started) void this.loop(false).catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    if (this.localTimer) this.clock.clearTimeout(this.localTimer);
    void this.metricsServer?.close();
    this.membership.stop();
    this.closeProber?.();
  }
}

/** The servers a membership marks leaving, as one comparable string. */
function leavingOf(members: MemberView[] | undefined): string {
  return (members ?? []).filter((m) => m.leaving).map((m) => m.serverId).sort().join(',');
}

/** ICMP over raw sockets: one for remote targets, one bound to the private link for the local SCVM. */
function icmpProber(privateInterface: string): { probe: Prober; close: () => void } {
  const remote = new IcmpProber();
  const local = new IcmpProber(privateInterface || undefined);
  return {
    probe: (ip, isLocal, timeoutMs) => (isLocal ? local : remote).probe(ip, timeoutMs),
    close: () => { remote.close(); local.close(); },
  };
}
