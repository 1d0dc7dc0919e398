import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TlsSettings } from '../common/tls';
import { Backoff } from '../common/backoff';
import { systemClock, type Clock } from '../common/clock';
import { StreamLoop } from '../common/stream-loop';
import { deadlineIn } from '../common/grpc-client';
import { MasterEndpoints, masterClient, parseMasterList } from '../common/master-endpoints';
import type { Logger } from '../common/log';
import { membershipClientConstructor, type MembershipClient } from '../common/membership-proto';
import type { MemberList__Output } from '../gen/nfsha/v1/MemberList';
import type { RouteReport } from '../gen/nfsha/v1/RouteReport';
import type { AgentHello } from '../gen/nfsha/v1/AgentHello';
import type { MemberView } from './decision';

export interface MembershipEvents {
  members: [members: MemberView[]];
  connected: [];
}

/** Where the agent's membership comes from (the master's feed, or a fake in tests). */
export interface MembershipSource extends EventEmitter<MembershipEvents> {
  readonly connected: boolean;
  start(): void;
  stop(): void;
  report(r: RouteReport): void;
}

export interface MembershipFollowerDeps {
  clock?: Clock;
  /** How to reach a master candidate (grpc-js by default; the simulation injects its own). */
  connect?: (address: string) => MembershipClient;
  random?: () => number;
}

type WatchStream = grpc.ClientReadableStream<MemberList__Output>;

/**
 * Follows the master's membership feed (pushed, never polled) and keeps the
 * last list when the master is unreachable, so the agent acts on probes alone.
 */
export class MembershipFollower extends EventEmitter<MembershipEvents> implements MembershipSource {
  private readonly endpoints: MasterEndpoints<MembershipClient>;
  private readonly loop: StreamLoop<WatchStream, MemberList__Output>;
  last?: MemberView[];
  connected = false;

  private readonly hello: AgentHello;

  constructor(master: string, hello: AgentHello, private readonly log: Logger, tls: TlsSettings, deps: MembershipFollowerDeps = {}) {
    super();
    const Client = membershipClientConstructor();
    this.endpoints = new MasterEndpoints(parseMasterList(master), tls, deps.connect ?? ((address) => masterClient<MembershipClient>(Client, address, tls)));
    // This agent acts on a server marked leaving (maintenance).
    this.hello = { ...hello, knowsLeaving: true };
    this.loop = new StreamLoop<WatchStream, MemberList__Output>({
      clock: deps.clock ?? systemClock,
      backoff: new Backoff(100, 2000, deps.random),
      firstAnswerMs: 1500,
      open: () => this.endpoints.client().WatchMembers(this.hello),
      failed: (err) => this.endpoints.failed(err),
      data: (_stream, list) => this.onList(list),
      closed: (err) => {
        if (this.connected) this.log.warn({ ev: 'membership.lost', why: err?.details || err?.message || 'stream ended', kept: this.last?.length ?? 0 }, 'master unreachable; keeping the last membership');
        this.connected = false;
        this.reportRefusal(err);
      },
    });
  }

  start(): void {
    this.loop.start();
  }

  /** The last refusal logged, so a retry every backoff step does not repeat it. */
  private lastRefusal?: string;

  /**
   * A master that refuses this host's registration (an address another host
   * still owns in its registry, after a renumbering) is an operator's
   * problem, not a network blip: say so once per reason, even if this agent
   * never connected.
   */
  private reportRefusal(err?: { code?: number; details?: string }): void {
    if (err?.code !== grpc.status.PERMISSION_DENIED) return;
    if (err.details === this.lastRefusal) return;
    this.lastRefusal = err.details;
    this.log.error({ ev: 'membership.refused', why: err.details }, 'the master refuses this host\'s registration');
  }

  private onList(list: MemberList__Output): void {
    if (!this.connected) {
      this.connected = true;
      this.log.info({ ev: 'membership.connected', members: list.members.length }, 'following the master\'s membership');
      this.emit('connected');
    }
    // A server whose NFS service is down (a hung NFS server behind a live
    // session) is no route target: treated as not listed.
    this.last = list.members.filter((m) => !m.nfsDown).map((m) => ({ serverId: m.serverId, hostId: m.hostId, storageIp: m.storageIp, mgmtIp: m.mgmtIp, leaving: m.leaving === true }));
    this.emit('members', this.last);
  }

  report(r: RouteReport): void {
    this.endpoints.client().ReportRoute(r, { deadline: deadlineIn(2000) }, (err) => {
      if (err && this.connected) this.log.warn({ ev: 'route.report.failed', err: err.details }, 'could not report route to master');
    });
  }

  stop(): void {
    this.loop.stop();
    this.endpoints.close();
  }
}
