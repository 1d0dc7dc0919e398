import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import type { AgentHello__Output } from '../gen/nfsha/v1/AgentHello';
import type { Member } from '../gen/nfsha/v1/Member';
import type { MemberList } from '../gen/nfsha/v1/MemberList';
import type { MembershipHandlers } from '../gen/nfsha/v1/Membership';
import type { RouteReport__Output } from '../gen/nfsha/v1/RouteReport';
import type { HostRegistry } from './identity';
import { SessionState, type SessionTable } from './sessions';
import type { RegistryStore } from './leadership';

export interface HostRoute {
  route: string;
  gateway: string;
  targetServerId: string;
  reason: string;
  reportedAt: number;
}

type WatchCall = grpc.ServerWritableStream<AgentHello__Output, MemberList>;

/**
 * The live membership pushed to agents (DESIGN §3): Access Servers whose
 * session is live. Pushed on change, so agents do not poll; agents register
 * their host here, which feeds client identity.
 */
export class MembershipFeed {
  private readonly watchers = new Map<WatchCall, { hostId: string; knowsLeaving: boolean }>();
  private readonly routes = new Map<string, HostRoute>();
  private signature = '';
  private version = 0;

  constructor(
    private readonly clock: Clock,
    private readonly sessions: SessionTable,
    private readonly registry: HostRegistry,
    private readonly epoch: number,
    private readonly log: Logger,
    private readonly store?: RegistryStore,
    /** A host gave up addresses: followers may still map them to it, so its holds are revoked. */
    private readonly addressesGone: (hostId: string, ips: string[]) => void = () => undefined,
    /** A server in maintenance: listed as leaving (agents move its hosts away and route nothing to it). */
    private readonly inMaintenance: (serverId: string) => boolean = () => false,
  ) {}

  /**
   * A session whose keepalive stream closed and was not taken up again
   * within this long leaves the membership before its lease ends. A closed
   * stream (FIN or reset: the follower process died, or its SCVM dropped the
   * connection) is news a silent network never gives; a follower that only
   * switched streams is back within its reconnect backoff. Membership only
   * steers agents: leases, revokes and the wait-out do not change.
   */
  static readonly DISCONNECT_GRACE_MS = 1000;

  /** A session's stream closed: the membership changes then if it stays closed. */
  disconnected(): void {
    this.clock.setTimeout(() => this.refresh(), MembershipFeed.DISCONNECT_GRACE_MS + 1);
  }

  members(): Member[] {
    const now = this.clock.now();
    return this.sessions.all()
      .filter((s) => this.sessions.state(s) === SessionState.Live)
      .filter((s) => s.sink !== undefined || s.disconnectedAt === undefined || now - s.disconnectedAt < MembershipFeed.DISCONNECT_GRACE_MS)
      .map((s) => ({ serverId: s.serverId, hostId: s.hostId, storageIp: s.storageIp, mgmtIp: s.mgmtIp, nfsDown: s.nfs === 'NFS_HEALTH_DOWN', leaving: s.leaving === true || this.inMaintenance(s.serverId) }))
      .sort((a, b) => a.serverId!.localeCompare(b.serverId!));
  }

  snapshot(): MemberList {
    return { members: this.members(), epoch: this.epoch, version: this.version };
  }

  /** Recomputes the membership and pushes it to every agent if it changed. */
  refresh(): void {
    const members = this.members();
    const sig = JSON.stringify(members);
    if (sig === this.signature) return;
    this.signature = sig;
    this.version += 1;
    this.log.info({ ev: 'membership.changed', version: this.version, members: members.map((m) => m.serverId), nfs_down: members.filter((m) => m.nfsDown).map((m) => m.serverId), leaving: members.filter((m) => m.leaving).map((m) => m.serverId) }, 'membership changed');
    const list = { members, epoch: this.epoch, version: this.version };
    for (const call of this.watchers.keys()) call.write(list);
  }

  isAgentConnected(hostId: string): boolean {
    return [...this.watchers.values()].some((w) => w.hostId === hostId);
  }

  /** Whether the host's connected agent acts on a server marked leaving (maintenance). */
  agentKnowsLeaving(hostId: string): boolean {
    return [...this.watchers.values()].some((w) => w.hostId === hostId && w.knowsLeaving);
  }

  route(hostId: string): HostRoute | undefined {
    return this.routes.get(hostId);
  }

  handlers(): MembershipHandlers {
    return {
      WatchMembers: (call) => {
        // Fields and the caller's right to this host id were checked at the edge (edge-rules.ts).
        const hello = call.request;
        const host = { id: hello.hostId, storageIp: hello.storageIp || undefined, mgmtIp: hello.mgmtIp || undefined };
        // An address is a client's identity: an agent may not take another host's.
        const taken = this.registry.addressOwnerOtherThan(host);
        if (taken) {
          call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `${taken.ip} belongs to host ${taken.hostId}; host ${host.id} may not register it` });
          return;
        }
        const given = this.registry.upsert(host);
        if (given.length) this.addressesGone(host.id, given);
        this.store?.saveHost(host);
        this.watchers.set(call, { hostId: hello.hostId, knowsLeaving: hello.knowsLeaving === true });
        const gone = () => {
          if (this.watchers.delete(call)) this.log.info({ ev: 'agent.disconnected', host: hello.hostId }, 'agent stream closed');
        };
        call.on('cancelled', gone);
        call.on('close', gone);
        call.on('error', gone);
        this.log.info({ ev: 'agent.registered', host: hello.hostId, storage_ip: hello.storageIp, mgmt_ip: hello.mgmtIp, server: hello.localServerId }, 'agent registered its host');
        this.refresh();
        call.write(this.snapshot());
      },
      ListMembers: (_call, cb) => {
        this.refresh();
        cb(null, this.snapshot());
      },
      ReportRoute: (call, cb) => {
        // Validated at the edge (edge-rules.ts), the reason's length included.
        const r: RouteReport__Output = call.request;
        this.routes.set(r.hostId, { route: r.route, gateway: r.gateway, targetServerId: r.targetServerId, reason: r.reason, reportedAt: this.clock.now() });
        cb(null, {});
      },
    };
  }

  endAll(): void {
    for (const call of this.watchers.keys()) call.end();
    this.watchers.clear();
  }
}
