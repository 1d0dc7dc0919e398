import { systemClock } from '../common/clock';
import { bindServer, createServer } from '../common/grpc-server';
import { createLogger, type Logger } from '../common/log';
import { nfshaGrpc, DEPLOYER_SERVICE, MASTER_SERVICE, MEMBERSHIP_SERVICE } from '../common/proto';
import { deployerHandlers } from '../deploy/service';
import { serveHttpApi } from '../common/http-api';
import { masterHttpRoutes } from './http-routes';
import { fetchStatus } from '../common/status-client';
import { EtcdLeadership } from './etcd-leadership';
import { Etcd3Store } from './election-store';
import { nextEmbeddedEpoch } from './embedded-epoch';
import { FileRegistry } from './file-registry';
import * as path from 'node:path';
import { EmbeddedLeadership, type LeaderInfo, type Leadership } from './leadership';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from './options';
import { MasterMetrics } from './metrics';
import { MASTER_RULES } from '../common/edge-rules';
import { loadOwnIdentity } from '../common/tls';
import { etcdConnection } from './etcd-client';
import type { MasterCore } from './core';
import { MasterRuntime } from './runtime';

export { graceMs } from './grace';
export { notLeaderError, MasterRuntime } from './runtime';
export { createMasterCore, type TermSettings } from './core';

export interface RunningMaster {
  address: string;
  /** The HTTPS JSON API's address, when --http-listen asked for one. */
  httpAddress?: string;
  leadership: Leadership;
  /** The current term's state while this master leads. */
  core(): MasterCore | undefined;
  close(): Promise<void>;
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
  // The embedded master's epoch is its start time in wall-clock ms, kept
  // growing across restarts with --state-dir (embedded-epoch.ts), which also
  // keeps its registry. With etcd, the epoch is the leader key's revision.
  const state = opts.stateDir;
  const leadership: Leadership = etcd
    ? new EtcdLeadership({ store: new Etcd3Store(etcd), self, leaseTtlSeconds: opts.electionTtlSeconds, clock, log })
    : new EmbeddedLeadership(self, opts.epoch ?? nextEmbeddedEpoch(state ? path.join(state, 'epoch') : ''),
      state ? new FileRegistry(path.join(state, 'registry.json')) : undefined);
  const runtime = new MasterRuntime(opts, leadership, health, { clock, log, metrics });
  const handlers = {
    sessionMaster: runtime.sessionMasterHandlers(),
    membership: runtime.membershipHandlers(),
    // Any candidate can deploy; registration is checked with the leader.
    deployer: deployerHandlers({
      bundleDir: opts.bundleDir,
      stateDir: opts.deployStateDir,
      isRegistered: async (masters, hostId) => (await fetchStatus(masters, 2000, opts.tls)).hosts.some((h) => h.hostId === hostId && h.agentConnected),
      log,
    }),
  };
  server.addService(nfshaGrpc().SessionMaster.service, handlers.sessionMaster);
  server.addService(nfshaGrpc().Membership.service, handlers.membership);
  server.addService(nfshaGrpc().Deployer.service, handlers.deployer);
  health.setStatus(DEPLOYER_SERVICE, 'SERVING');
  runtime.metrics.metrics.watchCertificate(opts.tls);
  const metricsServer = opts.metricsListen ? await runtime.metrics.metrics.serve(opts.metricsListen) : undefined;
  const httpApi = opts.httpListen ? await serveHttpApi({
    listen: opts.httpListen, tls: opts.tls, rules: MASTER_RULES, maxBodyBytes: opts.maxMessageBytes, log, refused: refusals.call,
    routes: masterHttpRoutes({ ...handlers, health }),
  }) : undefined;
  log.info({ ev: 'master.started', metrics: metricsServer?.address, http: httpApi?.address, listen: bound.address, etcd: opts.etcdEndpoints, ttl_ms: opts.sessionTtlMs }, opts.etcdEndpoints.length ? 'master candidate serving' : 'embedded master serving');
  await leadership.start();
  return {
    address: bound.address,
    httpAddress: httpApi?.address,
    leadership,
    core: () => runtime.core(),
    close: async () => {
      await leadership.stop();
      await metricsServer?.close();
      await httpApi?.close();
      await bound.close();
    },
  };
}

