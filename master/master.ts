import { status } from '@grpc/grpc-js';
import { systemClock, type Clock } from '../common/clock';
import { bindServer, createServer, type NfshaServer } from '../common/grpc-server';
import { createLogger, type Logger } from '../common/log';
import { nfshaGrpc, MASTER_SERVICE, MEMBERSHIP_SERVICE } from '../common/proto';
import { HostRegistry } from './identity';
import { LoginCoordinator } from './login';
import { MembershipFeed } from './membership';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from './options';
import { sessionMasterHandlers, type MasterCore } from './service';
import { SessionState, SessionTable } from './sessions';
import { FencingTokens } from './tokens';

export interface RunningMaster {
  address: string;
  core: MasterCore;
  close(): Promise<void>;
}

/** Builds the master's state (no I/O): usable directly in tests. */
export function createMasterCore(opts: MasterOptions, clock: Clock, log: Logger): MasterCore {
  // The embedded master has no durable counter, so its epoch is its start time
  // in wall-clock ms: a restarted master issues larger tokens than before.
  // (With etcd, the epoch is the leader key's revision instead.)
  const epoch = opts.epoch ?? Date.now();
  const sessions = new SessionTable(clock, {
    ttlMs: opts.sessionTtlMs,
    clockDriftBound: opts.clockDriftBound,
    graceMarginMs: opts.graceMarginMs,
  });
  const registry = new HostRegistry(opts.hosts, opts.localClientIp);
  const logins = new LoginCoordinator(clock, sessions, registry, new FencingTokens(epoch), opts.revokeAckTimeoutMs, log);
  const membership = new MembershipFeed(clock, sessions, registry, epoch, log);
  return { id: opts.id, epoch, clock, sessions, logins, registry, membership, keepaliveIntervalMs: opts.keepaliveIntervalMs, log };
}

/** Starts the embedded single master: no external dependency. */
export async function startMaster(partial: Partial<MasterOptions> = {}, log = createLogger('master')): Promise<RunningMaster> {
  const opts: MasterOptions = { ...DEFAULT_MASTER_OPTIONS, ...partial };
  const core = createMasterCore(opts, systemClock, log);
  const { server, health } = createServer({ services: [MASTER_SERVICE, MEMBERSHIP_SERVICE], maxMessageBytes: opts.maxMessageBytes });
  server.addService(nfshaGrpc().SessionMaster.service, sessionMasterHandlers(core));
  server.addService(nfshaGrpc().Membership.service, core.membership.handlers());
  const bound: NfshaServer = await bindServer(server, health, opts.listen);
  health.setStatus(MASTER_SERVICE, 'SERVING');
  health.setStatus(MEMBERSHIP_SERVICE, 'SERVING');
  const sweeper = startSweeper(core);
  log.info({ ev: 'master.started', listen: bound.address, epoch: core.epoch, ttl_ms: opts.sessionTtlMs }, 'master serving');
  return {
    address: bound.address,
    core,
    close: async () => {
      clearInterval(sweeper);
      core.membership.endAll();
      await bound.close();
    },
  };
}


/** Logs session expiry once and forgets sessions whose followers surely stopped serving. */
function startSweeper(core: MasterCore): NodeJS.Timeout {
  const reported = new Set<string>();
  const timer = setInterval(() => {
    for (const s of core.sessions.all()) {
      const st = core.sessions.state(s);
      if (st === SessionState.Expired && !reported.has(s.id)) {
        reported.add(s.id);
        core.log.warn({ ev: 'session.expired', server: s.serverId, session: s.id, clients: core.logins.clientsOf(s.id).length }, 'session expired');
        s.sink?.end(status.NOT_FOUND, `session ${s.id} expired`);
      }
    }
    core.membership.refresh();
    const gone = core.sessions.sweep();
    if (gone.length) {
      for (const s of gone) reported.delete(s.id);
      core.logins.forgetSessions(new Set(gone.map((s) => s.id)));
    }
  }, 100);
  timer.unref();
  return timer;
}
