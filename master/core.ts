import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import { mutant } from '../common/mutants';
import { KeyedRateLimiter } from '../common/rate-limit';
import { FenceAgent } from './fence-agent';
import { HostRegistry } from './identity';
import type { LeaderInfo, RegistryStore, ServerRecord } from './leadership';
import { LoginCoordinator, type LoginGates, type LoginObserver } from './login';
import { Maintenance, type MaintenanceRecord } from './maintenance';
import { MembershipFeed } from './membership';
import type { MasterOptions } from './options';
import { Readiness } from './readiness';
import { SessionTable } from './sessions';
import type { FenceResult } from '../common/fence-command';
import { FencingTokens } from './tokens';

/** Where refusals are counted (metrics.ts). */
export interface Refusals {
  /** A call refused because a limit was reached. */
  limit(name: string): void;
  /** A call refused for its caller's identity or its input. */
  call(method: string, code: grpc.status, details: string): void;
}

export interface MasterCore {
  id: string;
  epoch: number;
  clock: Clock;
  sessions: SessionTable;
  logins: LoginCoordinator;
  registry: HostRegistry;
  membership: MembershipFeed;
  keepaliveIntervalMs: number;
  log: Logger;
  gates: LoginGates;
  readiness: Readiness;
  store?: RegistryStore;
  leader: () => LeaderInfo | undefined;
  /** Introductions per server id (limits.ts). */
  introductions: KeyedRateLimiter;
  refusals: Refusals;
  /** Plain-text server: callers carry no identity to check sessions against. */
  insecure: boolean;
  /** Servers registered when the term began or introduced since: a new follower of one has a predecessor. */
  serversSeen: Set<string>;
  /** Servers an operator put in maintenance (SetMaintenance): listed as leaving. */
  maintenance: Maintenance;
  /** The master's outside fence (--fence-agent): what it fenced tells a new follower's predecessor proven. */
  fenceAgent: FenceAgent;
}

export interface TermSettings {
  epoch: number;
  observer?: LoginObserver;
  mayAct: () => boolean;
  /** Registered servers a new leader waits for (and fences if they never come back). */
  expectedServers: ServerRecord[];
  graceMs: number;
  store?: RegistryStore;
  leader: () => LeaderInfo | undefined;
  refusals?: Refusals;
  /** Session and revoke ids (random by default; the simulation seeds them). */
  ids?: () => string;
  /** Runs the fence agent instead of opts.fenceAgent's argv (the simulation's). */
  fenceRun?: (server: ServerRecord, why: string) => Promise<FenceResult>;
  /** Maintenance as the registry recorded it. */
  maintenance?: MaintenanceRecord[];
}

/** One leadership term's state (no I/O): usable directly in tests and the simulation. */
export function createMasterCore(opts: MasterOptions, clock: Clock, log: Logger, term: TermSettings): MasterCore {
  const sessions = new SessionTable(clock, {
    ttlMs: opts.sessionTtlMs,
    clockDriftBound: opts.clockDriftBound,
    graceMarginMs: opts.graceMarginMs,
  }, opts.limits.maxSessions, term.ids);
  const registry = new HostRegistry(opts.hosts, opts.localClientIp);
  const fenceAgent = new FenceAgent({ argv: opts.fenceAgent, timeoutMs: opts.fenceAgentTimeoutMs, clock, log, run: term.fenceRun });
  const byId = new Map(term.expectedServers.map((s) => [s.serverId, s]));
  const readiness = new Readiness(clock, byId.keys(), term.graceMs, fenceAgent.configured
    ? (ids) => {
      // A server that came back but left calls unknown (Readiness.unaccounted)
      // may not be in the registry this term loaded: its session says where it is.
      const recordOf = (id: string): ServerRecord | undefined => byId.get(id) ?? sessions.ofServer(id).at(-1);
      // Not one this term's agent already killed after every session of it
      // last spoke: nothing of it can serve but a follower that introduces
      // itself again. Fencing it anyway killed the SCVM a second time, often
      // just as it came back up healthy (found by the simulation's
      // needless-fence check, seeds 398880001, 398903709, 398911437).
      const unproven = ids.filter((id) => mutant('master-grace-refences-agent-fenced-server')
        || !fenceAgent.fencedAfterAll(id, sessions.ofServer(id)));
      log.warn({ ev: 'grace.fence', servers: unproven, fenced_already: ids.filter((id) => !unproven.includes(id)) }, 'registered servers did not come back within the grace period: fencing them before granting');
      const records = unproven.map(recordOf).filter((r): r is ServerRecord => r !== undefined);
      return fenceAgent.fenceServers(records, 'did not re-introduce itself to the new leader within the grace period, or left calls unknown', (id) => sessions.ofServer(id));
    }
    : undefined, term.expectedServers.filter((s) => s.fencing !== 'FENCING_READY').map((s) => s.serverId));
  const gates = { mayAct: term.mayAct, ready: (requester?: string) => readiness.ready(requester) };
  const logins = new LoginCoordinator({
    clock, sessions, registry, tokens: new FencingTokens(term.epoch), log, gates, observer: term.observer, limits: opts.limits, fenceAgent,
    revokeAckTimeoutMs: opts.revokeAckTimeoutMs, revokeDrainLimitMs: opts.revokeDrainLimitMs, ids: term.ids,
  });
  const maintenance = new Maintenance(term.maintenance);
  const membership = new MembershipFeed(clock, sessions, registry, term.epoch, log, term.store,
    (hostId, ips) => void logins.revokeAll(`host:${hostId}`, `host ${hostId} no longer has ${ips.join(', ')}`),
    (serverId) => maintenance.has(serverId));
  return {
    id: opts.id, epoch: term.epoch, clock, sessions, logins, registry, membership,
    keepaliveIntervalMs: opts.keepaliveIntervalMs, log, gates, readiness, store: term.store, leader: term.leader,
    introductions: new KeyedRateLimiter(clock, opts.limits.introductionsPerSecond, opts.limits.introductionBurst),
    refusals: term.refusals ?? { limit: () => undefined, call: () => undefined },
    insecure: opts.tls.insecure === true,
    serversSeen: new Set(term.expectedServers.map((x) => x.serverId)),
    maintenance,
    fenceAgent,
  };
}

