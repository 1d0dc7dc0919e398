import * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock } from '../common/clock';
import { bindServer, createServer } from '../common/grpc-server';
import { createLogger, type Logger } from '../common/log';
import { nfshaGrpc, DEPLOYER_SERVICE, MASTER_SERVICE, MEMBERSHIP_SERVICE } from '../common/proto';
import { deployerHandlers } from '../build/deploy/service';
import { fetchStatus } from '../common/status-client';
import type { SessionMasterHandlers } from '../gen/nfsha/v1/SessionMaster';
import type { MembershipHandlers } from '../gen/nfsha/v1/Membership';
import { EtcdLeadership } from './etcd-leadership';
import { HostRegistry } from './identity';
import { EmbeddedLeadership, type LeaderInfo, type Leadership, type RegistryStore } from './leadership';
import { LoginCoordinator } from './login';
import { FenceAgent } from './fence-agent';
import { MembershipFeed } from './membership';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from './options';
import { Readiness } from './readiness';
import { MasterMetrics } from './metrics';
import { clusterStatus, sessionMasterHandlers, type MasterCore, type Refusals } from './service';
import { KeyedRateLimiter } from '../common/rate-limit';
import { MASTER_RULES } from '../common/edge-rules';
import { loadOwnIdentity } from '../common/tls';
import { etcdConnection } from './etcd-client';
import { SessionState, SessionTable } from './sessions';
import { FencingTokens } from './tokens';

export interface RunningMaster {
  address: string;
  leadership: Leadership;
  /** The current term's state while this master leads. */
  core(): MasterCore | undefined;
  close(): Promise<void>;
}

export interface TermSettings {
  epoch: number;
  observer?: import('./login').LoginObserver;
  mayAct: () => boolean;
  expectedServers: string[];
  graceMs: number;
  store?: RegistryStore;
  leader: () => LeaderInfo | undefined;
  refusals?: Refusals;
}

/** One leadership term's state (no I/O): usable directly in tests. */
export function createMasterCore(opts: MasterOptions, clock: Clock, log: Logger, term: TermSettings): MasterCore {
  const sessions = new SessionTable(clock, {
    ttlMs: opts.sessionTtlMs,
    clockDriftBound: opts.clockDriftBound,
    graceMarginMs: opts.graceMarginMs,
  }, opts.limits.maxSessions);
  const registry = new HostRegistry(opts.hosts, opts.localClientIp);
  const readiness = new Readiness(clock, term.expectedServers, term.graceMs);
  const gates = { mayAct: term.mayAct, ready: () => readiness.ready() };
  const fenceAgent = new FenceAgent({ argv: opts.fenceAgent, timeoutMs: opts.fenceAgentTimeoutMs, clock, log });
  const logins = new LoginCoordinator({
    clock, sessions, registry, tokens: new FencingTokens(term.epoch), log, gates, observer: term.observer, limits: opts.limits, fenceAgent,
    revokeAckTimeoutMs: opts.revokeAckTimeoutMs, revokeDrainLimitMs: opts.revokeDrainLimitMs,
  });
  const membership = new MembershipFeed(clock, sessions, registry, term.epoch, log, term.store);
  return {
    id: opts.id, epoch: term.epoch, clock, sessions, logins, registry, membership,
    keepaliveIntervalMs: opts.keepaliveIntervalMs, log, gates, readiness, store: term.store, leader: term.leader,
    introductions: new KeyedRateLimiter(clock, opts.limits.introductionsPerSecond, opts.limits.introductionBurst),
    refusals: term.refusals ?? { limit: () => undefined, call: () => undefined },
    insecure: opts.tls.insecure === true,
  };
}

/**
 * How long a new term waits before granting logins (DESIGN §4): a follower of
 * the old term may serve until its lease surely ran out, and the old leader
 * may have acked keepalives until its own election lease ended.
 */
export function graceMs(opts: MasterOptions, oldLeaderLeaseMs: number): number {
  return Math.ceil(opts.sessionTtlMs * (1 + opts.clockDriftBound)) + opts.graceMarginMs + oldLeaderLeaseMs;
}

/** gRPC errors for calls that reach a master that is not the leader. */
export function notLeaderError(leader: LeaderInfo | undefined): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (leader) metadata.set('nfsha-leader', leader.address);
  const details = leader ? `not leader; the leader is ${leader.id} at ${leader.address}` : 'no leader elected (election in progress); retry';
  return Object.assign(new Error(details), { code: leader ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE, details, metadata });
}

/**
 * A master candidate: follows its Leadership, builds a fresh term's state when
 * elected, drains it when deposed, and answers as "not leader" otherwise.
 */
export class MasterRuntime {
  private current?: MasterCore;
  private sweeper?: NodeJS.Timeout;
  private term = 0;

  constructor(
    readonly opts: MasterOptions,
    readonly leadership: Leadership,
    private readonly health: { setStatus(service: string, status: 'SERVING' | 'NOT_SERVING'): void },
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly metrics = new MasterMetrics(log),
  ) {
    leadership.on('elected', (epoch) => void this.elected(epoch));
    leadership.on('deposed', (why) => this.deposed(why));
    metrics.follow(() => this.core());
  }

  core(): MasterCore | undefined {
    return this.current && this.leadership.isLeader() ? this.current : undefined;
  }

  private async elected(epoch: number): Promise<void> {
    const term = ++this.term;
    const store = this.leadership.registry;
    let expected: string[] = [];
    let hosts = this.opts.hosts;
    if (store) {
      try {
        const reg = await store.load();
        expected = reg.servers.map((s) => s.serverId);
        hosts = [...reg.hosts, ...this.opts.hosts];
      } catch (err) {
        this.log.warn({ ev: 'registry.load.failed', err: (err as Error).message }, 'could not load registry; waiting out the full grace period');
      }
    }
    if (term !== this.term || !this.leadership.isLeader()) return;
    const grace = graceMs(this.opts, this.leadership.leaseMs);
    const core = createMasterCore({ ...this.opts, hosts }, this.clock, this.log, {
      epoch, expectedServers: expected, graceMs: grace, store, observer: this.metrics.observer(), refusals: this.metrics.refusals,
      mayAct: () => this.current === core && this.leadership.isLeader(),
      leader: () => this.leadership.leader(),
    });
    this.current = core;
    this.metrics.leaderChanges.inc({ to: 'leader' });
    this.sweeper = startSweeper(core);
    this.health.setStatus(MASTER_SERVICE, 'SERVING');
    this.health.setStatus(MEMBERSHIP_SERVICE, 'SERVING');
    this.log.info({ ev: 'master.term', epoch, grace_ms: grace, expecting: expected }, 'leading: new term');
  }

  private deposed(why: string): void {
    this.term++;
    const core = this.current;
    this.current = undefined;
    if (this.sweeper) clearInterval(this.sweeper);
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

  /** SessionMaster handlers that delegate to the current term, or refuse. */
  sessionMasterHandlers(): SessionMasterHandlers {
    const forCore = new WeakMap<MasterCore, SessionMasterHandlers>();
    const of = (core: MasterCore) => {
      let h = forCore.get(core);
      if (!h) forCore.set(core, (h = sessionMasterHandlers(core)));
      return h;
    };
    return {
      Session: (call) => {
        const core = this.core();
        if (!core) return void call.emit('error', this.refuse());
        of(core).Session(call);
      },
      Login: (call, cb) => {
        const core = this.core();
        if (!core) return cb(this.refuse());
        of(core).Login(call, cb);
      },
      Logout: (call, cb) => {
        const core = this.core();
        if (!core) return cb(this.refuse());
        of(core).Logout(call, cb);
      },
      ClusterStatus: (_call, cb) => {
        const core = this.core();
        if (core) return cb(null, clusterStatus(core));
        const leader = this.leadership.leader();
        cb(null, { masterId: this.opts.id, leader: false, leaderId: leader?.id ?? '', leaderAddress: leader?.address ?? '', sessions: [], clients: [], hosts: [], ttlMs: this.opts.sessionTtlMs });
      },
    };
  }

  membershipHandlers(): MembershipHandlers {
    return {
      WatchMembers: (call) => {
        const core = this.core();
        if (!core) return void call.emit('error', this.refuse());
        core.membership.handlers().WatchMembers(call);
      },
      ListMembers: (call, cb) => {
        const core = this.core();
        if (!core) return cb(this.refuse());
        core.membership.handlers().ListMembers(call, cb);
      },
      ReportRoute: (call, cb) => {
        const core = this.core();
        if (!core) return cb(this.refuse());
        core.membership.handlers().ReportRoute(call, cb);
      },
    };
  }
}

/** Starts a master: the embedded single master, or a candidate in an etcd election. */
export async function startMaster(partial: Partial<MasterOptions> = {}, log = createLogger('master')): Promise<RunningMaster> {
  const opts: MasterOptions = { ...DEFAULT_MASTER_OPTIONS, ...partial };
  if (!opts.tls.insecure) loadOwnIdentity(opts.tls.dir, ['master']);
  const etcd = opts.etcdEndpoints.length ? etcdConnection(opts.etcdEndpoints, opts.tls) : undefined;
  const clock = systemClock;
  const metrics = new MasterMetrics(log);
  const refusals = metrics.refusals;
  const { server, health } = createServer({
    services: [MASTER_SERVICE, MEMBERSHIP_SERVICE, DEPLOYER_SERVICE],
    maxMessageBytes: opts.maxMessageBytes,
    edge: { rules: MASTER_RULES, insecure: opts.tls.insecure === true, refused: refusals.call },
  });
  health.setStatus(MASTER_SERVICE, 'NOT_SERVING');
  health.setStatus(MEMBERSHIP_SERVICE, 'NOT_SERVING');
  const bound = await bindServer(server, health, opts.listen, opts.tls);
  const self: LeaderInfo = { id: opts.id, address: opts.advertise || bound.address };
  // The embedded master has no durable counter, so its epoch is its start time
  // in wall-clock ms: a restarted master issues larger tokens than before.
  // (With etcd, the epoch is the leader key's revision instead.)
  const leadership: Leadership = etcd
    ? new EtcdLeadership({ connection: etcd, self, leaseTtlSeconds: opts.electionTtlSeconds, clock, log })
    : new EmbeddedLeadership(self, opts.epoch ?? Date.now());
  const runtime = new MasterRuntime(opts, leadership, health, clock, log, metrics);
  server.addService(nfshaGrpc().SessionMaster.service, runtime.sessionMasterHandlers());
  server.addService(nfshaGrpc().Membership.service, runtime.membershipHandlers());
  // Any candidate can deploy; registration is checked with the leader.
  server.addService(nfshaGrpc().Deployer.service, deployerHandlers({
    bundleDir: opts.bundleDir,
    stateDir: opts.deployStateDir,
    isRegistered: async (masters, hostId) => (await fetchStatus(masters, 2000, opts.tls)).hosts.some((h) => h.hostId === hostId && h.agentConnected),
    log,
  }));
  health.setStatus(DEPLOYER_SERVICE, 'SERVING');
  const metricsServer = opts.metricsListen ? await runtime.metrics.metrics.serve(opts.metricsListen) : undefined;
  log.info({ ev: 'master.started', metrics: metricsServer?.address, listen: bound.address, etcd: opts.etcdEndpoints, ttl_ms: opts.sessionTtlMs }, opts.etcdEndpoints.length ? 'master candidate serving' : 'embedded master serving');
  await leadership.start();
  return {
    address: bound.address,
    leadership,
    core: () => runtime.core(),
    close: async () => {
      await leadership.stop();
      await metricsServer?.close();
      await bound.close();
    },
  };
}

/** Logs session expiry once and forgets sessions whose followers surely stopped serving. */
function startSweeper(core: MasterCore): NodeJS.Timeout {
  const reported = new Set<string>();
  const timer = setInterval(() => {
    for (const s of core.sessions.all()) {
      const st = core.sessions.state(s);
      if (st === SessionState.Expired && !reported.has(s.id)) {
        reported.add(s.id);
        core.log.warn({ ev: 'session.expired', server: s.serverId, session: s.id, clients: core.logins.clientsOf(s.id).length }, 'session expired');
        s.sink?.end(grpc.status.NOT_FOUND, `session ${s.id} expired`);
      }
    }
    core.membership.refresh();
    const gone = core.sessions.sweep((s) => core.logins.mayForget(s));
    if (gone.length) {
      for (const s of gone) reported.delete(s.id);
      core.logins.forgetSessions(new Set(gone.map((s) => s.id)));
    }
  }, 100);
  timer.unref();
  return timer;
}

