import { InvalidArgument, PermissionDenied } from './errors';
import type { EdgeRules } from './edge';
import { formatIdentity, type Role } from './identity';
import type { PeerIdentity } from './tls';
import * as v from './validate';
import type { FollowerMessage__Output } from '../gen/nfsha/v1/FollowerMessage';
import type { LoginRequest__Output } from '../gen/nfsha/v1/LoginRequest';
import type { LogoutRequest__Output } from '../gen/nfsha/v1/LogoutRequest';
import type { AgentHello__Output } from '../gen/nfsha/v1/AgentHello';
import type { RouteReport__Output } from '../gen/nfsha/v1/RouteReport';
import type { DeployRequest__Output } from '../gen/nfsha/v1/DeployRequest';
import type { AdmitRequest__Output } from '../gen/nfsha/v1/AdmitRequest';
import type { WatchRevokesRequest__Output } from '../gen/nfsha/v1/WatchRevokesRequest';
import type { AckRevokeRequest__Output } from '../gen/nfsha/v1/AckRevokeRequest';
import type { ReleaseRequest__Output } from '../gen/nfsha/v1/ReleaseRequest';
import type { GateReport__Output } from '../gen/nfsha/v1/GateReport';
import type { ConfirmFenceRequest__Output } from '../gen/nfsha/v1/ConfirmFenceRequest';
import type { SetMaintenanceRequest__Output } from '../gen/nfsha/v1/SetMaintenanceRequest';

/**
 * Who may call which method, and what every field of every inbound message
 * must look like: the one place nfsha checks input at its edge.
 */

/**
 * Clients one introduction or gate report may list with calls in flight (as
 * many as a report's draining revokes): a server serves at most a session's
 * clients (512 by default), with room for clients it no longer holds.
 */
const MAX_CLIENTS_IN_FLIGHT = 1024;

/** A caller may only speak for itself: `field` must be its own certificate's id. */
function ownId(caller: PeerIdentity, field: string, value: string): void {
  if (caller === 'insecure' || caller.id === value) return;
  throw new PermissionDenied(`${formatIdentity(caller)} may not act as ${field} ${JSON.stringify(value)}`);
}

function followerMessage(m: FollowerMessage__Output, caller: PeerIdentity): void {
  switch (m.kind) {
    case 'introduction': {
      const i = m.introduction!;
      v.requireId('introduction.server_id', i.serverId);
      ownId(caller, 'server_id', i.serverId);
      v.optionalId('introduction.host_id', i.hostId);
      v.optionalIp('introduction.storage_ip', i.storageIp);
      v.optionalIp('introduction.mgmt_ip', i.mgmtIp);
      v.safeCount('introduction.highest_epoch', i.highestEpoch);
      v.optionalId('introduction.resume_session_id', i.resumeSessionId);
      v.maxLength('introduction.fencing_detail', i.fencingDetail ?? '', 500);
      for (const [n, c] of i.clients.entries()) {
        v.requireId(`introduction.clients[${n}].client_id`, c.clientId);
        v.token(`introduction.clients[${n}].token`, c.token, true);
      }
      const inFlight = i.clientsInFlight ?? [];
      if (inFlight.length > MAX_CLIENTS_IN_FLIGHT) throw new InvalidArgument(`introduction.clients_in_flight lists at most ${MAX_CLIENTS_IN_FLIGHT} clients`);
      for (const [n, c] of inFlight.entries()) v.requireId(`introduction.clients_in_flight[${n}]`, c);
      return;
    }
    case 'keepalive':
      v.maxLength('keepalive.fencing_detail', m.keepalive!.fencingDetail ?? '', 500);
      return v.safeCount('keepalive.seq', m.keepalive!.seq);
    case 'revokeAck':
      return v.requireId('revoke_ack.revoke_id', m.revokeAck!.revokeId);
    case 'revokeProgress':
      v.requireId('revoke_progress.revoke_id', m.revokeProgress!.revokeId);
      return v.safeCount('revoke_progress.calls_left', m.revokeProgress!.callsLeft);
    default:
      throw new InvalidArgument('a FollowerMessage must carry an introduction, keepalive, revoke_ack or revoke_progress');
  }
}

const OPERATORS: readonly Role[] = ['operator', 'master'];

/** nfsha.v1.SessionMaster, nfsha.v1.Membership and nfsha.v1.Deployer, served by masters. */
export const MASTER_RULES: EdgeRules = {
  '/nfsha.v1.SessionMaster/Session': { roles: ['follower'], check: (m, c) => followerMessage(m as FollowerMessage__Output, c) },
  '/nfsha.v1.SessionMaster/Login': {
    roles: ['follower'],
    check: (m) => {
      const r = m as LoginRequest__Output;
      v.requireId('session_id', r.sessionId);
      v.requireIp('client_address', r.clientAddress);
    },
  },
  '/nfsha.v1.SessionMaster/Logout': {
    roles: ['follower'],
    check: (m) => {
      const r = m as LogoutRequest__Output;
      v.requireId('session_id', r.sessionId);
      v.requireId('client_id', r.clientId);
    },
  },
  '/nfsha.v1.SessionMaster/ClusterStatus': { roles: OPERATORS },
  '/nfsha.v1.SessionMaster/ConfirmFence': {
    // A person's word, recorded with their certificate's identity: not a master's.
    roles: ['operator'],
    check: (m) => {
      const r = m as ConfirmFenceRequest__Output;
      v.requireId('server_id', r.serverId);
      v.maxLength('reason', r.reason, 500);
    },
  },
  '/nfsha.v1.SessionMaster/SetMaintenance': {
    // An operator's decision, recorded with their identity.
    roles: ['operator'],
    check: (m) => {
      const r = m as SetMaintenanceRequest__Output;
      v.requireId('server_id', r.serverId);
      v.maxLength('reason', r.reason, 500);
    },
  },
  '/nfsha.v1.Membership/WatchMembers': {
    roles: ['agent'],
    check: (m, c) => {
      const h = m as AgentHello__Output;
      v.requireId('host_id', h.hostId);
      ownId(c, 'host_id', h.hostId);
      v.optionalId('local_server_id', h.localServerId);
      v.optionalIp('storage_ip', h.storageIp);
      v.optionalIp('mgmt_ip', h.mgmtIp);
    },
  },
  '/nfsha.v1.Membership/ListMembers': { roles: ['agent', ...OPERATORS] },
  '/nfsha.v1.Membership/ReportRoute': {
    roles: ['agent'],
    check: (m, c) => {
      const r = m as RouteReport__Output;
      v.requireId('host_id', r.hostId);
      ownId(c, 'host_id', r.hostId);
      v.oneOf('route', r.route, ['local', 'remote']);
      if (r.route === 'remote') v.requireIp('gateway', r.gateway);
      else v.optionalIp('gateway', r.gateway);
      v.optionalId('target_server_id', r.targetServerId);
      v.maxLength('reason', r.reason, 500);
    },
  },
  '/nfsha.v1.Deployer/Deploy': {
    roles: ['operator'],
    check: (m) => {
      const r = m as DeployRequest__Output;
      if (!r.inventoryJson.trim()) throw new InvalidArgument('inventory_json is required');
      v.maxLength('bundle_dir', r.bundleDir, 4096);
      if (r.registerTimeoutMs > 600_000) throw new InvalidArgument('register_timeout_ms is at most 600000');
    },
  },
};

/**
 * nfsha.v1.Gate, served by the follower of `serverId` to its own NFS layer
 * only: a gate certificate for another server is refused.
 */
export function gateRules(serverId: string): EdgeRules {
  const own = (c: PeerIdentity) => ownId(c, 'server', serverId);
  return {
    '/nfsha.v1.Gate/Admit': {
      roles: ['gate'],
      check: (m, c) => { own(c); v.requireIp('client_address', (m as AdmitRequest__Output).clientAddress); },
    },
    '/nfsha.v1.Gate/WatchRevokes': {
      roles: ['gate'],
      check: (m, c) => { own(c); v.maxLength('watcher', (m as WatchRevokesRequest__Output).watcher, 64); },
    },
    '/nfsha.v1.Gate/AckRevoke': {
      roles: ['gate'],
      check: (m, c) => { own(c); v.requireId('revoke_id', (m as AckRevokeRequest__Output).revokeId); },
    },
    '/nfsha.v1.Gate/Release': {
      roles: ['gate'],
      check: (m, c) => {
        own(c);
        v.requireId('client_id', (m as ReleaseRequest__Output).clientId);
        v.safeCount('released_up_to', (m as ReleaseRequest__Output).releasedUpTo);
      },
    },
    // Any operator or master may read a follower's status; a gate only its own server's.
    '/nfsha.v1.Gate/Status': {
      roles: ['gate', ...OPERATORS],
      check: (_m, c) => { if (c !== 'insecure' && c.role === 'gate') own(c); },
    },
    '/nfsha.v1.Gate/Report': {
      roles: ['gate'],
      check: (m, c) => {
        own(c);
        const r = m as GateReport__Output;
        v.finiteTime('lease_deadline_monotonic_ms', r.leaseDeadlineMonotonicMs);
        v.safeCount('fence_seq', r.fenceSeq);
        if (r.draining.length > 1024) throw new InvalidArgument('draining lists at most 1024 revokes');
        for (const [n, d] of r.draining.entries()) {
          v.requireId(`draining[${n}].revoke_id`, d.revokeId);
          v.requireId(`draining[${n}].client_id`, d.clientId);
        }
        const inFlight = r.clientsInFlight ?? [];
        if (inFlight.length > MAX_CLIENTS_IN_FLIGHT) throw new InvalidArgument(`clients_in_flight lists at most ${MAX_CLIENTS_IN_FLIGHT} clients`);
        for (const [n, c] of inFlight.entries()) v.requireId(`clients_in_flight[${n}].client_id`, c.clientId);
      },
    },
  };
}
