import type { Clock, TimerHandle } from '../common/clock';
import { FENCE_RETRY_MS, type FenceResult } from '../common/fence-command';
import type { Logger } from '../common/log';
import { mutant } from '../common/mutants';
import { compareTokens, formatToken, type Token } from '../common/token';

/** One forwarded client connection, as the gate's logic sees it (gate-connection.ts, or a simulated one). */
export interface ForwardedConn {
  readonly serial: number;
  readonly clientId: string;
  /** Clock time its connection to the NFS server was opened. */
  readonly openedAt: number;
  readonly stopped: boolean;
  readonly drained: boolean;
  /** Calls forwarded without a reply (including those a closed server connection hid). */
  readonly inFlight: number;
  readonly unsentBytes: number;
  readonly why: string | undefined;
  stop(why: string): void;
  /** A fence that started after openedAt completed: nothing it was sent can execute any more. */
  fenced(): void;
}

export interface AdmitGrant {
  clientId: string;
  token: Token;
  /** Absolute lease deadline (clock ms), or 0 when the follower sent only a relative one. */
  leaseDeadline: number;
  /** The follower's admission counter (0 from a follower that predates it). */
  admissionSeq: number;
}

/** The gate's side of the follower's Gate API (grpc-js in tcp-gate.ts, simulated in tests). */
export interface GateFollowerLink {
  admit(address: string): Promise<AdmitGrant>;
  ackRevoke(revokeId: string): void;
  /** Logs the client out, covering the admissions up to `upToSeq` only. */
  release(clientId: string, upToSeq: number): void;
  /** Sends a report; a promise, if any, settles once the follower took it (true) or the call failed (false). */
  report(r: GateStateReport): void | Promise<boolean>;
}

export interface GateStateReport {
  watcherId: number;
  /** Increases with every report (GateReport.report_seq). */
  reportSeq: number;
  leaseDeadlineMonotonicMs: number;
  serving: boolean;
  callsInFlight: number;
  quiesced: boolean;
  draining: Array<{ revokeId: string; clientId: string; callsLeft: number }>;
  fenceSeq: number;
  stoppedCallsInFlight: number;
  /** A fence command is configured (none: undrained revokes are held, never acked). */
  fenceConfigured: boolean;
  fenceTimeoutMs: number;
  /** The last fence run failed, and none succeeded since. */
  fenceFailed: boolean;
  /** Every client with calls owed on its connections, admitted or stopped (issue 18 hole f). */
  clientsInFlight: Array<{ clientId: string; calls: number }>;
  /** It stops for good (a graceful stop began): it will serve nothing more. */
  final: boolean;
}

export type GateEventBody =
  | { ev: 'start' }
  | { ev: 'admit'; client: string; token: string }
  | { ev: 'drop'; client: string; why: string; pending: number; deadline: number; stopAt: number }
  | { ev: 'drained'; client: string; calls: number; ms: number }
  | { ev: 'fence'; ok: boolean; started: number; ms: number; why: string };

/** One line of a gate's event log; `t` is CLOCK_MONOTONIC ms, comparable across processes. */
export type GateEvent = GateEventBody & { t: number; gate: string };

export interface GateTiming {
  /** Stop forwarding this long before the lease deadline, so calls drain before the fence point. Default 1000 ms. */
  stopLeadMs: number;
  /** E: at deadline − E, fence the NFS server unless quiesced. Must cover the fence command's run. Default 500 ms. */
  fenceLeadMs: number;
  /** A revoked client's calls not drained within this are ended by fencing the NFS server. Default 1500 ms. */
  revokeDrainTimeoutMs: number;
}

export const DEFAULT_GATE_TIMING: GateTiming = { stopLeadMs: 1000, fenceLeadMs: 800, revokeDrainTimeoutMs: 1500 };

export interface GateCoreOptions extends GateTiming {
  name: string;
  clock: Clock;
  log: Logger;
  link: GateFollowerLink;
  fence: { readonly configured: boolean; readonly timeoutMs?: number; fence(why: string): Promise<FenceResult> };
  record(e: GateEventBody): void;
}

interface ClientState {
  token: Token;
  conns: Set<ForwardedConn>;
}

interface PendingRevoke {
  revokeId: string;
  clientId: string;
  waiting: Set<ForwardedConn>;
  startedAt: number;
  calls: number;
  timer?: TimerHandle;
}

/**
 * The NFS layer's logic (DESIGN §3–§4), apart from sockets: which clients it
 * may serve, until when, and what must happen before a revoke is acked.
 *
 * - Serving needs the follower's command stream, no fence since the last
 *   renewal, and the lease: forwarding stops `stopLeadMs` before the
 *   deadline (checked on every chunk, not only by timer: after a freeze Node
 *   may handle socket I/O before timers).
 * - A revoke, fence, lease stop or lost stream stops the client's
 *   connections at once; a revoke is acked only once every call they had
 *   forwarded has its reply, or the NFS server was fenced.
 * - At deadline − `fenceLeadMs`, unless quiesced (not serving, nothing in
 *   flight, nothing unsent), the NFS server is fenced: the follower does the
 *   same, since either of the two may be the one frozen.
 */
export class GateCore {
  private streamUp = false;
  private watcherId = 0;
  private reportIntervalMs = 250;
  private fencedByFollower = false;
  /** A graceful stop began: serve nothing more, whatever the follower says. */
  private stopping = false;
  /** Called when quiesced, while a graceful stop waits for its drains. */
  private onQuiesced?: () => void;
  private fenceSeq = 0;
  /** Numbers the reports, so the follower can tell a late copy from the newest. */
  private reportSeq = 0;
  /** Fences and stream ends seen: an Admit reply asked before one of them is refused. */
  private interruptions = 0;
  private deadline = 0;
  private readonly clients = new Map<string, ClientState>();
  /** Every connection not yet drained-after-stop or closed. */
  private readonly live = new Set<ForwardedConn>();
  /** Stopped, undrained connections per client, and whether to log the client out once drained. */
  private readonly undrained = new Map<string, { conns: Set<ForwardedConn>; since: number; calls: number; release: boolean }>();
  private readonly revokes = new Map<string, PendingRevoke>();
  private readonly revokedUpTo = new Map<string, Token>();
  private readonly pendingByAddress = new Map<string, number>();
  private readonly clientOfAddress = new Map<string, string>();
  /** The newest admission the follower gave each client: a release covers those only. */
  private readonly admittedUpTo = new Map<string, number>();
  /** The admissions each client's last release covered: a reply for one of them arrives too late. */
  private readonly releasedUpTo = new Map<string, number>();
  private stopTimer?: TimerHandle;
  private fenceTimer?: TimerHandle;
  private reportTimer?: TimerHandle;
  private lastQuiesced = false;
  private disposed = false;
  /** The last fence run failed (reported until one succeeds). */
  private fenceFailed = false;

  constructor(private readonly opts: GateCoreOptions) {}

  // ---- state -------------------------------------------------------------

  /** May forward now: stream up, not fenced, before the lease's stop point. */
  serving(): boolean {
    return (this.streamUp || mutant('gate-admits-without-stream')) && !this.fencedByFollower && !this.stopping && this.opts.clock.now() < this.deadline - this.opts.stopLeadMs;
  }

  /** Not serving, and nothing of ours can still reach the NFS server. */
  quiesced(): boolean {
    if (this.serving()) return false;
    for (const c of this.live) if (!c.drained) return false;
    return true;
  }

  callsInFlight(): number {
    let n = 0;
    for (const c of this.live) n += c.inFlight;
    return n;
  }

  /** Calls owed on stopped connections; one with bytes still unsent counts at least one. */
  stoppedCallsInFlight(): number {
    let n = 0;
    for (const c of this.live) if (c.stopped && !c.drained) n += Math.max(c.inFlight, c.unsentBytes > 0 ? 1 : 0);
    return n;
  }

  /**
   * Per client, calls owed on its connections not drained yet, admitted or
   * stopped (one with bytes still unsent counts one): what the follower must
   * claim whatever it remembers of the client.
   */
  clientsInFlight(): Array<{ clientId: string; calls: number }> {
    const calls = new Map<string, number>();
    for (const c of this.live) {
      if (c.drained) continue;
      const n = Math.max(c.inFlight, c.unsentBytes > 0 ? 1 : 0);
      if (n > 0) calls.set(c.clientId, (calls.get(c.clientId) ?? 0) + n);
    }
    return [...calls].map(([clientId, n]) => ({ clientId, calls: n }));
  }

  admittedClients(): string[] {
    return [...this.clients.keys()];
  }

  /** The admitted clients without copying them (checkers call this often). */
  admittedIds(): IterableIterator<string> {
    return this.clients.keys();
  }

  get leaseDeadline(): number {
    return this.deadline;
  }

  // ---- commands from the follower ----------------------------------------

  onWelcome(watcherId: number, reportIntervalMs: number): void {
    this.streamUp = true;
    this.watcherId = watcherId;
    if (reportIntervalMs > 0) this.reportIntervalMs = reportIntervalMs;
    this.scheduleReport(0);
  }

  /** A lease renewal: serve until `deadline` (absolute, clock ms) minus the stop lead. */
  onLease(deadline: number): void {
    if (!this.streamUp) return; // only what arrives on the stream renews: no stream, nobody could revoke us
    const was = this.serving();
    if (deadline <= this.deadline) {
      if (this.fencedByFollower && deadline > this.opts.clock.now()) this.fencedByFollower = false;
    } else {
      this.deadline = deadline;
      this.fencedByFollower = false;
      this.armLeaseTimers();
    }
    if (!was && this.serving()) this.opts.log.info({ ev: 'gate.serving', lease_ms: Math.round(this.deadline - this.opts.clock.now()) }, 'serving: lease from the follower');
  }

  onFence(reason: string, seq = 0): void {
    this.fencedByFollower = true;
    this.interruptions += 1;
    this.stopServing(`fenced: ${reason}`);
    if (seq > this.fenceSeq) this.fenceSeq = seq;
    this.scheduleReport(0);
  }

  onRevoke(r: { revokeId: string; clientId: string; reason: string; token: Token }): void {
    const prev = this.revokedUpTo.get(r.clientId);
    if (!prev || compareTokens(r.token, prev) > 0) this.revokedUpTo.set(r.clientId, r.token);
    const waiting = new Set<ForwardedConn>([...(this.clients.get(r.clientId)?.conns ?? []), ...(this.undrained.get(r.clientId)?.conns ?? [])]);
    this.dropClient(r.clientId, `revoked: ${r.reason}`, false);
    const u = this.undrained.get(r.clientId);
    if (u) u.release = false; // the master moves it: no logout
    for (const c of waiting) if (c.drained) waiting.delete(c);
    const calls = [...waiting].reduce((n, c) => n + c.inFlight, 0);
    this.opts.log.info({ ev: 'gate.revoked', client: r.clientId, why: r.reason, revoke: r.revokeId, calls_in_flight: calls }, 'client revoked');
    const pending: PendingRevoke = { revokeId: r.revokeId, clientId: r.clientId, waiting, startedAt: this.opts.clock.now(), calls };
    if (!waiting.size) return this.ack(pending);
    this.revokes.set(r.revokeId, pending);
    pending.timer = this.opts.clock.setTimeout(() => void this.drainTimedOut(pending), this.opts.revokeDrainTimeoutMs);
    this.scheduleReport(0);
  }

  /**
   * The NFS server was stopped from outside (an operator confirmed it):
   * calls owed on stopped connections can no longer execute, so the revokes
   * held for them are acked. Connections still served are left alone: the
   * confirmation speaks of what was stopped before it.
   */
  onNfsServerFenced(reason: string): void {
    const owed = [...this.live].filter((c) => c.stopped && !c.drained);
    this.opts.log.warn({ ev: 'gate.nfs_fenced', why: reason, connections: owed.length }, 'NFS server confirmed stopped from outside');
    for (const c of owed) c.fenced();
    this.scheduleReport(0);
  }

  onStreamEnded(why: string): void {
    if (!this.streamUp && !this.watcherId) return;
    this.streamUp = false;
    this.watcherId = 0;
    this.interruptions += 1;
    if (this.reportTimer) this.opts.clock.clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    // DESIGN §4: without the stream nobody can revoke us; stop serving. The
    // deadline stays: the fence point still applies to what is in flight.
    this.stopServing(`gate stream ended: ${why}`);
  }

  // ---- connections -------------------------------------------------------

  /** Asks the follower to admit a connection from `address`; undefined when it may not be served. */
  async admit(address: string): Promise<AdmitGrant | undefined> {
    // No admit without the revoke stream and a lease: nothing could stop us.
    if (!this.serving()) return undefined;
    const interruptionsBefore = this.interruptions;
    this.pendingByAddress.set(address, (this.pendingByAddress.get(address) ?? 0) + 1);
    let grant: AdmitGrant;
    try {
      grant = await this.opts.link.admit(address);
    } finally {
      const n = (this.pendingByAddress.get(address) ?? 1) - 1;
      if (n > 0) this.pendingByAddress.set(address, n);
      else this.pendingByAddress.delete(address);
    }
    this.clientOfAddress.set(address, grant.clientId);
    if (grant.admissionSeq > (this.admittedUpTo.get(grant.clientId) ?? 0)) this.admittedUpTo.set(grant.clientId, grant.admissionSeq);
    const revoked = this.revokedUpTo.get(grant.clientId);
    if (revoked && compareTokens(grant.token, revoked) <= 0) return undefined;
    if (grant.admissionSeq > 0 && grant.admissionSeq <= (this.releasedUpTo.get(grant.clientId) ?? 0) && !mutant('gate-admit-after-release')) {
      // Campaign seed 488470164: a host's connections from two addresses, one
      // Admit reply late. The other connection closed, and the release went
      // out covering both admissions (the follower numbered the late one
      // first, and the gate could not tell whose address was pending). The
      // master has since let the client go: this grant is no longer its.
      return undefined;
    }
    if (!mutant('gate-late-admit-unfences')) {
      // Issue 18 hole a: the reply travels apart from the stream, so a fence
      // (or a stream end, which may have lost a revoke) can overtake it. The
      // follower has since forgotten that grant and may re-introduce without
      // it, and the reply's lease deadline would lift the fence. Only a
      // renewal on the stream after the fence serves again; what was asked
      // before it is refused (the client connects again).
      if (this.interruptions !== interruptionsBefore) return undefined;
    }
    if (grant.leaseDeadline > 0) this.onLease(grant.leaseDeadline);
    return this.serving() ? grant : undefined;
  }

  /** Registers a connection for an admitted grant; false (and stopped) when it may no longer be served. */
  attach(conn: ForwardedConn, grant: AdmitGrant): boolean {
    const revoked = this.revokedUpTo.get(grant.clientId);
    if (!this.serving() || (revoked && compareTokens(grant.token, revoked) <= 0)) return false;
    this.live.add(conn);
    let state = this.clients.get(grant.clientId);
    if (!state) {
      state = { token: grant.token, conns: new Set() };
      this.clients.set(grant.clientId, state);
      this.opts.record({ ev: 'admit', client: grant.clientId, token: formatToken(grant.token) });
    }
    state.conns.add(conn);
    return true;
  }

  /** Checked before every chunk a connection forwards. */
  mayForward(conn: ForwardedConn): boolean {
    if (this.serving()) return this.clients.get(conn.clientId)?.conns.has(conn) === true;
    if (this.clients.size) this.stopServing('lease stop point passed (checked on data)');
    return false;
  }

  /** A connection stopped on its own (client or NFS server hung up). */
  connStopped(conn: ForwardedConn): void {
    const state = this.clients.get(conn.clientId);
    if (!state?.conns.delete(conn)) return;
    this.noteUndrained(conn);
    if (state.conns.size > 0) return;
    this.clients.delete(conn.clientId);
    const u = this.undrained.get(conn.clientId);
    if (u && conn.why === 'client closed') u.release = true;
    this.recordDrop(conn.clientId, conn.why ?? 'connection closed', [conn]);
    if (!u) this.maybeRelease(conn.clientId, conn.why === 'client closed');
  }

  connDrained(conn: ForwardedConn): void {
    this.live.delete(conn);
    const u = this.undrained.get(conn.clientId);
    if (u?.conns.delete(conn) && u.conns.size === 0) {
      this.undrained.delete(conn.clientId);
      const ms = this.opts.clock.now() - u.since;
      this.opts.record({ ev: 'drained', client: conn.clientId, calls: u.calls, ms: Math.round(ms) });
      if (u.calls > 0) this.opts.log.info({ ev: 'gate.drained', client: conn.clientId, calls: u.calls, ms: Math.round(ms) }, 'calls in flight drained');
      if (u.release) this.maybeRelease(conn.clientId, true);
    }
    for (const p of [...this.revokes.values()]) {
      if (p.waiting.delete(conn) && p.waiting.size === 0) this.ack(p);
    }
    if (!this.lastQuiesced && this.quiesced()) this.scheduleReport(0);
    if (this.onQuiesced && this.quiesced()) this.onQuiesced();
  }

  connClosed(conn: ForwardedConn): void {
    if (!conn.drained) return; // still owed replies: stays until drained or fenced
    this.live.delete(conn);
  }

  // ---- internals ---------------------------------------------------------

  private noteUndrained(conn: ForwardedConn): void {
    if (conn.drained) return;
    let u = this.undrained.get(conn.clientId);
    if (!u) this.undrained.set(conn.clientId, (u = { conns: new Set(), since: this.opts.clock.now(), calls: 0, release: false }));
    if (!u.conns.has(conn)) {
      u.conns.add(conn);
      u.calls += conn.inFlight;
    }
  }

  private dropClient(clientId: string, why: string, release: boolean): void {
    const state = this.clients.get(clientId);
    if (!state) return;
    this.clients.delete(clientId);
    const conns = [...state.conns];
    for (const c of conns) {
      c.stop(why);
      this.noteUndrained(c);
    }
    const u = this.undrained.get(clientId);
    if (u) u.release = release;
    this.recordDrop(clientId, why, conns);
  }

  private recordDrop(clientId: string, why: string, conns: ForwardedConn[]): void {
    const pending = conns.reduce((n, c) => n + (c.drained ? 0 : Math.max(c.inFlight, c.unsentBytes > 0 ? 1 : 0)), 0);
    this.opts.record({ ev: 'drop', client: clientId, why, pending, deadline: this.deadline, stopAt: this.deadline - this.opts.stopLeadMs });
  }

  private stopServing(why: string): void {
    const n = this.clients.size;
    for (const clientId of [...this.clients.keys()]) this.dropClient(clientId, why, false);
    if (n) this.opts.log.warn({ ev: 'gate.drop_all', why, clients: n, calls_in_flight: this.callsInFlight() }, 'dropped every client');
    this.scheduleReport(0);
  }

  private maybeRelease(clientId: string, wanted: boolean): void {
    if (!wanted || this.clients.has(clientId)) return;
    // An admit still in flight for this client may return its current grant:
    // releasing now would let the master hand the client away under it.
    for (const [address, n] of this.pendingByAddress) {
      if (n > 0 && this.clientOfAddress.get(address) === clientId) return;
    }
    const upTo = this.admittedUpTo.get(clientId) ?? 0;
    if (upTo > (this.releasedUpTo.get(clientId) ?? 0)) this.releasedUpTo.set(clientId, upTo);
    this.opts.link.release(clientId, upTo);
  }

  private ack(p: PendingRevoke): void {
    this.revokes.delete(p.revokeId);
    if (p.timer) this.opts.clock.clearTimeout(p.timer);
    const ms = Math.round(this.opts.clock.now() - p.startedAt);
    if (p.calls > 0) this.opts.log.info({ ev: 'gate.revoke.drained', client: p.clientId, revoke: p.revokeId, calls: p.calls, ms }, 'revoked client drained');
    this.opts.link.ackRevoke(p.revokeId);
  }

  private async drainTimedOut(p: PendingRevoke): Promise<void> {
    if (!this.revokes.has(p.revokeId)) return;
    const left = [...p.waiting].reduce((n, c) => n + c.inFlight, 0);
    if (!this.opts.fence.configured) {
      if (mutant('gate-ack-undrained-without-fence')) {
        for (const c of p.waiting) c.fenced();
        return;
      }
      // DESIGN §4, "fail safe, not open": nothing can prove these calls will
      // not execute after the client moved, so the revoke is held (the
      // client stays stopped here and the master keeps it from moving) until
      // they drain or an operator confirms the NFS server stopped.
      this.opts.log.error({ ev: 'gate.revoke.held', client: p.clientId, revoke: p.revokeId, calls_left: left, ms: this.opts.revokeDrainTimeoutMs }, 'calls not drained and no fence command: holding the revoke until they drain or a fence is confirmed');
      this.scheduleReport(0);
      return;
    }
    this.opts.log.warn({ ev: 'gate.revoke.drain_timeout', client: p.clientId, revoke: p.revokeId, calls_left: left, ms: this.opts.revokeDrainTimeoutMs }, 'NFS server did not drain: fencing it');
    const ok = await this.fenceNfs(`revoke of ${p.clientId}: ${left} calls not answered in ${this.opts.revokeDrainTimeoutMs} ms`);
    if (!ok && this.revokes.has(p.revokeId) && !this.disposed) {
      p.timer = this.opts.clock.setTimeout(() => void this.drainTimedOut(p), this.opts.revokeDrainTimeoutMs);
    }
  }

  /** Runs the fence command; on success every connection opened before it started is dead. */
  private async fenceNfs(why: string): Promise<boolean> {
    if (!this.opts.fence.configured) return false;
    const r = await this.opts.fence.fence(why);
    this.opts.record({ ev: 'fence', ok: r.ok, started: r.startedAt, ms: Math.round(r.ms), why });
    if (this.fenceFailed !== !r.ok) {
      this.fenceFailed = !r.ok;
      this.scheduleReport(0); // the follower tells the master: no wait-out may count on this fence
    }
    if (!r.ok) return false;
    for (const c of [...this.live]) if (c.openedAt < r.startedAt && !c.drained) c.fenced();
    return true;
  }

  private armLeaseTimers(): void {
    const { clock, stopLeadMs, fenceLeadMs } = this.opts;
    if (this.stopTimer) clock.clearTimeout(this.stopTimer);
    if (this.fenceTimer) clock.clearTimeout(this.fenceTimer);
    const deadline = this.deadline;
    this.stopTimer = clock.setTimeout(() => this.atStopPoint(deadline), Math.max(0, deadline - stopLeadMs - clock.now()));
    this.fenceTimer = clock.setTimeout(() => void this.atFencePoint(deadline), Math.max(0, deadline - fenceLeadMs - clock.now()));
  }

  private atStopPoint(deadline: number): void {
    if (deadline !== this.deadline || this.disposed) return;
    // Timers can fire early after a stall: trust the clock, not the timer.
    const wait = deadline - this.opts.stopLeadMs - this.opts.clock.now();
    if (wait > 0) {
      this.stopTimer = this.opts.clock.setTimeout(() => this.atStopPoint(deadline), wait);
      return;
    }
    if (this.clients.size) this.stopServing('lease stop point passed without renewal');
    else this.scheduleReport(0);
  }

  private async atFencePoint(deadline: number): Promise<void> {
    if (deadline !== this.deadline || this.disposed) return;
    const wait = deadline - this.opts.fenceLeadMs - this.opts.clock.now();
    if (wait > 0) {
      this.fenceTimer = this.opts.clock.setTimeout(() => void this.atFencePoint(deadline), wait);
      return;
    }
    if (this.clients.size) this.stopServing('lease fence point passed without renewal');
    if (this.quiesced()) return;
    const calls = this.callsInFlight();
    this.opts.log.warn({ ev: 'gate.fence_point', calls_in_flight: calls }, 'lease ends with calls in flight: fencing the NFS server');
    const ok = await this.fenceNfs(`lease ends with ${calls} calls in flight`);
    // The master's wait-out ends at deadline + slack whether or not this
    // worked (it cannot hear of a failure while the follower is cut off): a
    // failed run is tried again at once, until one works, the calls drain,
    // or a renewal moves the deadline.
    if (ok || !this.opts.fence.configured || mutant('fence-point-no-retry') || deadline !== this.deadline || this.disposed) return;
    this.fenceTimer = this.opts.clock.setTimeout(() => void this.atFencePoint(deadline), FENCE_RETRY_MS);
  }

  private scheduleReport(inMs: number): void {
    if (!this.watcherId || this.disposed) return;
    if (this.reportTimer) this.opts.clock.clearTimeout(this.reportTimer);
    this.reportTimer = this.opts.clock.setTimeout(() => {
      this.reportTimer = undefined;
      this.sendReport();
      this.scheduleReport(this.reportIntervalMs);
    }, inMs);
  }

  private sendReport(): void | Promise<boolean> {
    const quiesced = this.quiesced();
    this.lastQuiesced = quiesced;
    this.reportSeq += 1;
    return this.opts.link.report({
      watcherId: this.watcherId,
      reportSeq: this.reportSeq,
      leaseDeadlineMonotonicMs: this.deadline,
      serving: this.serving(),
      callsInFlight: this.callsInFlight(),
      quiesced,
      fenceSeq: this.fenceSeq,
      stoppedCallsInFlight: this.stoppedCallsInFlight(),
      fenceConfigured: this.opts.fence.configured,
      fenceTimeoutMs: this.opts.fence.timeoutMs ?? 0,
      fenceFailed: this.fenceFailed,
      clientsInFlight: this.clientsInFlight(),
      final: this.stopping,
      draining: [...this.revokes.values()].map((p) => ({
        revokeId: p.revokeId, clientId: p.clientId, callsLeft: [...p.waiting].reduce((n, c) => n + c.inFlight, 0),
      })),
    });
  }

  /**
   * A graceful stop (issue 18 hole b): serve nothing more, then wait until
   * every stopped connection drained, at most `timeoutMs` (a stuck NFS
   * server; the lease's own fence point still runs meanwhile and ends the
   * wait if the lease is not renewed). Calls the NFS server still runs when
   * the process exits are what made the follower free their client too
   * early. Resolves with the calls still owed (0: drained).
   */
  stopAndDrain(timeoutMs: number): Promise<number> {
    this.stopping = true;
    this.stopServing('gate stopping');
    return new Promise((resolve) => {
      const done = () => {
        this.onQuiesced = undefined;
        this.opts.clock.clearTimeout(timer);
        resolve(this.quiesced() ? 0 : Math.max(1, this.stoppedCallsInFlight()));
      };
      const timer = this.opts.clock.setTimeout(done, timeoutMs);
      this.onQuiesced = done;
      if (this.quiesced()) done();
    });
  }

  /**
   * Issue 18 hole g: the last words of a graceful stop, sent now and awaited
   * before the stream closes. A layer that leaves after a report saying it
   * serves must mark its follower dirty (a serving layer may forward a call
   * the moment after it reported, so nothing proves it idle), which costs a
   * needless fence of the NFS server at the next revoke; a layer that left
   * right after reporting not serving, nothing in flight, proved it.
   */
  async finalReport(): Promise<boolean> {
    if (!this.watcherId || this.disposed) return false;
    if (this.reportTimer) this.opts.clock.clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    return (await this.sendReport()) === true;
  }

  dispose(): void {
    this.disposed = true;
    const { clock } = this.opts;
    for (const t of [this.stopTimer, this.fenceTimer, this.reportTimer]) if (t) clock.clearTimeout(t);
    for (const p of this.revokes.values()) if (p.timer) clock.clearTimeout(p.timer);
    this.stopServing('gate stopping');
  }
}
