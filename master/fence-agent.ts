import type { Clock } from '../common/clock';
import { FenceCommand, type FenceResult } from '../common/fence-command';
import type { Logger } from '../common/log';
import type { Session } from './sessions';
import type { ServerRecord } from './leadership';

export interface FenceAgentOptions {
  /**
   * argv run against a silent holder's SCVM, with `{server}`, `{host}`,
   * `{storage_ip}` and `{mgmt_ip}` replaced (also in the environment as
   * NFSHA_FENCE_SERVER, …). It must return 0 only once that SCVM can no
   * longer serve: powered off or isolated through its hypervisor in
   * production, its processes killed in the lab. Empty: none.
   */
  argv: string[];
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  /** Runs the agent instead of argv (the simulation's fence). */
  run?: (server: ServerRecord, why: string) => Promise<FenceResult>;
}

/**
 * The master's fence agent (DESIGN §4, "Fencing from outside"): a whole SCVM
 * that froze cannot fence itself, and when it thaws its NFS server executes
 * what sat in its socket buffers. Before a client moves away from a holder
 * that never confirmed it stopped, the agent is run against that holder's
 * SCVM and awaited, as Pacemaker runs STONITH before moving a resource. A
 * confirmed fence also ends the wait-out early: nothing is left to wait for.
 */
export class FenceAgent {
  private readonly commands = new Map<string, FenceCommand>();
  private readonly confirmed = new Set<string>();

  constructor(private readonly opts: FenceAgentOptions) {}

  get configured(): boolean {
    return this.opts.argv.length > 0 || this.opts.run !== undefined;
  }

  /**
   * The session's SCVM was fenced after the session's last keepalive: by a
   * run for this session, or by any run against its server (a grace's fence
   * of servers that did not come back) that started after that keepalive.
   */
  isConfirmed(session: Pick<Session, 'id' | 'serverId' | 'renewedAt'>): boolean {
    return this.confirmed.has(session.id) || (this.fencedFrom.get(session.serverId) ?? -Infinity) >= session.renewedAt;
  }

  /** Per server, when the latest successful run against it started. */
  private readonly fencedFrom = new Map<string, number>();

  /** Per server, when the latest successful run against it returned. */
  private readonly fencedBy = new Map<string, number>();

  private record(serverId: string, r: FenceResult): void {
    if (!r.ok) return;
    this.fencedFrom.set(serverId, Math.max(this.fencedFrom.get(serverId) ?? -Infinity, r.startedAt));
    this.fencedBy.set(serverId, this.opts.clock.now());
  }

  /**
   * A successful run against the session's SCVM returned after the
   * session's last keepalive: whatever sent that keepalive no longer runs.
   * Weaker than isConfirmed (a keepalive during the run may predate the
   * kill), so it only ever refuses things, such as a grant to that session.
   */
  fencedSinceRenewal(session: Pick<Session, 'serverId' | 'renewedAt'>): boolean {
    return (this.fencedBy.get(session.serverId) ?? -Infinity) >= session.renewedAt;
  }

  /**
   * The latest successful run against this server's SCVM killed the
   * processes behind each of `earlier` (its sessions before the one
   * asking): each was confirmed fenced, or was opened before that run
   * started (its follower was there to be killed) and last spoke before the
   * run returned. Nothing an earlier follower, gate or NFS server of it did
   * can still run. False when no run against it worked this term.
   */
  fencedAfterAll(serverId: string, earlier: Array<Pick<Session, 'id' | 'serverId' | 'renewedAt' | 'openedAt'>>): boolean {
    const from = this.fencedFrom.get(serverId);
    const by = this.fencedBy.get(serverId);
    if (from === undefined || by === undefined) return false;
    return earlier.every((s) => this.isConfirmed(s) || (s.openedAt < from && s.renewedAt <= by));
  }

  /** Fences the SCVM behind `session`; true once confirmed. Runs for one SCVM never overlap. */
  async fence(session: Session, why: string): Promise<boolean> {
    if (this.isConfirmed(session)) return true;
    if (!this.configured) return false;
    const r = await this.run(session, why);
    this.record(session.serverId, r);
    // A run fences the SCVM as it was when the run started: the session's
    // follower, gate and NFS server, as long as it had not been renewed since.
    if (r.ok && r.startedAt >= session.renewedAt) this.confirmed.add(session.id);
    return this.confirmed.has(session.id);
  }

  /**
   * Fences registered servers a new leader never heard from (its grace ran
   * out): they may be frozen with calls in their NFS servers. True once all are.
   */
  async fenceServers(servers: ServerRecord[], why: string): Promise<boolean> {
    if (!this.configured) return false;
    const results = await Promise.all(servers.map(async (s) => {
      const r = await this.run(s, why);
      this.record(s.serverId, r);
      return r;
    }));
    return results.every((r) => r.ok);
  }

  private run(server: ServerRecord, why: string): Promise<FenceResult> {
    if (this.opts.run) return this.opts.run(server, why);
    const vars: Record<string, string> = {
      server: server.serverId, host: server.hostId, storage_ip: server.storageIp, mgmt_ip: server.mgmtIp,
    };
    const key = JSON.stringify(vars);
    let cmd = this.commands.get(key);
    if (!cmd) {
      cmd = new FenceCommand({
        argv: this.opts.argv.map((a) => a.replace(/\{(server|host|storage_ip|mgmt_ip)\}/g, (_, k: string) => vars[k])),
        env: Object.fromEntries(Object.entries(vars).map(([k, v]) => [`NFSHA_FENCE_${k.toUpperCase()}`, v])),
        timeoutMs: this.opts.timeoutMs, clock: this.opts.clock, log: this.opts.log, what: `scvm ${server.serverId}`,
      });
      this.commands.set(key, cmd);
    }
    return cmd.fence(why);
  }

  forget(sessionId: string): void {
    this.confirmed.delete(sessionId);
  }
}
