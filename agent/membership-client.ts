import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TlsSettings } from '../common/tls';
import { Backoff } from '../common/backoff';
import { deadlineIn } from '../common/grpc-server';
import { MasterEndpoints, masterClient, parseMasterList } from '../common/master-endpoints';
import type { Logger } from '../common/log';
import { nfshaGrpc, type MembershipClient } from '../common/proto';
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

/**
 * Follows the master's membership feed (pushed, never polled) and keeps the
 * last list when the master is unreachable, so the agent acts on probes alone.
 */
export class MembershipFollower extends EventEmitter<MembershipEvents> implements MembershipSource {
  private readonly endpoints: MasterEndpoints<MembershipClient>;
  private call?: grpc.ClientReadableStream<MemberList__Output>;
  private readonly backoff = new Backoff(100, 2000);
  private stopped = false;
  private timer?: NodeJS.Timeout;
  last?: MemberView[];
  connected = false;

  constructor(master: string, private readonly hello: AgentHello, private readonly log: Logger, tls: TlsSettings) {
    super();
    const Client = nfshaGrpc().Membership;
    this.endpoints = new MasterEndpoints(parseMasterList(master), tls, (address) => masterClient<MembershipClient>(Client, address, tls));
  }

  start(): void {
    if (this.stopped) return;
    const call = this.endpoints.client().WatchMembers(this.hello);
    this.call = call;
    let answered = false;
    // A candidate that accepts the connection but never answers (a frozen
    // master) must not hold us: without a first list soon, try the next one.
    const firstTimer = setTimeout(() => {
      if (answered) return;
      call.cancel();
      ended('no answer', Object.assign(new Error('no answer'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'no answer', metadata: new grpc.Metadata() }) as grpc.ServiceError);
    }, 1500);
    call.on('data', (list: MemberList__Output) => {
      answered = true;
      clearTimeout(firstTimer);
      this.backoff.reset();
      if (!this.connected) {
        this.connected = true;
        this.log.info({ ev: 'membership.connected', members: list.members.length }, 'following the master\'s membership');
        this.emit('connected');
      }
      // A server whose NFS service is down (a hung NFS server behind a live
      // session) is no route target: treated as not listed.
      this.last = list.members.filter((m) => !m.nfsDown).map((m) => ({ serverId: m.serverId, hostId: m.hostId, storageIp: m.storageIp, mgmtIp: m.mgmtIp }));
      this.emit('members', this.last);
    });
    const ended = (why: string, err?: grpc.ServiceError) => {
      if (this.call !== call) return;
      clearTimeout(firstTimer);
      const switched = this.endpoints.failed(err);
      this.call = undefined;
      if (this.connected) this.log.warn({ ev: 'membership.lost', why, kept: this.last?.length ?? 0 }, 'master unreachable; keeping the last membership');
      this.connected = false;
      if (!this.stopped) this.timer = setTimeout(() => this.start(), switched === 'redirect' ? 20 : this.backoff.next());
    };
    call.on('error', (e: grpc.ServiceError) => ended(e.details || e.message, e));
    call.on('end', () => ended('stream ended'));
  }

  report(r: RouteReport): void {
    this.endpoints.client().ReportRoute(r, { deadline: deadlineIn(2000) }, (err) => {
      if (err && this.connected) this.log.warn({ ev: 'route.report.failed', err: err.details }, 'could not report route to master');
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.cancel();
    this.endpoints.close();
  }
}
