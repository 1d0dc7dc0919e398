import type { HealthImplementation } from 'grpc-health-check';
import { healthRoute, type HttpRoute } from '../common/http-api';
import type { DeployerHandlers } from '../gen/nfsha/v1/Deployer';
import type { MembershipHandlers } from '../gen/nfsha/v1/Membership';
import type { SessionMasterHandlers } from '../gen/nfsha/v1/SessionMaster';

/** A master's HTTPS JSON API: each route one of the gRPC methods it serves. */
export function masterHttpRoutes(h: {
  sessionMaster: SessionMasterHandlers;
  membership: MembershipHandlers;
  deployer: DeployerHandlers;
  health: HealthImplementation;
}): HttpRoute[] {
  return [
    {
      method: 'GET', path: '/v1/status', grpcMethod: '/nfsha.v1.SessionMaster/ClusterStatus',
      request: 'nfsha.v1.ClusterStatusRequest', response: 'nfsha.v1.ClusterStatusReply', unary: h.sessionMaster.ClusterStatus as never,
    },
    {
      method: 'POST', path: '/v1/fence-confirm', grpcMethod: '/nfsha.v1.SessionMaster/ConfirmFence',
      request: 'nfsha.v1.ConfirmFenceRequest', response: 'nfsha.v1.ConfirmFenceReply', unary: h.sessionMaster.ConfirmFence as never,
    },
    {
      method: 'POST', path: '/v1/maintenance', grpcMethod: '/nfsha.v1.SessionMaster/SetMaintenance',
      request: 'nfsha.v1.SetMaintenanceRequest', response: 'nfsha.v1.SetMaintenanceReply', unary: h.sessionMaster.SetMaintenance as never,
    },
    {
      method: 'GET', path: '/v1/members', grpcMethod: '/nfsha.v1.Membership/ListMembers',
      request: 'nfsha.v1.ListMembersRequest', response: 'nfsha.v1.MemberList', unary: h.membership.ListMembers as never,
    },
    {
      method: 'POST', path: '/v1/deploy', grpcMethod: '/nfsha.v1.Deployer/Deploy',
      request: 'nfsha.v1.DeployRequest', response: 'nfsha.v1.DeployEvent', stream: h.deployer.Deploy as never,
    },
    healthRoute(h.health),
  ];
}
