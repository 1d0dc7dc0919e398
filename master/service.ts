import * as grpc from '@grpc/grpc-js';
import type { SessionMasterHandlers } from '../gen/nfsha/v1/SessionMaster';
import type { FollowerMessage__Output } from '../gen/nfsha/v1/FollowerMessage';
import type { MasterMessage } from '../gen/nfsha/v1/MasterMessage';
import type { ClusterStatusReply } from '../gen/nfsha/v1/ClusterStatusReply';
import { FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted, Unavailable, toServiceError } from '../common/errors';
import { normalizeIp } from '../common/address';
import { fencingWord } from '../common/fence-command';
import { callerOf, type AuthenticatedCall } from '../common/edge';
import { mutant } from '../common/mutants';
import { LIMIT } from './limits';
import { SessionState, type Session, type SessionSink } from './sessions';
import type { MasterCore } from './core';
import { otherHealthyServers } from './maintenance';
import { KeyedMutex } from '../common/keyed-mutex';

export type { MasterCore, Refusals } from './core';

type SessionCall = grpc.ServerDuplexStream<FollowerMessage__Output, MasterMessage>;

/** The session protocol this master speaks (master.proto SessionProtocol). */
export const MASTER_PROTOCOL = 3;

function fail(call: { emit(ev: 'error', e: unknown): boolean }, err: unknown): void {
  call.emit('error', toServiceError(err));
}

/** gRPC handlers of nfsha.v1.SessionMaster over the master's core state. */
export function sessionMasterHandlers(core: MasterCore): SessionMasterHandlers {
  const { sessions, logins, log } = core;

  function handleSession(call: SessionCall): void {
    let session: Session | undefined;
    let ended = false;
    const sink: SessionSink = {
      sendRevoke: (r) => {
        if (!ended) call.write({ revoke: { revokeId: r.revokeId, clientId: r.clientId, epoch: r.epoch, reason: r.reason, token: r.token } });
      },
      confirmFence: (operator, reason) => {
        if (!ended && session && session.protocol >= 2) call.write({ fenceConfirmed: { operator, reason } });
      },
      end: (code, details, metadata) => {
        if (ended) return;
        ended = true;
        call.emit('error', { code, details, message: details, metadata });
      },
    };
    const detach = () => {
      ended = true;
      if (session?.sink === sink) {
        session.sink = undefined;
        session.disconnectedAt = core.clock.now();
        core.membership.disconnected();
        log.info({ ev: 'session.disconnected', server: session.serverId, session: session.id }, 'keepalive stream closed');
      }
    };
    let introducing = false;
    call.on('data', (msg: FollowerMessage__Output) => {
      if (ended) return;
      try {
        if (!session) {
          if (introducing) throw new InvalidArgument('wait for the answer to the introduction');
          introducing = true;
          introduce(msg, sink, call, () => ended).then((s) => {
            if (ended) return;
            session = s;
          }, (err) => {
            ended = true;
            if (err instanceof ResourceExhausted) core.refusals.limit(err.limit);
            fail(call, err);
          });
          return;
        }
        switch (msg.kind) {
          case 'keepalive':
            if (!core.gates.mayAct()) {
              // A deposed leader must not extend anyone's lease.
              sink.end(grpc.status.FAILED_PRECONDITION, 'not leader');
            } else if (sessions.renew(session)) {
              call.write({ keepaliveAck: { seq: msg.keepalive!.seq, ttlMs: sessions.timing.ttlMs, epoch: core.epoch } });
              if (session.protocol >= 2) noteFencing(session, msg.keepalive!.fencing, msg.keepalive!.fencingDetail);
              if (session.protocol >= 1 && msg.keepalive!.nfs !== session.nfs) {
                log.info({ ev: 'session.nfs', server: session.serverId, session: session.id, from: session.nfs, to: msg.keepalive!.nfs }, 'NFS service health changed');
                session.nfs = msg.keepalive!.nfs;
                core.membership.refresh();
              }
              // A new follower process that fenced at start and whose fence works
              // again (a flaky gate fence, say) no longer holds the grace past its
              // time (found by the swarm, seed 1872905532).
              if (session.nfsFencedAtStart && !session.unaccounted && session.fencing === 'FENCING_READY' && !mutant('master-fenced-restart-still-unfenced')) core.readiness.fenceWorks(session.serverId);
              if (session.protocol >= 3 && session.unaccounted && !msg.keepalive!.nfsUnaccounted && session.fencing === 'FENCING_READY') {
                // A fence made the server whole: the grace need not wait for it on that account.
                log.info({ ev: 'session.nfs_accounted', server: session.serverId, session: session.id }, 'a fence accounted for what this server\'s NFS layers left: the grace no longer waits for it on that account');
                const { speaksForAll } = session.unaccounted;
                session.unaccounted = undefined;
                if (!mutant('master-unaccounted-never-cleared')) core.readiness.accounted(session.serverId, speaksForAll);
              }
              if (msg.keepalive!.leaving === true && !session.leaving) {
                log.warn({ ev: 'session.leaving', server: session.serverId, session: session.id }, 'follower stopping gracefully: its server is listed leaving until it exits');
                session.leaving = true;
                core.membership.refresh();
              }
            } else {
              sink.end(grpc.status.NOT_FOUND, `session ${session.id} is ${sessions.state(session)}; introduce again`);
            }
            break;
          case 'revokeAck':
            if (!logins.onRevokeAck(session.id, msg.revokeAck!.revokeId)) {
              log.warn({ ev: 'revoke.ack.unknown', server: session.serverId, revoke: msg.revokeAck!.revokeId }, 'ack for unknown revoke ignored');
            }
            break;
          case 'revokeProgress':
            logins.onRevokeProgress(session.id, msg.revokeProgress!.revokeId, msg.revokeProgress!.callsLeft);
            break;
          default:
            throw new InvalidArgument('stream already introduced; expected keepalive, revoke_ack or revoke_progress');
        }
      } catch (err) {
        ended = true;
        if (err instanceof ResourceExhausted) core.refusals.limit(err.limit);
        fail(call, err);
      }
    });
    call.on('end', () => { detach(); call.end(); });
    call.on('cancelled', detach);
    call.on('error', detach);
  }

  function noteFencing(session: Session, fencing: Session['fencing'], detail: string): void {
    if (fencing === session.fencing && detail === session.fencingDetail) return;
    log[fencing === 'FENCING_READY' ? 'info' : 'warn']({ ev: 'session.fencing', server: session.serverId, session: session.id, from: session.fencing, to: fencing, detail }, 'fencing changed');
    sessions.setFencing(session, fencing, detail);
    // A later leader's grace reads it (Readiness): best effort here, the
    // introduction's write is the durable one.
    core.store?.saveServer({ serverId: session.serverId, hostId: session.hostId, storageIp: session.storageIp, mgmtIp: session.mgmtIp, fencing })
      .catch((err: Error) => log.warn({ ev: 'registry.save.failed', server: session.serverId, err: err.message }, 'could not record the server\'s fencing'));
  }

  async function introduce(msg: FollowerMessage__Output, sink: SessionSink, call: SessionCall, gone: () => boolean): Promise<Session> {
    if (msg.kind !== 'introduction' || !msg.introduction) {
      throw new InvalidArgument('the first message on a Session stream must be an introduction');
    }
    const intro = msg.introduction;
    if (!core.introductions.take(intro.serverId)) {
      throw new ResourceExhausted(`server ${intro.serverId} introduces itself too often; retry in a second`, LIMIT.introductionRate);
    }
    if (intro.highestEpoch > core.epoch) {
      throw new FailedPrecondition(`follower has seen epoch ${intro.highestEpoch}, newer than this master's ${core.epoch}`);
    }
    if (!core.gates.mayAct()) throw new FailedPrecondition('not leader');
    if (core.store) {
      // Durable before the session exists (see RegistryStore.saveServer).
      const record = {
        serverId: intro.serverId, hostId: intro.hostId, storageIp: normalizeIp(intro.storageIp) ?? '', mgmtIp: normalizeIp(intro.mgmtIp) ?? '',
        fencing: intro.protocol >= 2 ? intro.fencing : 'FENCING_UNSPECIFIED',
      };
      try {
        if (mutant('master-registers-after-grant')) {
          // Race 5's revert: the record is written while the session is granted, not before.
          void core.store.saveServer(record).catch(() => undefined);
        } else {
          await core.store.saveServer(record);
        }
      } catch (err) {
        throw new Unavailable(`could not record server ${intro.serverId} in the registry (${(err as Error).message}); retry`);
      }
      if (!core.gates.mayAct()) throw new FailedPrecondition('not leader');
      // The follower may have given up on us while we wrote: no session for a stream that is gone.
      if (gone()) throw new Unavailable('the stream ended during the introduction');
    }
    const { session, resumed } = sessions.introduce({
      ...intro, nfs: intro.protocol >= 1 ? intro.nfs : undefined,
      fencing: intro.protocol >= 2 ? intro.fencing : 'FENCING_UNSPECIFIED', fencingDetail: intro.protocol >= 2 ? intro.fencingDetail : 'follower older than session protocol 2',
    });
    if (session.fencing !== 'FENCING_READY') log.warn({ ev: 'session.fencing', server: session.serverId, session: session.id, to: session.fencing, detail: session.fencingDetail }, 'this server cannot fence its NFS server: its clients are held, never waited out, when it does not drain');
    if (session.sink && session.sink !== sink) session.sink.end(grpc.status.ABORTED, 'session resumed on another stream');
    session.sink = sink;
    session.disconnectedAt = undefined;
    const adoptedClients = resumed
      ? intro.clients.map((c) => c.clientId)
      : logins.adopt(session.id, intro.clients.filter((c) => c.token).map((c) => ({ clientId: c.clientId, token: c.token!, addresses: c.addresses })));
    // Calls in flight at this server for clients it holds no grant for: held
    // here (and revoked) before anything is granted elsewhere, resumed or not.
    logins.holdInFlight(session.id, intro.clientsInFlight ?? []);
    // Only a follower that continues a session speaks for everything its
    // server may still serve. A new follower process (no session to resume)
    // does not know what a hung gate of its predecessor holds: the grace
    // runs its time for it.
    // Nor does one whose NFS server may still run calls nobody lists.
    // A new follower process that could not fence at start, of a server that
    // had a follower before: its predecessor's NFS layers may have died with
    // calls at a hung NFS server, and this one knows nothing of them (the
    // recipe follower-and-gate-die-no-fence).
    // Unless the fence agent killed the whole SCVM after every earlier session
    // of it last spoke: then nothing of the predecessor runs (flagging it
    // anyway held the new follower's revokes, so the master fenced the SCVM
    // again, and again: found by the swarm, seed 1872910914).
    const earlier = sessions.ofServer(intro.serverId).filter((s) => s.id !== session.id);
    const predecessorFenced = core.fenceAgent.fencedAfterAll(intro.serverId, earlier) && !mutant('master-fenced-predecessor-unproven');
    const predecessorUnproven = !intro.resumeSessionId && !intro.nfsFencedAtStart && !predecessorFenced && core.serversSeen.has(intro.serverId)
      && !mutant('master-unfenced-restart-unflagged');
    core.serversSeen.add(intro.serverId);
    if (intro.nfsUnaccounted || predecessorUnproven) {
      log.warn({ ev: 'session.nfs_unaccounted', server: session.serverId, session: session.id, fencing: session.fencing, predecessor: predecessorUnproven }, predecessorUnproven
        ? 'a new follower that did not fence at start replaced an earlier one: what that one\'s NFS layers left is unproven, and the grace does not end on its word'
        : 'an NFS layer left this server with calls unknown and no fence ran since: the grace does not end on its word');
      core.readiness.unaccounted(session.serverId, session.fencing === 'FENCING_READY');
      session.unaccounted = { speaksForAll: intro.resumeSessionId !== '' };
    } else if (intro.resumeSessionId || mutant('master-grace-ended-by-new-follower')) {
      core.readiness.introduced(session.serverId);
    } else if (predecessorFenced && !mutant('master-grace-awaits-agent-fenced-server')) {
      // This term's fence agent killed the whole SCVM after every earlier
      // session of it this master knows last spoke, and a run kills every
      // process there, an earlier term's too: nothing but this follower can
      // hold anything at that server, so it speaks for all of it. Awaiting
      // it anyway ended the grace with a second kill of a healthy SCVM
      // (found by the simulation's needless-fence check).
      core.readiness.introduced(session.serverId);
    } else if (intro.nfsFencedAtStart && session.fencing === 'FENCING_READY' && !mutant('master-fenced-restart-still-unfenced')) {
      // A new follower process that fenced at start: the grace still runs its
      // time for it, but no longer holds past it for a fence this server
      // could not run when last heard of.
      core.readiness.fenceWorks(session.serverId);
    }
    call.write({ granted: { sessionId: session.id, ttlMs: sessions.timing.ttlMs, keepaliveIntervalMs: core.keepaliveIntervalMs, epoch: core.epoch, resumed, adoptedClients, protocol: MASTER_PROTOCOL, waitOutSlackMs: sessions.waitOutSlackMs, predecessorUnproven } });
    // Revokes written to the stream this one replaces may be lost with it.
    if (resumed) logins.resendPending(session);
    core.membership.refresh();
    log.info({ ev: resumed ? 'session.resumed' : 'session.opened', server: session.serverId, session: session.id, host: session.hostId }, resumed ? 'session resumed' : 'session opened');
    return session;
  }

  /** A follower may log clients in and out on its own session only. */
  function requireOwnSession(call: AuthenticatedCall, sessionId: string): void {
    const caller = callerOf(call, core.insecure);
    const session = sessions.get(sessionId);
    if (!session || caller === 'insecure') return; // unknown sessions get NOT_FOUND from the coordinator
    if (!caller || caller.role !== 'follower' || caller.id !== session.serverId) {
      throw new PermissionDenied(`session ${sessionId} belongs to follower/${session.serverId}`);
    }
  }

  return {
    Session: handleSession,
    Login: (call, callback) => {
      const { sessionId, clientAddress } = call.request;
      try {
        requireOwnSession(call, sessionId);
      } catch (err) {
        core.refusals.call('/nfsha.v1.SessionMaster/Login', grpc.status.PERMISSION_DENIED, (err as Error).message);
        return callback(toServiceError(err));
      }
      logins.login(sessionId, clientAddress).then(
        (r) => callback(null, { clientId: r.clientId, token: r.token, revoked: r.revoked, alreadyOwned: r.alreadyOwned }),
        (err) => callback(toServiceError(err)),
      );
    },
    Logout: (call, callback) => {
      const { sessionId, clientId, token } = call.request;
      try {
        requireOwnSession(call, sessionId);
      } catch (err) {
        core.refusals.call('/nfsha.v1.SessionMaster/Logout', grpc.status.PERMISSION_DENIED, (err as Error).message);
        return callback(toServiceError(err));
      }
      logins.logout(sessionId, clientId, token ?? undefined).then(
        (released) => callback(null, { released }),
        (err) => callback(toServiceError(err)),
      );
    },
    ClusterStatus: (_call, callback) => callback(null, clusterStatus(core)),
    ConfirmFence: (call, callback) => {
      const who = operatorName(call, core.insecure);
      const { serverId, reason } = call.request;
      if (!serverId) return callback(toServiceError(new InvalidArgument('server_id is required')));
      const awaited = core.readiness.fenceConfirmed(serverId);
      if (awaited) log.warn({ ev: 'fence.confirmed', server: serverId, operator: who, why: reason || '(no reason given)' }, 'operator confirmed a server that never came back to this master is down: it no longer holds the grace');
      logins.confirmFence(serverId, who, reason || '(no reason given)', awaited).then(
        (r) => callback(null, { released: r.released, sessions: r.sessions }),
        (err) => callback(toServiceError(err)),
      );
    },
    SetMaintenance: (call, callback) => {
      const who = operatorName(call, core.insecure);
      const { serverId, enter, reason, force } = call.request;
      setMaintenance(core, serverId, enter, who, reason || '(no reason given)', force).then(
        (r) => callback(null, r),
        (err) => callback(toServiceError(err)),
      );
    },
  };
}

/** Who made an operator's call, for the log: "operator/alice". */
function operatorName(call: AuthenticatedCall, insecure: boolean): string {
  const caller = callerOf(call, insecure);
  return caller === 'insecure' ? 'insecure (plain-text loopback)' : caller ? `${caller.role}/${caller.id}` : 'unknown';
}

/** Clients granted to the sessions of `serverId`. */
function clientsOf(core: MasterCore, serverId: string): string[] {
  const mine = new Set(core.sessions.ofServer(serverId).map((s) => s.id));
  return core.logins.ownerships().filter(([, o]) => mine.has(o.sessionId)).map(([clientId]) => clientId).sort();
}

/**
 * An operator puts a server in maintenance or takes it out: recorded in the
 * registry first (a write that fails changes nothing), then the membership
 * tells the agents.
 */
function setMaintenance(core: MasterCore, serverId: string, enter: boolean, operator: string, reason: string, force = false): Promise<{ changed: boolean; inMaintenance: boolean; clients: number; unservedClients: string[] }> {
  // One change at a time: two enters at once must not each count the other
  // server as healthy while both registry writes are out (every host would
  // be left without a server, with no --force).
  return maintenanceChanges.run(core.id, () => changeMaintenance(core, serverId, enter, operator, reason, force));
}

const maintenanceChanges = new KeyedMutex();

async function changeMaintenance(core: MasterCore, serverId: string, enter: boolean, operator: string, reason: string, force: boolean): Promise<{ changed: boolean; inMaintenance: boolean; clients: number; unservedClients: string[] }> {
  if (!serverId) throw new InvalidArgument('server_id is required');
  const known = core.serversSeen.has(serverId) || core.maintenance.has(serverId) || core.sessions.all().some((s) => s.serverId === serverId);
  if (!known) throw new NotFound(`server ${serverId} is not known to this master (never registered or introduced); check the id with nfsha status`);
  // The last healthy server: its hosts would have nowhere to go. An
  // operator who means it says --force and is told who loses service. A
  // server that is itself down, NFS-down or leaving strands nobody new.
  const members = core.membership.members();
  const lastHealthy = enter && !core.maintenance.has(serverId) && otherHealthyServers(members, serverId).length === 0
    && otherHealthyServers(members, '').includes(serverId);
  const stranded = lastHealthy ? clientsOf(core, serverId) : undefined;
  if (stranded && !force) {
    throw new FailedPrecondition(`${serverId} is the last live Access Server with working NFS out of maintenance: entering would leave ${stranded.length ? stranded.join(', ') : 'every host that fails over later'} with no server; nothing changed (force it: --force, or "force": true over HTTPS)`);
  }
  const record = core.maintenance.change(serverId, enter, operator, reason, Date.now());
  if (record) {
    try {
      await core.store?.saveMaintenance?.(record);
    } catch (err) {
      throw new Unavailable(`could not record the maintenance of ${serverId} in the registry (${(err as Error).message}); nothing changed, retry`);
    }
    if (!core.gates.mayAct()) throw new FailedPrecondition('not leader');
    // Another call may have made the same change while this one wrote.
    if (core.maintenance.has(serverId) !== enter) {
      core.maintenance.apply(record);
      core.log.warn({ ev: enter ? 'maintenance.entered' : 'maintenance.exited', server: serverId, operator, why: reason, ...(stranded ? { forced: true, unserved: stranded } : {}) }, enter
        ? `${serverId} is in maintenance: agents move its hosts away and route nothing to it`
        : `${serverId} left maintenance: hosts fail back after their hold-down`);
      core.membership.refresh();
    }
  }
  return { changed: record !== undefined, inMaintenance: core.maintenance.has(serverId), clients: clientsOf(core, serverId).length, unservedClients: stranded ?? [] };
}

export function clusterStatus(core: MasterCore): ClusterStatusReply {
  const { sessions, logins } = core;
  const now = core.clock.now();
  const counts = new Map<string, number>();
  for (const [, o] of logins.ownerships()) counts.set(o.sessionId, (counts.get(o.sessionId) ?? 0) + 1);
  const byId = new Map(sessions.all().map((s) => [s.id, s]));
  const leader = core.leader();
  return {
    masterId: core.id,
    epoch: core.epoch,
    leader: true,
    ready: core.readiness.isReady(),
    leaderId: leader?.id ?? core.id,
    leaderAddress: leader?.address ?? '',
    ttlMs: sessions.timing.ttlMs,
    sessions: sessions.all().map((s) => ({
      sessionId: s.id,
      serverId: s.serverId,
      hostId: s.hostId,
      storageIp: s.storageIp,
      mgmtIp: s.mgmtIp,
      state: sessions.state(s),
      sinceKeepaliveMs: Math.max(0, Math.round(now - s.renewedAt)),
      clients: counts.get(s.id) ?? 0,
      connected: s.sink !== undefined && sessions.state(s) === SessionState.Live,
      nfs: s.nfs === 'NFS_HEALTH_UP' ? 'up' : s.nfs === 'NFS_HEALTH_DOWN' ? 'down' : '',
      fencing: fencingWord(s.fencing),
      fencingDetail: s.fencingDetail,
    })),
    maintenance: core.maintenance.list().map((m) => ({
      serverId: m.serverId, operator: m.operator, reason: m.reason, sinceMs: Math.max(0, Date.now() - m.sinceWallMs), clients: clientsOf(core, m.serverId).length,
    })),
    held: logins.heldClients().map((h) => ({
      clientId: h.clientId, serverId: h.serverId, sessionId: h.sessionId, reason: h.reason, sinceMs: Math.max(0, Math.round(now - h.since)),
    })),
    clients: logins.ownerships().map(([clientId, o]) => ({
      clientId,
      sessionId: o.sessionId,
      serverId: byId.get(o.sessionId)?.serverId ?? '',
      token: o.token,
      loginPending: logins.isLoginPending(clientId),
      loginMs: o.loginMs ?? 0,
    })),
    hosts: core.registry.list().map((h) => {
      const r = core.membership.route(h.id);
      return {
        hostId: h.id,
        storageIp: h.storageIp ?? '',
        mgmtIp: h.mgmtIp ?? '',
        route: r?.route ?? '',
        gateway: r?.gateway ?? '',
        targetServerId: r?.targetServerId ?? '',
        reason: r?.reason ?? '',
        agentConnected: core.membership.isAgentConnected(h.id),
        agentKnowsLeaving: core.membership.agentKnowsLeaving(h.id),
        sinceReportMs: r ? Math.max(0, Math.round(now - r.reportedAt)) : 0,
      };
    }),
  };
}

