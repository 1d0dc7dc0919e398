import * as grpc from '@grpc/grpc-js';
import { Metrics } from '../common/metrics';
import type { Counter, Histogram } from 'prom-client';
import type { Logger } from '../common/log';
import { KeyedRateLimiter } from '../common/rate-limit';
import { systemClock } from '../common/clock';
import type { LoginObserver } from './login';
import type { MasterCore, Refusals } from './service';
import { SessionState } from './sessions';

/** The master's metrics; gauges read the current term's state when scraped. */
export class MasterMetrics {
  private core?: () => MasterCore | undefined;
  readonly leaderChanges: Counter;
  private readonly logins: Counter;
  private readonly loginSeconds: Histogram;
  private readonly revokes: Counter;
  private readonly limitRefusals: Counter;
  /** Calls the security edge refused before any handler ran, by method and status code. */
  readonly edgeRefusals: Counter;
  private readonly revokeSeconds: Histogram;

  readonly metrics: Metrics;

  constructor(log: Logger, metrics: Metrics = new Metrics('master')) {
    this.metrics = metrics;
    this.leaderChanges = this.metrics.counter('nfsha_master_leader_changes_total', 'Times this master became or stopped being the leader', ['to']);
    this.logins = this.metrics.counter('nfsha_master_logins_total', 'Login requests by result', ['result']);
    this.loginSeconds = this.metrics.histogram('nfsha_master_login_duration_seconds', 'Login duration, from request to grant, including revokes', ['with_revoke']);
    this.revokes = this.metrics.counter('nfsha_master_revokes_total', 'Revokes by outcome: acked by the holder, or the holder waited out', ['outcome']);
    this.limitRefusals = this.metrics.counter('nfsha_master_limit_refusals_total', 'Calls refused because a limit was reached (RESOURCE_EXHAUSTED)', ['limit']);
    this.edgeRefusals = this.metrics.counter('nfsha_master_refused_calls_total', 'Calls refused at the edge: no or wrong identity, or invalid input', ['method', 'code']);
    this.revokeSeconds = this.metrics.histogram('nfsha_master_revoke_ack_seconds', 'Time from revoke sent to the holder\'s ack');
    this.refusals = this.makeRefusals(log);
    this.metrics.gauge('nfsha_master_sessions', 'Sessions by state', ['state'], (g) => {
      g.reset();
      const core = this.core?.();
      for (const st of Object.values(SessionState)) g.set({ state: st }, core ? core.sessions.all().filter((s) => core.sessions.state(s) === st).length : 0);
    });
    this.metrics.gauge('nfsha_master_clients', 'Clients with an owner', [], (g) => g.set(this.core?.()?.logins.ownerships().length ?? 0));
    this.metrics.gauge('nfsha_master_held_clients', 'Clients that cannot move: their holder did not drain or is silent, and nothing fenced it (see status)', [], (g) => g.set(this.core?.()?.logins.heldClients().length ?? 0));
    this.metrics.gauge('nfsha_master_sessions_without_fence', 'Live sessions whose server cannot fence its NFS server (no fence command, or one failing)', [], (g) => {
      const core = this.core?.();
      g.set(core ? core.sessions.all().filter((s) => core.sessions.state(s) === SessionState.Live && s.fencing !== 'FENCING_READY').length : 0);
    });
    this.metrics.gauge('nfsha_master_maintenance', '1 for each Access Server in maintenance (SetMaintenance)', ['server'], (g) => {
      g.reset();
      for (const m of this.core?.()?.maintenance.list() ?? []) g.set({ server: m.serverId }, 1);
    });
    this.metrics.gauge('nfsha_master_nfs_down', '1 for each live session whose follower reports its NFS service down (agents route away from it)', ['server'], (g) => {
      g.reset();
      const core = this.core?.();
      for (const s of core?.sessions.all() ?? []) if (core!.sessions.state(s) === SessionState.Live && s.nfs === 'NFS_HEALTH_DOWN') g.set({ server: s.serverId }, 1);
    });
    this.metrics.gauge('nfsha_master_is_leader', '1 while this master leads', [], (g) => g.set(this.core?.() ? 1 : 0));
    this.metrics.gauge('nfsha_master_epoch', 'The current term\'s epoch (0 when not leading)', [], (g) => g.set(this.core?.()?.epoch ?? 0));
  }

  follow(core: () => MasterCore | undefined): void {
    this.core = core;
  }

  limitRefused(limit: string): void {
    this.limitRefusals.inc({ limit });
  }

  /**
   * Counts refusals, and logs the ones that name a caller's mistake or
   * misconduct. One for the master: the edge and every term share it, and
   * with it the rate limit on its log lines.
   */
  readonly refusals: Refusals;

  private makeRefusals(log: Logger): Refusals {
    const logLimiter = new KeyedRateLimiter(systemClock, 1, 5);
    return {
      limit: (name) => this.limitRefused(name),
      call: (method, code, details) => {
        this.edgeRefusals.inc({ method, code: grpc.status[code] ?? String(code) });
        // A flood of bad calls must not become a flood of log lines.
        if (logLimiter.take(`${method} ${code}`)) log.warn({ ev: 'call.refused', method, code: grpc.status[code], why: details }, 'call refused');
      },
    };
  }

  observer(): LoginObserver {
    return {
      loginGranted: (revoked, seconds) => {
        this.logins.inc({ result: 'granted' });
        this.loginSeconds.observe({ with_revoke: revoked ? 'true' : 'false' }, seconds);
      },
      loginRefused: (code) => {
        if (code.startsWith('limit:')) this.limitRefused(code.slice(6));
        this.logins.inc({ result: code === 'NotFound' ? 'unknown_session' : code === 'InvalidArgument' ? 'invalid' : code.startsWith('limit:') ? 'limited' : 'refused' });
      },
      revokeAcked: (seconds) => {
        this.revokes.inc({ outcome: 'acked' });
        this.revokeSeconds.observe(seconds);
      },
      revokeWaitedOut: () => this.revokes.inc({ outcome: 'waited_out' }),
      revokeHeld: () => this.revokes.inc({ outcome: 'held' }),
    };
  }
}
