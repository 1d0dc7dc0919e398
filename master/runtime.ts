import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import { mutant } from '../common/mutants';
import type { Logger } from '../common/log';
import { MASTER_SERVICE, MEMBERSHIP_SERVICE } from '../common/proto';
import type { SessionMasterHandlers } from '../gen/nfsha/v1/SessionMaster';
import type { MembershipHandlers } from '../gen/nfsha/v1/Membership';
import { createMasterCore, type MasterCore, type TermSettings } from './core';
import { graceMs } from './grace';
import type { LeaderInfo, Leadership, ServerRecord } from './leadership';
import type { MaintenanceRecord } from './maintenance';
import { MasterMetrics } from './metrics';
import type { MasterOptions } from './options';
import { clusterStatus, sessionMasterHandlers } from './service';
import { startSweeper } from './sweeper';

/** gRPC errors for calls that reach a master that is not the leader. */
export function notLeaderError(leader: LeaderInfo | undefined): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (leader) metadata.set('nfsha-leader', leader.address);
  const details = leader ? `not leader; the leader is ${leader.id} at ${leader.address}` : 'no leader elected (election in progress); retry';
  return Object.assign(new Error(details), { code: leader ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE, details, metadata });
}

export interface MasterRuntimeDeps {
  clock: Clock;
  log: Logger;
  metrics?: MasterMetrics;
  /** Session and revoke ids (random by default; the simulation seeds them). */
  ids?: () => string;
  fenceRun?: TermSettings['fenceRun'];
}

type Handler = (call: never, cb?: never) => void;

/**
 * A master candidate: follows its Leadership, builds a fresh term's state when
 * elected, drains it when deposed, and answers as "not leader" otherwise.
 */
export class MasterRuntime {
  private current?: MasterCore;
  private sweeper?: { stop(): void };
  private term = 0;
  readonly metrics: MasterMetrics;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(
    readonly opts: MasterOptions,
    readonly leadership: Leadership,
    private readonly health: { setStatus(service: string, status: 'SERVING' | 'NOT_SERVING'): void },
    private readonly deps: MasterRuntimeDeps,
  ) {
    this.clock = deps.clock;
    this.log = deps.log;
    this.metrics = deps.metrics ?? new MasterMetrics(deps.log);
    leadership.on('elected', (epoch) => void this.elected(epoch));
    leadership.on('deposed', (why) => this.deposed(why));
    this.metrics.follow(() => this.core());
  }

  core(): MasterCore | undefined {
    return this.current && this.leadership.isLeader() ? this.current : undefined;
  }

  private async elected(epoch: number): Promise<void> {
    const term = ++this.term;
    const store = this.leadership.registry;
    let expected: ServerRecord[] = [];
    let maintenance: MaintenanceRecord[] = [];
    let hosts = this.opts.hosts;
    if (store) {
      try {
        const reg = await store.load();
        expected = reg.servers;
        maintenance = reg.maintenance ?? [];
        hosts = [...reg.hosts, ...this.opts.hosts];
      } catch (err) {
        this.log.warn({ ev: 'registry.load.failed', err: (err as Error).message }, 'could not load registry; waiting out the full grace period');
      }
    }
    // Only 'deposed' (which moves `term` on) ends the term. isLeader() may be
    // false just now without that: the election lease ran out on this
    // clock during a stall, and a keepalive answered before it (handled
    // first on waking, before the expiry timer) renews it. The term's core
    // acts only while isLeader() holds (core(), mayAct), and a lapse that
    // lasts steps down and drains it. Giving the term up here left a
    // leader that kept the election, never built a term, and refused every
    // call as "no leader" for good (simulation seed 398908720).
    if (term !== this.term || (!this.leadership.isLeader() && mutant('master-term-given-up-on-lapse'))) return;
    const grace = graceMs(this.opts, this.leadership.leaseMs);
    const core = createMasterCore({ ...this.opts, hosts }, this.clock, this.log, {
      epoch, expectedServers: expected, graceMs: grace, store, observer: this.metrics.observer(), refusals: this.metrics.refusals,
      mayAct: () => this.current === core && this.leadership.isLeader(),
      leader: () => this.leadership.leader(),
      ids: this.deps.ids,
      fenceRun: this.deps.fenceRun,
      maintenance,
    });
    this.current = core;
    this.metrics.leaderChanges.inc({ to: 'leader' });
    this.sweeper = startSweeper(core);
    this.health.setStatus(MASTER_SERVICE, 'SERVING');
    this.health.setStatus(MEMBERSHIP_SERVICE, 'SERVING');
    this.log.info({ ev: 'master.term', epoch, grace_ms: grace, expecting: expected.map((s) => s.serverId), maintenance: core.maintenance.list().map((m) => m.serverId) }, 'leading: new term');
  }

  private deposed(why: string): void {
    this.term++;
    const core = this.current;
    this.current = undefined;
    this.sweeper?.stop();
    this.sweeper = undefined;
    this.health.setStatus(MASTER_SERVICE, 'NOT_SERVING');
    this.health.setStatus(MEMBERSHIP_SERVICE, 'NOT_SERVING');
    if (!core) return;
    this.metrics.leaderChanges.inc({ to: 'follower' });
    const err = notLeaderError(this.leadership.leader());
    for (const s of core.sessions.all()) s.sink?.end(grpc.status.FAILED_PRECONDITION, `leader stepped down: ${why}`, err.metadata);
    core.membership.endAll();
    core.readiness.dispose();
    this.log.warn({ ev: 'master.drained', epoch: core.epoch, why }, 'stopped leading: streams drained');
  }

  private refuse(): grpc.ServiceError {
    return notLeaderError(this.leadership.isLeader() ? undefined : this.leadership.leader());
  }

  /**
   * Handlers that run the current term's own handler, or refuse as "not
   * leader": one guard for every method (unary calls get the error in their
   * callback, streams as an error event).
   */
  private delegate<H extends object>(forTerm: (core: MasterCore) => H, names: Array<keyof H & string>, notLeading: Partial<H> = {}): H {
    const perTerm = new WeakMap<MasterCore, H>();
    const of = (core: MasterCore) => {
      let h = perTerm.get(core);
      if (!h) perTerm.set(core, (h = forTerm(core)));
      return h;
    };
    const out = {} as Record<string, Handler>;
    for (const name of names) {
      out[name] = ((call: { emit(ev: 'error', e: unknown): boolean }, cb?: (e: grpc.ServiceError) => void) => {
        const core = this.core();
        if (core) return (of(core)[name] as unknown as Handler)(call as never, cb as never);
        const fallback = notLeading[name] as unknown as Handler | undefined;
        if (fallback) return fallback(call as never, cb as never);
        if (cb) return cb(this.refuse());
        call.emit('error', this.refuse());
      }) as Handler;
    }
    return out as unknown as H;
  }

  /** SessionMaster handlers that delegate to the current term, or refuse. */
  sessionMasterHandlers(): SessionMasterHandlers {
    return this.delegate<SessionMasterHandlers>((core) => sessionMasterHandlers(core), ['Session', 'Login', 'Logout', 'ClusterStatus', 'ConfirmFence', 'SetMaintenance'], {
      ClusterStatus: (_call, cb) => {
        const leader = this.leadership.leader();
        cb(null, { masterId: this.opts.id, leader: false, leaderId: leader?.id ?? '', leaderAddress: leader?.address ?? '', sessions: [], clients: [], hosts: [], held: [], maintenance: [], ttlMs: this.opts.sessionTtlMs });
      },
    });
  }

  membershipHandlers(): MembershipHandlers {
    return this.delegate<MembershipHandlers>((core) => core.membership.handlers(), ['WatchMembers', 'ListMembers', 'ReportRoute']);
  }

  /** The cluster status of the current term (undefined when not leading). */
  status() {
    const core = this.core();
    return core ? clusterStatus(core) : undefined;
  }
}
