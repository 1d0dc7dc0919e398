import { createHash } from 'node:crypto';

/** The host's route to the NFS address: none (the NFS vSwitch), or a /32 via a remote SCVM. */
export type Route = { kind: 'local' } | { kind: 'remote'; gateway: string };

export const LOCAL: Route = { kind: 'local' };

export function sameRoute(a: Route, b: Route): boolean {
  return a.kind === b.kind && (a.kind === 'local' || a.gateway === (b as { gateway: string }).gateway);
}

export function describeRoute(r: Route): string {
  return r.kind === 'local' ? 'local' : `via ${r.gateway}`;
}

export interface MemberView {
  serverId: string;
  hostId: string;
  storageIp: string;
  mgmtIp: string;
  /** In maintenance: route nothing to it, and move away from it at once. */
  leaving?: boolean;
}

/** What the probes say about one remote Access Server's two addresses. */
export interface RemoteReachability {
  storage: boolean;
  mgmt: boolean;
}

export type LocalProbe = 'up' | 'down' | 'unknown';

export interface DecisionInput {
  hostId: string;
  localServerId: string;
  /** Access Servers the master lists as live (or the last list, if the master is unreachable). */
  members: MemberView[];
  /** The local SCVM over the private link, after hysteresis. */
  local: LocalProbe;
  /**
   * Whether the master lists the local server, after the same hysteresis:
   * a server missing from one membership update (a follower reconnecting,
   * an agent starting before its follower) is not yet down.
   */
  localListed: LocalProbe;
  /** How long the local SCVM has been healthy without a break (0 when it is not). */
  localHealthyForMs: number;
  /** The master marks the local server leaving (maintenance): not a route target, whatever the probes say. */
  localLeaving?: boolean;
  /** Remote servers' reachability by server id, after hysteresis. */
  remote: ReadonlyMap<string, RemoteReachability>;
  /** The route in force (the one the agent last set, or adopted at start). */
  current: Route;
  holdDownMs: number;
}

export interface Decision {
  route: Route;
  /** For a remote route: which server and which of its addresses. */
  target?: { serverId: string; via: 'storage' | 'mgmt' };
  reason: string;
  /** Nothing healthy to route to: the route is left as it is. */
  alarm?: boolean;
}

/** Rendezvous (highest random weight) hashing: each host ranks servers its own way, so rerouted hosts spread out. */
export function rendezvousWeight(hostId: string, serverId: string): bigint {
  return createHash('sha256').update(`${hostId}\u0000${serverId}`).digest().readBigUInt64BE(0);
}

function viaOf(m: MemberView, r: RemoteReachability | undefined): Decision['target'] | undefined {
  if (r?.storage && m.storageIp) return { serverId: m.serverId, via: 'storage' };
  if (r?.mgmt && m.mgmtIp) return { serverId: m.serverId, via: 'mgmt' };
  return undefined;
}

function routeTo(m: MemberView, via: 'storage' | 'mgmt'): Route {
  return { kind: 'remote', gateway: via === 'storage' ? m.storageIp : m.mgmtIp };
}

/**
 * The agent's route choice (DESIGN §3), a pure function:
 * 1. local healthy → no static route (immediately if already local; after the
 *    hold-down if failing back);
 * 2. else keep the current remote server while it is healthy (stickiness),
 *    on its storage IP when that answers, else its management IP;
 * 3. a local that is healthy again beats an unhealthy current remote;
 * 4. else a healthy remote by rendezvous hash, servers reachable on storage
 *    first, management as fallback;
 * 5. nothing healthy → leave the route as it is, and raise the alarm.
 */
export function decideRoute(input: DecisionInput): Decision {
  const { current, holdDownMs } = input;
  const localHealthy = !input.localLeaving && input.local === 'up' && input.localListed === 'up';

  if (!input.localLeaving && (input.local === 'unknown' || input.localListed === 'unknown') && current.kind === 'local' && input.local !== 'down' && input.localListed !== 'down') {
    return { route: current, reason: 'local server not probed or listed yet; keeping the route' };
  }
  if (localHealthy && current.kind === 'local') return { route: LOCAL, reason: 'local server healthy' };
  if (localHealthy && input.localHealthyForMs >= holdDownMs) {
    return { route: LOCAL, reason: `local server healthy for ${Math.round(input.localHealthyForMs)} ms (hold-down ${holdDownMs} ms); failing back` };
  }

  // A server in maintenance is no target (the host on it moves at once).
  const remotes = input.members.filter((m) => m.serverId !== input.localServerId && m.hostId !== input.hostId && !m.leaving);
  const localWhy = localHealthy
    ? `local server healthy but within hold-down (${Math.round(input.localHealthyForMs)}/${holdDownMs} ms)`
    : input.localLeaving ? `local server ${input.localServerId} in maintenance`
      : input.localListed !== 'up' ? `local server ${input.localServerId} not listed by the master` : `local server ${input.localServerId} unreachable`;

  if (current.kind === 'remote') {
    const holder = remotes.find((m) => m.storageIp === current.gateway || m.mgmtIp === current.gateway);
    const target = holder && viaOf(holder, input.remote.get(holder.serverId));
    if (holder && target) {
      const route = routeTo(holder, target.via);
      const changed = !sameRoute(route, current);
      return {
        route,
        target,
        reason: changed
          ? `${localWhy}; ${holder.serverId} ${target.via === 'mgmt' ? 'storage IP unreachable, using its management IP' : 'storage IP answers again'}`
          : `${localWhy}; keeping ${holder.serverId}`,
      };
    }
    if (localHealthy) {
      return { route: LOCAL, reason: `current target ${holder?.serverId ?? current.gateway} unhealthy; local server healthy again` };
    }
  }

  const ranked = (pool: MemberView[]) =>
    [...pool].sort((a, b) => {
      const wa = rendezvousWeight(input.hostId, a.serverId), wb = rendezvousWeight(input.hostId, b.serverId);
      return wa === wb ? a.serverId.localeCompare(b.serverId) : wa > wb ? -1 : 1;
    })[0];
  const onStorage = remotes.filter((m) => input.remote.get(m.serverId)?.storage && m.storageIp);
  const onMgmt = remotes.filter((m) => input.remote.get(m.serverId)?.mgmt && m.mgmtIp);
  const pick = onStorage.length ? { m: ranked(onStorage), via: 'storage' as const } : onMgmt.length ? { m: ranked(onMgmt), via: 'mgmt' as const } : undefined;
  if (pick) {
    return {
      route: routeTo(pick.m, pick.via),
      target: { serverId: pick.m.serverId, via: pick.via },
      reason: `${localWhy}; ${current.kind === 'remote' ? `current target ${current.gateway} unhealthy; ` : ''}rerouting to ${pick.m.serverId} (${pick.via} IP, rendezvous of ${pick.via === 'storage' ? onStorage.length : onMgmt.length} healthy)`,
    };
  }
  return { route: current, reason: `${localWhy}; no healthy Access Server to route to; leaving the route as it is`, alarm: true };
}
