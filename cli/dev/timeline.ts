import type { LogEvent } from './log-tail';

const n = (v: unknown) => (typeof v === 'number' ? v : Number(v ?? 0));
const plural = (count: number, one: string) => `${count} ${one}${count === 1 ? '' : 's'}`;

/**
 * What a cluster log event means, in one line for the timeline; undefined
 * for events it does not show. Events come from master/login.ts,
 * master/service.ts, follower/follower.ts and follower/gate-core.ts.
 */
export function describeLogEvent(e: LogEvent): string | undefined {
  switch (e.ev) {
    // master
    case 'session.opened':
      return e.src === 'master' ? `session of ${e.server} opened` : undefined;
    case 'session.disconnected':
      return `keepalive stream of ${e.server} closed`;
    case 'session.condemned':
      return `${e.server} cannot be asked to let ${e.client} go: its session is condemned (no more renewals)`;
    case 'revoke.waitout':
      return `waits out ${e.server}'s lease: ${n(e.ms)} ms until it has surely expired (TTL × (1 + drift) + margin)`;
    case 'revoke.fence':
      return `runs the fence agent against silent ${e.server}`;
    case 'revoke.fenced':
      return `${e.server} fenced: no wait-out`;
    case 'revoke.sent':
      return `revoke of ${e.client} sent to ${e.server} (${e.why})`;
    case 'revoke.acked':
      return e.src === 'master' ? `${e.server} acked the revoke of ${e.client} after ${n(e.ms)} ms` : undefined;
    case 'revoke.drain.limit':
      return `${e.server} did not drain ${e.client} in time (${n(e.calls_left)} calls left)`;
    case 'login.granted':
      return `grant ${e.client} → ${e.server}, fencing token ${e.token}${n(e.revoked) ? ` (taken from ${plural(n(e.revoked), 'holder')})` : ''}`;
    case 'session.expired':
      return `session of ${e.server} expired`;
    // follower
    case 'follower.fenced':
      return `fenced itself: ${e.why}`;
    // gate
    case 'gate.serving':
      return 'serving: lease from its follower';
    case 'gate.drop_all':
      return `dropped ${plural(n(e.clients), 'client')}, ${plural(n(e.calls_in_flight), 'call')} in flight (${e.why})`;
    case 'gate.drained':
      return `the NFS server answered the ${plural(n(e.calls), 'call')} ${e.client} had in flight (${n(e.ms)} ms)`;
    case 'gate.revoked':
      return `revoked ${e.client}: cut off, ${plural(n(e.calls_in_flight), 'call')} in flight to drain before the ack`;
    case 'gate.revoke.drained':
      return `drained ${plural(n(e.calls), 'call')} of ${e.client} in ${n(e.ms)} ms: acks the revoke`;
    case 'gate.revoke.drain_timeout':
      return `NFS server did not drain ${e.client} in ${n(e.ms)} ms: fencing it`;
    case 'gate.revoke.held':
      return `${n(e.calls_left)} calls of ${e.client} not drained and no fence command: holds the revoke`;
    case 'login.held':
      return `${e.client} held by ${e.server}: ${e.why}`;
    case 'fence.confirmed':
      return `${e.operator} confirmed ${e.server}'s NFS server stopped`;
    case 'gate.fence_point':
      return `lease ends with ${plural(n(e.calls_in_flight), 'call')} in flight: fencing the NFS server`;
    case 'gate.refused':
      return e.err ? `refused ${e.address}: ${e.err}` : undefined;
    default:
      return undefined;
  }
}

interface Entry {
  t: number;
  who: string;
  text: string;
}

/**
 * Prints what happens during one act of the scenario, in time order, with
 * times relative to the act's start. Log lines reach us a poll later than
 * the host's own events, so entries wait `holdMs` before they are printed.
 */
export class Timeline {
  private pending: Entry[] = [];
  private origin = 0;
  private active = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly write: (line: string) => void, private readonly holdMs = 250) {
    this.timer = setInterval(() => this.flush(Date.now() - this.holdMs), 50);
    this.timer.unref();
  }

  begin(title: string, origin = Date.now()): void {
    this.origin = origin;
    this.active = true;
    this.write(`\n${title}\n`);
  }

  /** An entry at time `t` (Date.now() clock); ignored outside an act. */
  add(t: number, who: string, text: string): void {
    if (this.active && t >= this.origin) this.pending.push({ t, who, text });
  }

  log(e: LogEvent): void {
    const text = describeLogEvent(e);
    if (text) this.add(e.t, e.src, text);
  }

  /** Prints what is left after the stragglers had `holdMs` to arrive, and ends the act. */
  async end(): Promise<void> {
    await new Promise((r) => setTimeout(r, this.holdMs));
    this.flush(Infinity);
    this.active = false;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private flush(upTo: number): void {
    const ready = this.pending.filter((e) => e.t <= upTo).sort((a, b) => a.t - b.t);
    if (!ready.length) return;
    this.pending = this.pending.filter((e) => e.t > upTo);
    for (const e of ready) this.write(`  ${`+${e.t - this.origin} ms`.padStart(10)}  ${e.who.padEnd(10)}  ${e.text}\n`);
  }
}
