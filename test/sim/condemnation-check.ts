import type { SimProcess } from './kernel';

/**
 * Liveness: no healthy holder is condemned (issue 18 hole g). A master
 * condemns a session (and waits it out, or fences its SCVM) when a revoke
 * goes unanswered. That is right when the holder is frozen, cut off or dead;
 * it is a bug when the holder's follower ran, on a stream that stayed up,
 * for longer than any message takes, and never got the revoke at all: the
 * master let it be lost (written to a stream the follower then replaced,
 * and never sent again).
 *
 * It reads the components' own log events: the master's revoke.sent /
 * revoke.resent, session.opened / resumed / disconnected (the stream the
 * session is on now, if any) and session.condemned / revoke.fence; the
 * follower's session.opened / resumed / stream.closed (its side of the
 * stream, which can close first: a half-open connection) and
 * revoke.received / duplicate / stale (it got the revoke, whatever it then
 * did with it).
 */
export interface CondemnationWorld {
  now(): number;
  /** The process of the master logging as `who`. */
  masterProc(who: string): SimProcess | undefined;
  /** The current follower process of a server (`scvm-N`). */
  followerProc(serverId: string): SimProcess | undefined;
  /** The name a server's follower logs as. */
  followerLogName(serverId: string): string;
  /** Since when nothing between the two processes' machines has been held (Infinity: held now). */
  unheldSince(a: SimProcess, b: SimProcess): number;
  /** The longest a message on a stream can take (latency bursts included). */
  maxLatencyMs(): number;
  violate(text: string): void;
}

/** One side of a session stream: up since when, and when it closed (undefined: still up). */
interface StreamSide {
  since: number;
  closed?: number;
}

/** The follower's handling of a delivered message runs in the same event; this covers the hops of the real code's own awaits. */
const SLACK_MS = 100;

export class CondemnationCheck {
  /** Per master, session and client: the last revoke and when a copy of it was last written. */
  private readonly lastRevoke = new Map<string, { revokeId: string; sentAt: number }>();
  /** Per master and session: since when its current stream is up, and when it closed (until it resumes). */
  private readonly masterStream = new Map<string, StreamSide>();
  /** Per follower (log name): the session its stream is on, since when, and when that stream closed on its side. */
  private readonly followerStream = new Map<string, StreamSide & { session: string }>();
  private readonly received = new Set<string>();
  private readonly reported = new Set<string>();

  constructor(private readonly w: CondemnationWorld) {}

  onLogEvent(who: string, ev: string, f: Record<string, unknown>): void {
    switch (ev) {
      case 'revoke.sent':
      case 'revoke.resent':
        if (who.startsWith('master-')) this.lastRevoke.set(`${who}|${f.session}|${f.client}`, { revokeId: String(f.revoke), sentAt: this.w.now() });
        return;
      case 'session.opened':
      case 'session.resumed':
        if (who.startsWith('follower-')) this.followerStream.set(who, { session: String(f.session), since: this.w.now() });
        else this.masterStream.set(`${who}|${f.session}`, { since: this.w.now() });
        return;
      case 'session.stream.closed':
        // The follower's side can close first (a half-open connection): the master writes on into a stream nobody reads.
        return this.close(this.followerStream.get(who));
      case 'session.disconnected':
        // No stream until the session resumes on a new one.
        return this.close(this.masterStream.get(`${who}|${f.session}`));
      case 'revoke.received':
      case 'revoke.duplicate':
      case 'revoke.stale':
        if (who.startsWith('follower-') && f.revoke !== undefined) this.received.add(String(f.revoke));
        return;
      case 'session.condemned':
      case 'revoke.fence':
        if (who.startsWith('master-') && f.session !== undefined) this.condemned(who, String(f.session), String(f.server), String(f.client));
        return;
    }
  }

  /** The first close of a stream side counts (a condemnation closes it again, or logs it twice). */
  private close(side: StreamSide | undefined): void {
    if (side && side.closed === undefined) side.closed = this.w.now();
  }

  /** Up on this side now; a close at this very moment is the condemnation's own (logged just before it). */
  private upNow(side: StreamSide | undefined): side is StreamSide {
    return side !== undefined && (side.closed === undefined || side.closed >= this.w.now());
  }

  private condemned(who: string, sessionId: string, serverId: string, clientId: string): void {
    const revoke = this.lastRevoke.get(`${who}|${sessionId}|${clientId}`);
    const ms = this.masterStream.get(`${who}|${sessionId}`);
    if (!revoke || !this.upNow(ms) || this.received.has(revoke.revokeId) || this.reported.has(revoke.revokeId)) return;
    const fs = this.followerStream.get(this.w.followerLogName(serverId));
    if (!this.upNow(fs) || fs.session !== sessionId) return;
    const master = this.w.masterProc(who);
    const follower = this.w.followerProc(serverId);
    if (!master || !follower || follower.dead || follower.paused) return;
    // The holder was healthy since the revoke (or its copy) went out on the
    // current stream: the follower process that holds that stream ran all
    // along, nothing held its messages, and a message had time to arrive.
    const from = Math.max(ms.since, fs.since, revoke.sentAt);
    const now = this.w.now();
    if (follower.startedAt > ms.since || follower.resumedAt > from) return;
    if (this.w.unheldSince(follower, master) > from) return;
    if (now - from < this.w.maxLatencyMs() + SLACK_MS) return;
    this.reported.add(revoke.revokeId);
    this.w.violate(`liveness: ${who} condemned ${serverId}'s session ${sessionId} (revoke ${revoke.revokeId} of ${clientId} unanswered), though its follower ran on a stream that stayed up since t=${from.toFixed(0)} (${(now - from).toFixed(0)} ms) and never got that revoke: a healthy holder condemned`);
  }
}
