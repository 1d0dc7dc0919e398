import type { DevCluster } from './cluster';
import { Listeners } from './events';
import type { LogEvent } from './log-tail';
import type { HostEvent, SimHost } from './sim-host';
import type { Timeline } from './timeline';

/** How one move of a host ended, measured by the host itself. */
export interface ActResult {
  title: string;
  /** Between the last reply over the old gate and the first over the new one; undefined: IO did not resume. */
  pauseMs?: number;
  /** How the old holder let go, from the master's log. */
  how: string;
  error?: string;
}

/** Longest an act may wait for IO to resume: a wait-out takes about TTL × 1.1. */
const RESUME_TIMEOUT_MS = 30_000;
/** The old holder's NFS delay during fail-back: far longer than a revoke takes, so there are calls to drain. */
const BUSY_NFS_DELAY_MS = 400;

/**
 * The scripted scenario of `nfsha dev`, standing in for the agent (none runs
 * on loopback): host esx-1 is moved between Access Servers twice.
 *
 * 1. Failover. Follower scvm-1 is killed with kill -9; its gate loses the
 *    follower and drops esx-1, which reconnects through gate-2. The master
 *    cannot ask the dead holder to let go: it waits its lease out, then
 *    grants esx-1 to scvm-2 and IO resumes.
 * 2. Fail-back. scvm-1's follower is started again; esx-1 moves back while
 *    its connection through gate-2 still has calls in flight (scvm-2's NFS
 *    server is made busy, so they are still unanswered when the revoke
 *    comes). The master revokes scvm-2, whose gate acks only once those
 *    calls were answered,
 *    then grants esx-1 to scvm-1.
 */
export class Scenario {
  private readonly hostEvents = new Listeners<HostEvent>();

  constructor(
    private readonly cluster: DevCluster,
    private readonly hosts: SimHost[],
    private readonly timeline: Timeline,
  ) {
    cluster.logs.on((e) => timeline.log(e));
    for (const h of hosts) h.on('event', (e: HostEvent) => this.onHostEvent(e));
  }

  private onHostEvent(e: HostEvent): void {
    this.hostEvents.emit(e);
    if (e.ev === 'flowing') return;
    if (e.ev === 'closed') this.timeline.add(e.t, e.host, `connection via ${e.gate} closed, ${e.unanswered} calls unanswered (sent again on the next one)`);
    else this.timeline.add(e.t, e.host, `IO resumed via ${e.gate}: first reply after a pause of ${e.pauseMs} ms`);
  }

  /** Resolves once every host has had a reply: the acts measure pauses in IO that flowed. */
  async flowing(timeoutMs: number): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.hostEvents.first(`a reply to ${h.id}`, (e) => e.ev === 'flowing' && e.host === h.id, timeoutMs)));
  }

  /** Both acts; each result says whether IO resumed and after how long. */
  async run(): Promise<ActResult[]> {
    const results = [await this.failover()];
    if (results[0].pauseMs !== undefined) results.push(await this.failBack());
    return results;
  }

  private async failover(): Promise<ActResult> {
    const [host] = this.hosts;
    const [from, to] = this.cluster.gates;
    return this.act(`Act 1: the Access Server serving ${host.id} fails (kill -9 of follower ${from.server})`, async (origin) => {
      const pid = await this.cluster.procs.kill9(`follower-1`);
      this.timeline.add(origin, 'dev', `kill -9 follower ${from.server} (pid ${pid})`);
      // Its gate drops the host once the follower is gone; then the host
      // reconnects elsewhere, as its agent's reroute would make it do.
      await this.hostEvents.first(`${host.id}'s connection via ${from.gate} closing`, (e) => e.ev === 'closed' && e.host === host.id && e.t >= origin, 10_000).catch(() => undefined);
      host.connect(to);
      this.timeline.add(Date.now(), host.id, `reconnects via ${to.gate} (${to.server})`);
      return to;
    });
  }

  private async failBack(): Promise<ActResult> {
    const [host] = this.hosts;
    const [back, from] = this.cluster.gates;
    const fromNfs = this.cluster.standIns[this.cluster.gates.indexOf(from)];
    const usualDelayMs = fromNfs.delayMs;
    try {
      return await this.act(`Act 2: ${back.server} is back; ${host.id} moves back while ${from.server} still serves it (revoke, drain)`, async (origin) => {
        const pid = this.cluster.procs.restart('follower-1');
        this.timeline.add(origin, 'dev', `start follower ${back.server} again (pid ${pid})`);
        await this.cluster.logged(`${back.gate} serving again`, (e) => e.src === back.gate && e.ev === 'gate.serving' && e.t >= origin, 20_000);
        // A busy old server, so that calls are surely in flight there when the
        // revoke comes: at its usual delay they may all be answered in the
        // tens of ms a revoke takes, leaving nothing to drain.
        fromNfs.delayMs = BUSY_NFS_DELAY_MS;
        this.timeline.add(Date.now(), 'dev', `${from.server}'s NFS server gets busy: it answers in ${BUSY_NFS_DELAY_MS} ms from now`);
        const inFlight = host.inFlight;
        host.connect(back);
        this.timeline.add(Date.now(), host.id, `moves to ${back.gate} (${back.server}); keeps its connection via ${from.gate} busy until then (${inFlight} calls in flight)`);
        return back;
      });
    } finally {
      fromNfs.delayMs = usualDelayMs;
    }
  }

  /**
   * Runs one act: `move` makes the fault and moves the host, returning the
   * gate it moved to; then waits until IO resumes there.
   */
  private async act(title: string, move: (origin: number) => Promise<{ gate: string }>): Promise<ActResult> {
    const origin = Date.now();
    this.timeline.begin(title, origin);
    const [host, ...others] = this.hosts;
    for (const h of others) h.resetGap();
    let result: ActResult;
    try {
      const to = await move(origin);
      const resumed = await this.hostEvents.first(`reply to ${host.id} via ${to.gate}`, (e) => e.ev === 'resumed' && e.host === host.id && e.gate === to.gate && e.t >= origin, RESUME_TIMEOUT_MS);
      result = { title, pauseMs: (resumed as Extract<HostEvent, { ev: 'resumed' }>).pauseMs, how: '' };
    } catch (err) {
      result = { title, how: '', error: (err as Error).message };
    }
    await this.timeline.end();
    result.how = this.howLetGo(origin);
    if (others.length) result.how += `; ${others.map((h) => h.id).join(', ')} kept going (longest gap between replies ${Math.max(...others.map((h) => h.maxGapMs))} ms)`;
    return result;
  }

  /** How the master took the host away from its old holder during the act, from its log. */
  private howLetGo(since: number): string {
    const seen = (ev: string) => this.cluster.logs.history.filter((e: LogEvent) => e.ev === ev && e.t >= since);
    const drained = seen('gate.revoke.drained').reduce((sum, e) => sum + Number(e.calls ?? 0), 0);
    const [acked] = seen('revoke.acked').filter((e) => e.src === 'master');
    const [waited] = seen('revoke.waitout');
    if (acked) return `old holder ${acked.server} revoked and acked in ${acked.ms} ms, ${drained} calls drained first`;
    if (waited) return `old holder ${waited.server} silent: its lease waited out (${waited.ms} ms)`;
    return 'no old holder to take it from';
  }
}
