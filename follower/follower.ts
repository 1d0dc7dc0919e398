import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock } from '../common/clock';
import { normalizeIp } from '../common/address';
import { Aborted, InvalidArgument, ResourceExhausted, Unavailable, toServiceError } from '../common/errors';
import { gateRules } from '../common/edge-rules';
import { loadOwnIdentity } from '../common/tls';
import { bindServer, createServer, type NfshaServer } from '../common/grpc-server';
import { KeyedMutex } from '../common/keyed-mutex';
import { createLogger, type Logger } from '../common/log';
import { GATE_SERVICE, nfshaGrpc } from '../common/proto';
import { formatToken } from '../common/token';
import { parseMasterList } from '../common/master-endpoints';
import type { GateHandlers } from '../gen/nfsha/v1/Gate';
import type { AdmitReply } from '../gen/nfsha/v1/AdmitReply';
import type { Revoke__Output } from '../gen/nfsha/v1/Revoke';
import { Admissions } from './admissions';
import { Metrics } from '../common/metrics';
import { GateHub } from './gate-hub';
import { Lease, LeaseState } from './lease';
import { MasterSession } from './master-session';
import { DEFAULT_FOLLOWER_OPTIONS, type FollowerOptions } from './options';

/**
 * The Session Follower: holds the session with the master, admits clients for
 * the NFS layer only once the master granted them, relays revokes and acks,
 * and fences itself (drops every client) when its lease runs out.
 */
export class Follower {
  readonly lease: Lease;
  readonly session: MasterSession;
  readonly hub = new GateHub();
  readonly admissions = new Admissions();
  private readonly mutex = new KeyedMutex();
  private highestEpoch = 0;
  private server?: NfshaServer;
  private metricsServer?: { address: string; close(): Promise<void> };
  readonly metrics = new Metrics('follower');
  private readonly fences = this.metrics.counter('nfsha_follower_fences_total', 'Times this follower fenced itself (dropped every client)');
  private readonly admits = this.metrics.counter('nfsha_follower_admits_total', 'Admit requests from the NFS layer by result', ['result']);
  private readonly revokesHandled = this.metrics.counter('nfsha_follower_revokes_total', 'Revokes from the master by outcome', ['outcome']);
  private readonly refusedCalls = this.metrics.counter('nfsha_follower_refused_calls_total', 'Gate API calls refused at the edge: no or wrong identity, or invalid input', ['method', 'code']);
  private readonly limitRefusals = this.metrics.counter('nfsha_follower_limit_refusals_total', 'Gate API calls refused because a limit was reached', ['limit']);
  private pendingAdmits = 0;

  constructor(readonly opts: FollowerOptions, private readonly clock: Clock = systemClock, readonly log: Logger = createLogger('follower', { server: opts.serverId })) {
    this.lease = new Lease(clock);
    this.session = new MasterSession({
      masters: parseMasterList(opts.master),
      identity: { serverId: opts.serverId, hostId: opts.hostId, storageIp: opts.storageIp, mgmtIp: opts.mgmtIp },
      clock,
      lease: this.lease,
      log,
      ownedClients: () => this.admissions.list().map((c) => ({ clientId: c.clientId, token: c.token })),
      highestEpoch: () => this.highestEpoch,
      tls: opts.tls,
    });
    this.metrics.gauge('nfsha_follower_lease_remaining_seconds', 'Time left on the session lease', [], (g) => g.set(this.lease.remainingMs() / 1000));
    this.metrics.gauge('nfsha_follower_clients', 'Clients this follower may serve now', [], (g) => g.set(this.admissions.list().length));
    this.metrics.gauge('nfsha_follower_nfs_watchers', 'NFS layers watching the gate stream', [], (g) => g.set(this.hub.size));
    this.lease.on('renewed', (remainingMs) => this.hub.broadcast({ lease: { remainingMs: Math.floor(remainingMs) } }));
    this.lease.on('fenced', (reason) => this.fence(reason));
    this.session.on('sessionGone', (reason) => {
      this.lease.fence(reason);
      this.fence(reason);
    });
    this.session.on('granted', ({ epoch }) => {
      this.highestEpoch = Math.max(this.highestEpoch, epoch);
    });
    this.session.on('replaced', ({ sessionId, epoch, adopted }) => void this.onReplaced(sessionId, epoch, adopted));
    this.session.on('revoke', (r) => void this.onRevoke(r));
  }

  private fence(reason: string): void {
    this.fences.inc();
    const dropped = this.admissions.clear();
    this.hub.broadcast({ fence: { reason } });
    this.log.warn({ ev: 'follower.fenced', why: reason, clients: dropped }, 'fenced: every client dropped');
  }

  /**
   * A new session (a new leader, or a restarted master) adopted some of the
   * clients we serve; the rest are no longer ours: stop serving them now.
   */
  private async onReplaced(sessionId: string, epoch: number, adopted: string[]): Promise<void> {
    const keep = new Set(adopted);
    const dropped = this.admissions.list().filter((c) => !keep.has(c.clientId));
    this.log.info({ ev: 'session.replaced', session: sessionId, epoch, adopted, dropped: dropped.map((c) => c.clientId) }, 'new session: kept adopted clients');
    await Promise.all(dropped.map(async (c) => {
      this.admissions.revoke(c.clientId, c.token);
      await this.hub.revoke(`local-${sessionId}-${c.clientId}`, c.clientId, 'not adopted by the new session', c.token);
    }));
  }

  private async onRevoke(r: Revoke__Output): Promise<void> {
    if (r.epoch < this.highestEpoch) {
      this.revokesHandled.inc({ outcome: 'stale_epoch' });
      this.log.warn({ ev: 'revoke.stale', client: r.clientId, epoch: r.epoch, highest: this.highestEpoch }, 'revoke from an older epoch ignored');
      return;
    }
    const token = r.token ?? { epoch: r.epoch, sequence: 0 };
    this.admissions.revoke(r.clientId, token);
    this.log.info({ ev: 'revoke.received', client: r.clientId, revoke: r.revokeId, token: formatToken(token), why: r.reason }, 'revoking client');
    await this.hub.revoke(r.revokeId, r.clientId, r.reason, token);
    this.session.sendRevokeAck(r.revokeId);
    this.revokesHandled.inc({ outcome: 'acked' });
    this.log.info({ ev: 'revoke.acked', client: r.clientId, revoke: r.revokeId }, 'revoke acknowledged to master');
  }

  /** Admits a connection from `address` once the master granted its client here. */
  async admit(address: string): Promise<AdmitReply> {
    const ip = normalizeIp(address);
    if (!ip) throw new InvalidArgument(`client address ${JSON.stringify(address)} is not an IP address`);
    const key = this.admissions.clientOf(ip) ?? `addr:${ip}`;
    return this.mutex.run(key, async () => {
      this.requireLive();
      const known = this.admissions.clientOf(ip);
      const held = known ? this.admissions.tokenOf(known) : undefined;
      if (known && held) return this.admitReply(known, held);
      const sessionId = this.session.currentSessionId;
      let reply;
      try {
        reply = await this.session.login(ip, this.opts.admitTimeoutMs);
      } catch (err) {
        const e = err as grpc.ServiceError;
        throw Object.assign(new Unavailable(`login at master failed: ${e.details ?? e.message}`), { code: e.code ?? grpc.status.UNAVAILABLE });
      }
      // The session may have been lost while the login was in flight.
      if (this.session.currentSessionId !== sessionId) throw new Unavailable('session changed during login');
      this.requireLive();
      const token = reply.token ?? { epoch: 0, sequence: 0 };
      if (token.epoch < this.highestEpoch) {
        throw new Aborted(`grant from epoch ${token.epoch} is older than epoch ${this.highestEpoch}: a deposed master answered`);
      }
      if (!this.admissions.grant(ip, reply.clientId, token)) {
        throw new Aborted(`client ${reply.clientId} was revoked while its login was in flight`);
      }
      this.log.info({ ev: 'client.admitted', client: reply.clientId, address: ip, token: formatToken(token), revoked: reply.revoked }, 'client admitted');
      return this.admitReply(reply.clientId, token);
    });
  }

  private requireLive(): void {
    const st = this.lease.current;
    if (st !== LeaseState.Live) throw new Unavailable(st === LeaseState.Fenced ? 'fenced: no live session with the master' : 'no session with the master yet');
  }

  private admitReply(clientId: string, token: { epoch: number; sequence: number }): AdmitReply {
    return { clientId, epoch: token.epoch, sequence: token.sequence, leaseRemainingMs: Math.floor(this.lease.remainingMs()) };
  }

  /** The NFS layer closed the client's last connection: log it out. */
  async release(clientId: string): Promise<boolean> {
    return this.mutex.run(clientId, async () => {
      const token = this.admissions.tokenOf(clientId);
      if (!this.admissions.release(clientId)) return false;
      try {
        await this.session.logout(clientId, this.opts.logoutTimeoutMs);
        this.log.info({ ev: 'client.released', client: clientId, token: token && formatToken(token) }, 'client logged out');
      } catch (err) {
        // Still owned at the master; the next login elsewhere revokes it here,
        // and we hold no connection for it, so the ack is immediate.
        this.log.warn({ ev: 'client.logout.failed', client: clientId, err: (err as Error).message }, 'logout failed');
      }
      return true;
    });
  }

  handlers(): GateHandlers {
    return {
      Admit: (call, cb) => {
        if (this.pendingAdmits >= this.opts.maxPendingAdmits) {
          this.limitRefusals.inc({ limit: 'pending_admits' });
          return cb(toServiceError(new ResourceExhausted(`${this.pendingAdmits} admits already wait for the master (limit ${this.opts.maxPendingAdmits})`, 'pending_admits')));
        }
        this.pendingAdmits++;
        this.admit(call.request.clientAddress).finally(() => this.pendingAdmits--).then(
          (r) => { this.admits.inc({ result: 'admitted' }); cb(null, r); },
          (e) => { this.admits.inc({ result: 'refused' }); cb(toServiceError(e)); },
        );
      },
      WatchRevokes: (call) => {
        if (this.hub.size >= this.opts.maxGateWatchers) {
          this.limitRefusals.inc({ limit: 'gate_watchers' });
          return void call.emit('error', toServiceError(new ResourceExhausted(`${this.hub.size} NFS layers already watch this follower (limit ${this.opts.maxGateWatchers})`, 'gate_watchers')));
        }
        const initial = this.lease.isLive()
          ? { lease: { remainingMs: Math.floor(this.lease.remainingMs()) } }
          : { fence: { reason: 'no live session' } };
        this.hub.add(call, initial);
        this.log.info({ ev: 'gate.watching', watcher: call.request.watcher }, 'NFS layer watching');
      },
      AckRevoke: (call, cb) => cb(null, { known: this.hub.ack(call.request.revokeId) }),
      Release: (call, cb) => {
        this.release(call.request.clientId).then((released) => cb(null, { released }), (e) => cb(toServiceError(e)));
      },
    };
  }

  async start(): Promise<string> {
    const { tls, serverId } = this.opts;
    if (!tls.insecure) {
      loadOwnIdentity(tls.dir, ['follower'], serverId);
    }
    const { server, health } = createServer({
      services: [GATE_SERVICE],
      maxMessageBytes: this.opts.maxMessageBytes,
      edge: {
        rules: gateRules(serverId),
        insecure: tls.insecure === true,
        refused: (method, code) => this.refusedCalls.inc({ method, code: grpc.status[code] }),
      },
    });
    server.addService(nfshaGrpc().Gate.service, this.handlers());
    if (this.opts.gateListen.startsWith('unix:')) {
      const file = this.opts.gateListen.slice(5);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.rmSync(file, { force: true });
    }
    this.server = await bindServer(server, health, this.opts.gateListen, tls);
    health.setStatus(GATE_SERVICE, 'SERVING');
    this.session.start();
    if (this.opts.metricsListen) this.metricsServer = await this.metrics.serve(this.opts.metricsListen);
    this.log.info({ ev: 'follower.started', gate: this.server.address, master: this.opts.master, metrics: this.metricsServer?.address }, 'follower running');
    return this.server.address;
  }

  async stop(): Promise<void> {
    this.session.stop();
    this.lease.dispose();
    this.hub.endAll();
    await this.metricsServer?.close();
    await this.server?.close();
  }
}

export function createFollower(partial: Partial<FollowerOptions> & { serverId: string }, clock?: Clock, log?: Logger): Follower {
  return new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, ...partial }, clock, log);
}
