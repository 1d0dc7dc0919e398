import { StaleReset } from './stale-reset';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { setIntervalOn, systemClock, type Clock } from '../common/clock';
import { normalizeIp } from '../common/address';
import { Aborted, InvalidArgument, NotFound, ResourceExhausted, Unavailable, toServiceError } from '../common/errors';
import { gateRules } from '../common/edge-rules';
import { loadOwnIdentity } from '../common/tls';
import { bindServer, createServer, type NfshaServer } from '../common/grpc-server';
import { KeyedMutex } from '../common/keyed-mutex';
import { healthRoute, serveHttpApi, type HttpApi } from '../common/http-api';
import { createLogger, type Logger } from '../common/log';
import { GATE_SERVICE, nfshaGrpc } from '../common/proto';
import { compareTokens, formatToken, type Token } from '../common/token';
import { parseMasterList } from '../common/master-endpoints';
import type { GateHandlers } from '../gen/nfsha/v1/Gate';
import type { AdmitReply } from '../gen/nfsha/v1/AdmitReply';
import type { FollowerStatusReply } from '../gen/nfsha/v1/FollowerStatusReply';
import type { Revoke__Output } from '../gen/nfsha/v1/Revoke';
import { Admissions } from './admissions';
import { mutant } from '../common/mutants';
import { Metrics } from '../common/metrics';
import type { Counter, Histogram } from 'prom-client';
import { FENCE_RETRY_MS, FenceCommand, fencingWord, type FenceResult } from '../common/fence-command';
import type { ProbeState } from '../common/hysteresis';
import type { SessionMasterClient } from '../common/proto';
import type { TimerHandle } from '../common/clock';
import type { NfsHealth as NfsHealthValue } from '../gen/nfsha/v1/NfsHealth';
import { GateHub, type RevokeOutcome } from './gate-hub';
import { NfsHealth, parseProbeTarget } from './nfs-health';
import { Lease, LeaseState } from './lease';
import { MasterSession } from './master-session';
import { DEFAULT_FOLLOWER_OPTIONS, type FollowerOptions } from './options';
import type { Fencing } from '../gen/nfsha/v1/Fencing';

/** A revoke whose client nothing proved stopped here (DESIGN §4, fail safe): held, not acked. */
interface HeldRevoke {
  clientId: string;
  token: Token;
  started: number;
  /** Ours (a client the new session did not adopt): nothing to ack, the client stays draining. */
  local: boolean;
  /** When it was held: a fence of the NFS server that started after this proves its calls stopped. */
  heldAt?: number;
}

/** How often the stale-segment reset rule is checked and, when changed or missing, installed again. */
const STALE_RESET_RECONCILE_MS = 10_000;

/** The local NFS server's fence (fence-command.ts, or the simulation's). */
export interface NfsFence {
  readonly configured: boolean;
  /** Longest a run may take (checked against the master's budget). */
  readonly timeoutMs?: number;
  fence(why: string): Promise<FenceResult>;
}

/** What the follower needs of its NFS health probe (nfs-health.ts, or the simulation's). */
export interface NfsHealthSource {
  readonly configured: boolean;
  readonly state: ProbeState;
  on(event: 'changed', listener: (state: ProbeState, down: string[]) => void): unknown;
  start(): void;
  stop(): void;
}

/** Injected parts, for tests and the simulation; production builds its own. */
export interface FollowerDeps {
  fence?: NfsFence;
  nfsHealth?: NfsHealthSource;
  /** How to reach a master candidate. */
  connect?: (address: string) => SessionMasterClient;
  random?: () => number;
  metrics?: Metrics;
}

/**
 * The Session Follower: holds the session with the master, admits clients for
 * the NFS layer only once the master granted them, relays revokes and acks,
 * and fences itself (drops every client) when its lease runs out.
 */
export class Follower {
  readonly lease: Lease;
  readonly session: MasterSession;
  readonly hub: GateHub;
  readonly admissions = new Admissions();
  readonly nfsHealth: NfsHealthSource;
  private readonly nfsFence: NfsFence;
  /** The nftables rule that resets rerouted hosts' stale connections; undefined when no interface is configured. */
  private readonly staleReset?: StaleReset;
  private fencePointTimer?: TimerHandle;
  /** The fence (GateFence seq) that ended the lease with this deadline early, if one did. */
  private endedByFence?: { deadline: number; seq: number };
  /**
   * Clients a fence dropped, listed as in flight in introductions until
   * every NFS layer carried that fence out or the lease it ended is over: a
   * layer that has not read the fence yet still serves them on that lease.
   */
  private fenceDropped?: { clients: Set<string>; deadline: number; seq: number };
  /** Fence points of leases a fence ended, by fence seq: a new session's lease does not move them. */
  private readonly endedFencePoints = new Map<number, TimerHandle>();
  /** When the latest fence run of the NFS server that worked started. */
  private nfsFencedOkFrom = -Infinity;
  private readonly mutex = new KeyedMutex();
  private highestEpoch = 0;

  /** The highest leader epoch this follower has seen (grants from older epochs are refused). */
  get seenEpoch(): number {
    return this.highestEpoch;
  }
  private server?: NfshaServer;
  private metricsServer?: { address: string; close(): Promise<void> };
  private httpApi?: HttpApi;

  /** The HTTPS JSON API's address, when --http-listen asked for one. */
  get httpAddress(): string | undefined {
    return this.httpApi?.address;
  }
  readonly metrics: Metrics;
  private readonly fences: Counter;
  private readonly admits: Counter;
  private readonly revokesHandled: Counter;
  private readonly refusedCalls: Counter;
  private readonly limitRefusals: Counter;
  private readonly nfsFences: Counter;
  private readonly revokeDrain: Histogram;
  private pendingAdmits = 0;
  /** Clients revoked whose NFS layers have not acked yet, with the token they were held under. */
  private readonly draining = new Map<string, Token>();
  /** Revoke ids being handled now (a master may send one again). */
  private readonly revokesInHand = new Set<string>();
  private fencedAtStart = false;
  private fenceCount = 0;
  private stopped = false;
  /** Stopping gracefully: keepalives say this server is leaving. */
  private leaving = false;
  /** Counts releases; when each client's latest began (an admit in flight across one asks again). */
  private releaseCounter = 0;
  private readonly releasedAt = new Map<string, number>();
  /** The last run of our own fence command failed (and none succeeded since). */
  private ownFenceFailed?: string;
  /**
   * Revokes not acked because nothing proves their calls stopped (a master's,
   * or `local` ones of clients a new session did not adopt, whose clients stay
   * draining); an operator's confirmed fence, or a later revoke of the same
   * client that proves it stopped, ends them.
   */
  private readonly heldRevokes = new Map<string, HeldRevoke>();
  private lastFencing = '';

  constructor(readonly opts: FollowerOptions, private readonly clock: Clock = systemClock, readonly log: Logger = createLogger('follower', { server: opts.serverId }), deps: FollowerDeps = {}) {
    this.metrics = deps.metrics ?? new Metrics('follower');
    this.fences = this.metrics.counter('nfsha_follower_fences_total', 'Times this follower fenced itself (dropped every client)');
    this.admits = this.metrics.counter('nfsha_follower_admits_total', 'Admit requests from the NFS layer by result', ['result']);
    this.revokesHandled = this.metrics.counter('nfsha_follower_revokes_total', 'Revokes from the master by outcome', ['outcome']);
    this.refusedCalls = this.metrics.counter('nfsha_follower_refused_calls_total', 'Gate API calls refused at the edge: no or wrong identity, or invalid input', ['method', 'code']);
    this.limitRefusals = this.metrics.counter('nfsha_follower_limit_refusals_total', 'Gate API calls refused because a limit was reached', ['limit']);
    this.nfsFences = this.metrics.counter('nfsha_follower_nfs_fences_total', 'Fence command runs against the local NFS server, by result', ['result']);
    this.revokeDrain = this.metrics.histogram('nfsha_follower_revoke_drain_seconds', 'From a revoke to its ack: the NFS layer stopped the client and its forwarded calls got their replies', [], [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5]);
    this.lease = new Lease(clock);
    this.hub = new GateHub(clock, opts.gateReportIntervalMs);
    if (opts.staleResetInterfaces.length) {
      this.staleReset = new StaleReset({ interfaces: opts.staleResetInterfaces, clientIp: opts.localClientIp, serviceIp: opts.serviceIp },
        { clock, log, reconcileMs: STALE_RESET_RECONCILE_MS });
    }
    this.nfsFence = deps.fence ?? new FenceCommand({ argv: opts.fenceCommand, timeoutMs: opts.fenceTimeoutMs, clock, log, what: 'nfs' });
    this.nfsHealth = deps.nfsHealth ?? new NfsHealth(opts.nfsProbe.map((t) => parseProbeTarget(t)!), { intervalMs: opts.nfsProbeIntervalMs, missesToFail: opts.nfsMissesToFail }, clock);
    this.nfsHealth.on('changed', (state, down) => {
      this.log[state === 'down' ? 'warn' : 'info']({ ev: 'nfs.health', state, down }, `NFS service ${state}`);
    });
    this.session = new MasterSession({
      masters: parseMasterList(opts.master),
      identity: { serverId: opts.serverId, hostId: opts.hostId, storageIp: opts.storageIp, mgmtIp: opts.mgmtIp },
      clock,
      lease: this.lease,
      log,
      ownedClients: () => this.claims(),
      clientsInFlight: () => this.clientsInFlight(),
      nfsUnaccounted: () => this.hub.dirty && !mutant('follower-intro-hides-unaccounted'),
      highestEpoch: () => this.highestEpoch,
      nfsHealth: () => this.nfsState(),
      nfsFencedAtStart: () => this.fencedAtStart,
      fencing: () => this.fencing(),
      leaving: () => this.leaving,
      tls: opts.tls,
      connect: deps.connect,
      random: deps.random,
    });
    this.metrics.gauge('nfsha_follower_lease_remaining_seconds', 'Time left on the session lease', [], (g) => g.set(this.lease.remainingMs() / 1000));
    this.metrics.gauge('nfsha_follower_clients', 'Clients this follower may serve now', [], (g) => g.set(this.admissions.list().length));
    this.metrics.gauge('nfsha_follower_nfs_watchers', 'NFS layers watching the gate stream', [], (g) => g.set(this.hub.size));
    this.metrics.gauge('nfsha_follower_fence_ready', '1 when this server can fence its NFS server (follower and every NFS layer), else 0', [], (g) => g.set(this.fencingNow().fencing === 'FENCING_READY' ? 1 : 0));
    this.metrics.gauge('nfsha_follower_held_revokes', 'Revokes not acked because nothing proves the NFS server stopped', [], (g) => g.set(this.heldRevokes.size));
    this.lease.on('renewed', (remainingMs) => {
      this.hub.broadcast({ lease: { remainingMs: Math.floor(remainingMs), deadlineMonotonicMs: this.lease.deadlineMs } });
      this.armFencePoint(this.lease.deadlineMs);
    });
    this.lease.on('fenced', (reason) => this.fence(reason));
    this.hub.onDirty = () => void this.fenceWhileDirty();
    // The lease's 'fenced' event fences the follower (once, however the lease ended).
    this.session.on('sessionGone', (reason) => this.lease.fence(reason));
    this.session.on('granted', ({ epoch, predecessorUnproven }) => {
      this.highestEpoch = Math.max(this.highestEpoch, epoch);
      if (predecessorUnproven && !this.hub.dirty) {
        // Nothing fenced what an earlier follower's NFS layers left in the
        // NFS server: unaccounted until a fence works or is confirmed.
        this.log.warn({ ev: 'follower.predecessor_unproven' }, 'an earlier follower of this server ran, and no fence since proves its NFS layers\' calls done: revokes are held until a fence works or an operator confirms one (nfsha fence-confirm)');
        this.hub.markUnaccounted();
      }
    });
    this.session.on('replaced', ({ sessionId, epoch, adopted }) => void this.onReplaced(sessionId, epoch, adopted));
    this.session.on('revoke', (r) => void this.onRevoke(r));
    this.session.on('fenceConfirmed', ({ operator, reason }) => this.onFenceConfirmed(operator, reason));
    if (!this.nfsFence.configured) {
      this.log.warn({ ev: 'follower.no_fence', explicit: opts.noFence }, 'running without a fence command: revoked clients whose calls do not drain are held until an operator confirms a fence (nfsha fence-confirm)');
    }
  }

  /**
   * Whether this server can prove its NFS server stopped (DESIGN §4): a fence
   * command here and at every NFS layer, each within the master's budget
   * (fence lead + the master's wait-out slack), none failing. Anything less
   * and the master holds a client rather than waiting out its holder.
   */
  fencing(): { fencing: Fencing; detail: string } {
    const f = this.fencingNow();
    const key = `${f.fencing} ${f.detail}`;
    if (key !== this.lastFencing) {
      this.lastFencing = key;
      this.log[f.fencing === 'FENCING_READY' ? 'info' : 'warn']({ ev: 'follower.fencing', fencing: f.fencing, detail: f.detail }, 'fencing state');
    }
    return f;
  }

  private fencingNow(): { fencing: Fencing; detail: string } {
    if (!this.nfsFence.configured) return { fencing: 'FENCING_NONE', detail: this.opts.noFence ? 'follower runs with --no-fence' : 'follower has no --fence-command' };
    if (this.ownFenceFailed) return { fencing: 'FENCING_FAILED', detail: `follower's fence command failed: ${this.ownFenceFailed}` };
    const slack = this.session.waitOutSlackMs;
    const budget = this.opts.fenceLeadMs + slack;
    const over = (ms: number) => slack > 0 && ms > budget;
    if (over(this.nfsFence.timeoutMs ?? 0)) return { fencing: 'FENCING_FAILED', detail: `follower's fence timeout ${this.nfsFence.timeoutMs} ms exceeds the budget of ${budget} ms (fence lead ${this.opts.fenceLeadMs} + master's wait-out slack ${slack})` };
    for (const l of this.hub.fencingReports()) {
      if (!l.report) return { fencing: 'FENCING_NONE', detail: `NFS layer ${l.name} has not reported yet` };
      if (!l.report.fenceConfigured) return { fencing: 'FENCING_NONE', detail: `NFS layer ${l.name} has no --fence-command` };
      if (l.report.fenceFailed) return { fencing: 'FENCING_FAILED', detail: `NFS layer ${l.name}'s fence command failed` };
      if (over(l.report.fenceTimeoutMs)) return { fencing: 'FENCING_FAILED', detail: `NFS layer ${l.name}'s fence timeout ${l.report.fenceTimeoutMs} ms exceeds the budget of ${budget} ms` };
    }
    return { fencing: 'FENCING_READY', detail: '' };
  }

  /**
   * An operator confirmed our NFS server stopped: what any NFS layer (gone or
   * here) forwarded before now cannot execute, so held revokes are acked.
   */
  private onFenceConfirmed(operator: string, reason: string): void {
    this.log.warn({ ev: 'follower.fence_confirmed', operator, why: reason, held: [...this.heldRevokes.values()].map((h) => h.clientId) }, 'operator confirmed the NFS server stopped');
    this.hub.nfsServerFenced();
    this.hub.broadcast({ nfsFenced: { reason: `confirmed by ${operator}: ${reason}` } });
    for (const [revokeId, h] of [...this.heldRevokes]) this.endHeld(revokeId, h);
  }

  /** A held revoke's client is proven stopped now: ack it to the master, or (ours) end its drain. */
  private endHeld(revokeId: string, h: HeldRevoke): void {
    if (!h.local) return this.ackRevoke(revokeId, h.clientId, h.started);
    this.heldRevokes.delete(revokeId);
    this.endDrain(h.clientId, h.token);
    this.log.info({ ev: 'revoke.local.ended', client: h.clientId, revoke: revokeId, ms: Math.round(this.clock.now() - h.started) }, 'held local revoke ended: the NFS server is proven stopped');
  }

  /**
   * What an introduction claims: the clients admitted, and those revoked but
   * still draining (their calls may still run here: a new master that did
   * not know of them could hand them away before the drain ends).
   */
  private claims(): Array<{ clientId: string; token: Token; addresses: string[] }> {
    const out = this.admissions.list();
    for (const [clientId, token] of this.draining) if (!out.some((c) => c.clientId === clientId)) out.push({ clientId, token, addresses: [] });
    return out;
  }

  /**
   * What an introduction lists as in flight here with no grant (issue 18
   * hole f, simulation seed 612946), whatever this follower forgot (its own
   * fence clears what drains; a restarted follower knows nothing): every
   * client an NFS layer's last report shows with calls in flight, and every
   * client whose revoke is held because nothing proved the NFS server
   * stopped (an NFS layer that left may have left calls there). The master
   * holds each here and revokes it, so it moves only once they are done.
   * Clients claimed with a grant are not listed again.
   */
  private clientsInFlight(): string[] {
    if (mutant('follower-claims-omit-inflight')) return [];
    const claimed = new Set(this.claims().map((c) => c.clientId));
    const out = new Set<string>(this.hub.clientsWithCallsInFlight());
    for (const h of this.heldRevokes.values()) out.add(h.clientId);
    for (const c of this.droppedByUnreadFence()) out.add(c);
    return [...out].filter((c) => !claimed.has(c));
  }

  /**
   * Campaign seed 488438426: a gate asleep through its session's
   * condemnation woke to the leases queued before the fence and served a
   * client it had admitted, while this follower, fenced, had introduced
   * itself to a new leader without that client, and the leader granted it
   * elsewhere. Until every layer read the fence (or the lease it ended is
   * over), what it dropped is listed as in flight: held here, revoked here.
   */
  private droppedByUnreadFence(): Iterable<string> {
    const d = this.fenceDropped;
    if (!d || mutant('follower-intro-omits-fence-dropped')) return [];
    if (this.clock.now() < d.deadline && !this.hub.fenceReadByAll(d.seq)) return d.clients;
    this.fenceDropped = undefined;
    return [];
  }

  private fence(reason: string): void {
    this.fences.inc();
    this.fenceCount += 1;
    const clients = new Set([...this.admissions.list().map((c) => c.clientId), ...this.draining.keys()]);
    // With the lease gone the fence point (deadline − E) covers what still drains.
    this.draining.clear();
    const dropped = this.admissions.clear();
    if (!mutant('follower-fenced-keeps-session')) this.session.forgetSession();
    const seq = this.hub.fence(reason);
    // A later fence's sequence covers an earlier one's (a layer reads them in order).
    const earlier = this.fenceDropped;
    if (earlier) for (const c of earlier.clients) clients.add(c);
    if (clients.size) this.fenceDropped = { clients, deadline: Math.max(this.lease.deadlineMs, earlier?.deadline ?? 0), seq };
    // The lease ended before its deadline: its NFS layers are judged by this fence.
    this.endedByFence = { deadline: this.lease.deadlineMs, seq };
    this.armEndedLeaseFencePoint(this.lease.deadlineMs, seq);
    this.log.warn({ ev: 'follower.fenced', why: reason, clients: dropped }, 'fenced: every client dropped');
  }

  /**
   * The master waits out the lease a fence ended (its deadline plus slack),
   * whatever session this follower opens next, so that lease's fence point
   * stays: at deadline − E, unless every NFS layer proved that nothing it
   * forwarded before the fence is still owed, fence the NFS server (again
   * after a failed run). A new session's renewals once took it away: a gate
   * asleep through the condemnation woke, carried the fence out with calls
   * at a hung NFS server, and was renewed at once, so nothing fenced them
   * before the client was granted elsewhere (simulation seed 86850814).
   */
  private armEndedLeaseFencePoint(deadline: number, seq: number): void {
    if (mutant('follower-ended-lease-fence-point-dropped') || deadline <= 0 || !this.nfsFence.configured) return;
    const at = deadline - this.opts.fenceLeadMs;
    const check = () => {
      this.endedFencePoints.delete(seq);
      if (this.stopped) return;
      const wait = at - this.clock.now();
      if (wait > 0) {
        this.endedFencePoints.set(seq, this.clock.setTimeout(check, wait));
        return;
      }
      // A run that started at the fence point or later stopped everything
      // forwarded under that lease (NFS layers stop forwarding at its stop
      // point, before it).
      if (this.nfsFencedOkFrom >= at || this.hub.drainedAfterFence(deadline, seq)) return;
      if (this.lease.deadlineMs === deadline) {
        // No new session yet: the lease's own fence point runs now; look
        // again soon, in case a new session renews before it is settled.
        this.endedFencePoints.set(seq, this.clock.setTimeout(check, FENCE_RETRY_MS));
        return;
      }
      void this.fenceNfsServer('a lease a fence ended reaches its fence point with calls it stopped still owed').then((ok) => {
        if (ok || !this.nfsFence.configured || this.stopped || this.endedFencePoints.has(seq)) return;
        this.endedFencePoints.set(seq, this.clock.setTimeout(check, FENCE_RETRY_MS));
      });
    };
    this.endedFencePoints.set(seq, this.clock.setTimeout(check, Math.max(0, at - this.clock.now())));
  }

  /**
   * NFS service health for the master: the NULL probes (with hysteresis) and
   * NFS layers that report; unspecified when no probe is configured.
   */
  nfsState(): NfsHealthValue {
    if (!this.nfsHealth.configured) return 'NFS_HEALTH_UNSPECIFIED';
    if (this.nfsHealth.state === 'down') return 'NFS_HEALTH_DOWN';
    if (this.nfsHealth.state === 'up' && this.hub.responsive(this.opts.gateSilentMs)) return 'NFS_HEALTH_UP';
    // No answer yet, or an NFS layer that stopped reporting (frozen).
    return this.nfsHealth.state === 'unknown' && this.lease.current === LeaseState.NoSession ? 'NFS_HEALTH_UNSPECIFIED' : 'NFS_HEALTH_DOWN';
  }

  /**
   * DESIGN §4: at lease deadline − E, unless every NFS layer confirmed it can
   * no longer reach the NFS server for that lease, fence the NFS server, so a
   * frozen NFS layer's calls cannot run after the master's wait-out ends.
   */
  private armFencePoint(deadline: number): void {
    if (this.fencePointTimer) this.clock.clearTimeout(this.fencePointTimer);
    const at = deadline - this.opts.fenceLeadMs;
    const check = () => {
      this.fencePointTimer = undefined;
      // Renewed since: a later fence point is armed. Early (timers may fire
      // early after a stall): wait the rest.
      if (this.lease.deadlineMs !== deadline) return;
      const wait = at - this.clock.now();
      if (wait > 0) {
        this.fencePointTimer = this.clock.setTimeout(check, wait);
        return;
      }
      const fenceSeq = this.endedByFence?.deadline === deadline ? this.endedByFence.seq : 0;
      if (this.hub.quiescedFor(deadline, fenceSeq)) return;
      void this.fenceNfsServer(`lease ends at its deadline without NFS layers confirming they stopped`).then((ok) => {
        // The master's wait-out ends at deadline + slack whether or not this
        // worked (it cannot hear of a failure while we are cut off), so a
        // failed run is tried again at once, until one works or a renewal
        // arms a later fence point.
        if (ok || !this.nfsFence.configured || mutant('fence-point-no-retry') || this.lease.deadlineMs !== deadline || this.fencePointTimer) return;
        this.fencePointTimer = this.clock.setTimeout(check, FENCE_RETRY_MS);
      });
    };
    this.fencePointTimer = this.clock.setTimeout(check, Math.max(0, at - this.clock.now()));
  }

  /** A fence that started after a revoke was held proves its calls stopped: the hold ends (acked, or the local drain ends). */
  private endHeldFencedBy(startedAt: number): void {
    if (mutant('follower-held-revoke-never-refenced')) return;
    for (const [id, h] of [...this.heldRevokes]) {
      if (this.heldRevokes.has(id) && h.heldAt !== undefined && h.heldAt <= startedAt) this.endHeld(id, h);
    }
  }

  private fencingHeld = false;

  /** Runs the fence again (every 200 ms) while revokes are held for want of one that worked. */
  private async fenceWhileHeld(): Promise<void> {
    if (this.fencingHeld) return;
    this.fencingHeld = true;
    try {
      while (this.heldRevokes.size && !this.stopped && this.nfsFence.configured) {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 4 * FENCE_RETRY_MS));
        if (!this.heldRevokes.size || this.stopped) break;
        await this.fenceNfsServer('revokes held until the NFS server is proven stopped');
      }
    } finally {
      this.fencingHeld = false;
    }
  }

  private fencingDirty = false;

  /**
   * An NFS layer left with calls unknown (a gate crashed): fence the NFS
   * server now, not at the next revoke or fence point, which this follower
   * may never reach (frozen, or the master waits its lease out meanwhile).
   * Failed runs are tried again while the hub stays dirty.
   */
  private async fenceWhileDirty(): Promise<void> {
    if (!this.nfsFence.configured || this.fencingDirty || mutant('follower-lazy-fence-on-lost-layer')) return;
    this.fencingDirty = true;
    try {
      while (this.hub.dirty && !this.stopped) {
        if (await this.fenceNfsServer('an NFS layer left with calls unknown')) break;
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 4 * FENCE_RETRY_MS));
      }
    } finally {
      this.fencingDirty = false;
    }
  }

  /** Runs the configured fence command on the local NFS server; true when it is confirmed gone. */
  private async fenceNfsServer(why: string): Promise<boolean> {
    if (!this.nfsFence.configured) {
      this.nfsFences.inc({ result: 'unconfigured' });
      this.log.warn({ ev: 'nfs.fence.unconfigured', why }, 'NFS server should be fenced, but no fence command is configured');
      return false;
    }
    const r = await this.nfsFence.fence(why);
    this.noteFenceRun(r);
    if (r.ok) {
      this.nfsFencedOkFrom = Math.max(this.nfsFencedOkFrom, r.startedAt);
      this.hub.nfsServerFenced();
      this.endHeldFencedBy(r.startedAt);
    }
    return r.ok;
  }

  private noteFenceRun(r: FenceResult): void {
    this.nfsFences.inc({ result: r.ok ? 'ok' : 'failed' });
    // Reported in the next keepalive: the master counts on no wait-out while it fails.
    this.ownFenceFailed = r.ok ? undefined : r.detail;
  }

  /**
   * A new session (a new leader, or a restarted master) adopted some of the
   * clients we serve; the rest are no longer ours: stop serving them now.
   */
  private async onReplaced(sessionId: string, epoch: number, adopted: string[]): Promise<void> {
    const keep = new Set(adopted);
    const dropped = this.admissions.list().filter((c) => !keep.has(c.clientId));
    this.log.info({ ev: 'session.replaced', session: sessionId, epoch, adopted, dropped: dropped.map((c) => c.clientId) }, 'new session: kept adopted clients');
    await Promise.all(dropped.map((c) => this.revokeLocally(`local-${sessionId}-${c.clientId}`, c.clientId, c.token)));
  }

  /**
   * Stops serving a client the new session did not adopt. Until its NFS
   * layers drained it, it is draining like a client the master revoked
   * (issue 18 hole c): claimed by every introduction and shown in status, so
   * a master that comes next keeps it here rather than ending its grace and
   * granting it elsewhere while its calls still run.
   */
  private async revokeLocally(revokeId: string, clientId: string, token: Token): Promise<void> {
    const started = this.clock.now();
    this.admissions.revoke(clientId, token);
    const tracked = !this.draining.has(clientId) && !mutant('follower-replaced-not-draining');
    if (tracked) this.draining.set(clientId, token);
    const why = 'not adopted by the new session';
    if (mutant('follower-replaced-no-fence')) {
      await this.hub.revoke(revokeId, clientId, why, token);
    } else if (!(await this.stopAtLayers(revokeId, clientId, why, token))) {
      // Issue 18 hole e: as for a master's revoke, an NFS layer that left
      // before acking (or a dirty hub) with no fence to prove the NFS
      // server stopped is a hold: the client stays draining, so every
      // introduction claims it, until a fence succeeds or is confirmed.
      this.holdRevoke(revokeId, { clientId, token, started, local: true });
      return;
    }
    if (tracked) this.endDrain(clientId, token);
  }

  /**
   * The drain of `clientId` under `token` ended: no longer draining, unless
   * the entry is another one now (the client was admitted and revoked again
   * meanwhile, or a fence of the follower cleared it).
   */
  private endDrain(clientId: string, token: Token): void {
    const now = this.draining.get(clientId);
    if (now && compareTokens(now, token) === 0) this.draining.delete(clientId);
  }

  private async onRevoke(r: Revoke__Output): Promise<void> {
    if (mutant('master-revoke-lost-with-stream')) return this.handleRevoke(r);
    // Issue 18 hole g: a master sends a revoke again when this session
    // resumes on a new stream (the first copy may have been lost with the
    // old one). A copy of one still being handled is dropped: its ack goes
    // out on the current stream when the drain ends. A copy of one handled
    // already is handled again, since that ack may be what was lost.
    if (this.revokesInHand.has(r.revokeId)) {
      this.log.info({ ev: 'revoke.duplicate', client: r.clientId, revoke: r.revokeId }, 'revoke already being handled: copy ignored');
      return;
    }
    this.revokesInHand.add(r.revokeId);
    try {
      await this.handleRevoke(r);
    } finally {
      this.revokesInHand.delete(r.revokeId);
    }
  }

  private async handleRevoke(r: Revoke__Output): Promise<void> {
    if (r.epoch < this.highestEpoch) {
      this.revokesHandled.inc({ outcome: 'stale_epoch' });
      this.log.warn({ ev: 'revoke.stale', client: r.clientId, revoke: r.revokeId, epoch: r.epoch, highest: this.highestEpoch }, 'revoke from an older epoch ignored');
      return;
    }
    const token = r.token ?? { epoch: r.epoch, sequence: 0 };
    const started = this.clock.now();
    const held = this.admissions.tokenOf(r.clientId);
    this.admissions.revoke(r.clientId, token);
    if (held && !this.draining.has(r.clientId)) this.draining.set(r.clientId, held);
    this.log.info({ ev: 'revoke.received', client: r.clientId, revoke: r.revokeId, token: formatToken(token), why: r.reason }, 'revoking client');
    // While the NFS layers drain, tell the master (DESIGN §4: a drain is not
    // a dead follower); only what they report counts, so a frozen NFS layer
    // sends nothing and the master condemns the session as it should.
    const stopped = await this.stopAtLayers(r.revokeId, r.clientId, r.reason, token, (left) => this.session.sendRevokeProgress(r.revokeId, left));
    if (!stopped && (this.nfsFence.configured || !mutant('follower-ack-lost-layer-without-fence'))) {
      // Fail safe (DESIGN §4): not acked; the master holds the client
      // until a fence succeeds or an operator confirms one.
      this.holdRevoke(r.revokeId, { clientId: r.clientId, token: held ?? token, started, local: false });
      return;
    }
    this.ackRevoke(r.revokeId, r.clientId, started);
  }

  /**
   * Stops `clientId` at every NFS layer and waits for their drains (each
   * acks once every call it forwarded has its reply); true once nothing the
   * client sent can still run in the NFS server. An NFS layer that left
   * before acking, or one that left earlier with calls unknown (the hub is
   * dirty), leaves that unproven until the NFS server is fenced: false when
   * no fence succeeded, and the caller holds. `progress` hears the calls
   * still owed while the layers drain.
   */
  private async stopAtLayers(revokeId: string, clientId: string, reason: string, token: Token, progress?: (callsLeft: number) => void): Promise<boolean> {
    const timer = progress && setIntervalOn(this.clock, this.hub.reportIntervalMs, () => {
      const left = this.hub.progress(revokeId, this.opts.gateSilentMs);
      if (left !== undefined) progress(left);
    });
    let outcome: RevokeOutcome;
    try {
      outcome = await this.hub.revoke(revokeId, clientId, reason, token);
    } finally {
      timer?.stop();
    }
    if (outcome !== 'lost' && !this.hub.dirty) return true;
    // An NFS layer went away without acking: what it forwarded is unknown.
    return this.fenceNfsServer(`revoke of ${clientId}: an NFS layer left before acking`);
  }

  private holdRevoke(revokeId: string, h: HeldRevoke): void {
    this.revokesHandled.inc({ outcome: 'unconfirmed' });
    this.heldRevokes.set(revokeId, { ...h, heldAt: this.clock.now() });
    // With a fence command, the hold lasts only until a run works: keep trying.
    if (this.nfsFence.configured && !mutant('follower-held-revoke-never-refenced')) void this.fenceWhileHeld();
    this.log.error({ ev: 'revoke.unconfirmed', client: h.clientId, revoke: revokeId, local: h.local, fence: this.nfsFence.configured ? 'failed' : 'none' }, h.local
      ? 'could not confirm the NFS server stopped: client kept draining (claimed) until a fence succeeds or is confirmed'
      : 'could not confirm the NFS server stopped: not acking (held until a fence succeeds or is confirmed)');
  }

  private ackRevoke(revokeId: string, clientId: string, started: number): void {
    this.heldRevokes.delete(revokeId);
    this.draining.delete(clientId);
    this.session.sendRevokeAck(revokeId);
    this.revokeDrain.observe((this.clock.now() - started) / 1000);
    this.revokesHandled.inc({ outcome: 'acked' });
    this.log.info({ ev: 'revoke.acked', client: clientId, revoke: revokeId, ms: Math.round(this.clock.now() - started) }, 'revoke acknowledged to master');
    // What proved this client stopped proves it for its revokes still held.
    for (const [id, h] of [...this.heldRevokes]) if (h.clientId === clientId && this.heldRevokes.has(id)) this.endHeld(id, h);
  }

  /** Admits a connection from `address` once the master granted its client here. */
  async admit(address: string): Promise<AdmitReply> {
    const ip = normalizeIp(address);
    if (!ip) throw new InvalidArgument(`client address ${JSON.stringify(address)} is not an IP address`);
    const key = this.admissions.clientOf(ip) ?? `addr:${ip}`;
    return this.mutex.run(key, async () => {
      for (let attempt = 0; ; attempt++) {
        this.requireLive();
        // Nothing could revoke a client admitted for an NFS layer that does not watch.
        if (this.hub.size === 0) throw new Unavailable('no NFS layer watches the revoke stream');
        const known = this.admissions.clientOf(ip);
        const held = known ? this.admissions.tokenOf(known) : undefined;
        if (known && held) return this.admitReply(known, held);
        const sessionId = this.session.currentSessionId;
        const releasesBefore = this.releaseCounter;
        let reply;
        try {
          reply = await this.session.login(ip, this.opts.admitTimeoutMs);
        } catch (err) {
          const e = err as grpc.ServiceError;
          throw Object.assign(new Unavailable(`login at master failed: ${e.details ?? e.message}`), { code: e.code ?? grpc.status.UNAVAILABLE });
        }
        const token = reply.token ?? { epoch: 0, sequence: 0 };
        this.requireGrantHolds(sessionId, token);
        // A release of this client that began after our login went out may
        // have logged it out at the master after the master answered us
        // ("already owned"): granting now would serve a client the master
        // lists as free. Ask again.
        const clientId = reply.clientId;
        const stale = clientId === key
          ? (this.releasedAt.get(clientId) ?? 0) > releasesBefore
          : await this.mutex.run(clientId, async () => (this.releasedAt.get(clientId) ?? 0) > releasesBefore);
        if (stale) {
          if (attempt >= 3) throw new Unavailable(`${clientId} is being released; retry`);
          continue;
        }
        // Waiting for the client's lock above may have taken a while (a
        // release or a revoke of it held the lock): what was checked before
        // may no longer hold (simulation seeds 7651 and 13424: a grant of a
        // session and epoch the follower had since left was admitted).
        if (clientId !== key && !mutant('follower-grant-after-lock-wait-unchecked')) this.requireGrantHolds(sessionId, token);
        if (!this.admissions.grant(ip, clientId, token)) {
          throw new Aborted(`client ${clientId} was revoked while its login was in flight`);
        }
        const current = this.admissions.tokenOf(clientId) ?? token;
        this.log.info({ ev: 'client.admitted', client: clientId, address: ip, token: formatToken(current), revoked: reply.revoked }, 'client admitted');
        return this.admitReply(clientId, current);
      }
    });
  }

  /**
   * A login's grant may still be used: the session it was asked in is
   * current (lost, or a new one introduced meanwhile, and the grant belongs
   * to a session the master may not know), the lease is live, and no newer
   * epoch was seen since (a deposed master answered).
   */
  private requireGrantHolds(sessionId: string, token: Token): void {
    if (this.session.currentSessionId !== sessionId || this.session.isIntroducing) throw new Unavailable('session changed during login');
    this.requireLive();
    if (token.epoch < this.highestEpoch) {
      throw new Aborted(`grant from epoch ${token.epoch} is older than epoch ${this.highestEpoch}: a deposed master answered`);
    }
  }

  private requireLive(): void {
    const st = this.lease.current;
    if (st !== LeaseState.Live) throw new Unavailable(st === LeaseState.Fenced ? 'fenced: no live session with the master' : 'no session with the master yet');
  }

  private admitReply(clientId: string, token: { epoch: number; sequence: number }): AdmitReply {
    return {
      clientId, epoch: token.epoch, sequence: token.sequence,
      leaseRemainingMs: Math.floor(this.lease.remainingMs()),
      leaseDeadlineMonotonicMs: this.lease.isLive() ? this.lease.deadlineMs : 0,
      admissionSeq: this.admissions.admitted(clientId),
    };
  }

  /**
   * The NFS layer closed the client's last connection: log it out, unless the
   * client was admitted again after the admissions the release covers (a
   * connection from a new address the NFS layer had not seen admitted yet).
   */
  async release(clientId: string, upToSeq: number): Promise<boolean> {
    return this.mutex.run(clientId, async () => {
      const last = this.admissions.lastAdmissionOf(clientId);
      if ((last > upToSeq || (upToSeq === 0 && last > 0)) && !mutant('follower-release-ignores-newer-admission')) {
        this.log.info({ ev: 'client.release.kept', client: clientId, released_up_to: upToSeq, last_admission: last }, 'release covers an older admission: client kept');
        return false;
      }
      if (this.hub.dirty && !mutant('follower-release-while-dirty')) {
        // Issue 18 hole b: an NFS layer left (a gate process died) while it
        // may have had calls in flight, and nothing fenced the NFS server
        // since: they may still sit in it. Logged out, the client could be
        // granted elsewhere with no revoke; kept, a login elsewhere revokes
        // it here, and the revoke fences the NFS server before its ack.
        this.log.warn({ ev: 'client.release.held', client: clientId }, 'release refused: an NFS layer left with calls unknown and the NFS server was not fenced since: client kept');
        return false;
      }
      const token = this.admissions.tokenOf(clientId);
      if (!this.admissions.release(clientId)) return false;
      this.releasedAt.set(clientId, ++this.releaseCounter);
      try {
        await this.session.logout(clientId, token, this.opts.logoutTimeoutMs);
        this.log.info({ ev: 'client.released', client: clientId, token: token && formatToken(token) }, 'client logged out');
      } catch (err) {
        // Still owned at the master; the next login elsewhere revokes it here,
        // and we hold no connection for it, so the ack is immediate.
        this.log.warn({ ev: 'client.logout.failed', client: clientId, err: (err as Error).message }, 'logout failed');
      }
      return true;
    });
  }

  /** Clients whose revokes this follower holds until a fence proves their calls stopped. */
  heldRevokeClients(): string[] {
    return [...new Set([...this.heldRevokes.values()].map((h) => h.clientId))];
  }

  /** This follower's own view (Gate/Status, and GET /v1/status on its HTTPS listener). */
  status(): FollowerStatusReply {
    const nfs = this.nfsState();
    const fencing = this.fencingNow();
    return {
      serverId: this.opts.serverId,
      hostId: this.opts.hostId,
      sessionId: this.session.currentSessionId,
      epoch: this.highestEpoch,
      lease: ({ [LeaseState.Live]: 'live', [LeaseState.Fenced]: 'fenced', [LeaseState.NoSession]: 'none' } as const)[this.lease.current],
      leaseRemainingMs: Math.floor(this.lease.remainingMs()),
      master: this.session.endpoints.current,
      clients: this.admissions.list().map((c) => ({ clientId: c.clientId, epoch: c.token.epoch, sequence: c.token.sequence })),
      nfs: nfs === 'NFS_HEALTH_UP' ? 'up' : nfs === 'NFS_HEALTH_DOWN' ? 'down' : '',
      nfsLayers: this.hub.layers(),
      draining: [...this.draining.keys()],
      fences: this.fenceCount,
      fencing: fencingWord(fencing.fencing),
      fencingDetail: fencing.detail,
    };
  }

  handlers(): GateHandlers {
    return {
      Admit: (call, cb) => {
        if (this.pendingAdmits >= this.opts.maxPendingAdmits) {
          this.limitRefusals.inc({ limit: 'pending_admits' });
          return cb(toServiceError(new ResourceExhausted(`${this.pendingAdmits} admits already wait for the master (limit ${this.opts.maxPendingAdmits})`, 'pending_admits')));
        }
        this.pendingAdmits++;
        this.admit(call.request.clientAddress).finally(() => this.pendingAdmits--).then(
          (r) => { this.admits.inc({ result: 'admitted' }); cb(null, r); },
          (e) => { this.admits.inc({ result: 'refused' }); cb(toServiceError(e)); },
        );
      },
      WatchRevokes: (call) => {
        if (this.hub.size >= this.opts.maxGateWatchers) {
          this.limitRefusals.inc({ limit: 'gate_watchers' });
          return void call.emit('error', toServiceError(new ResourceExhausted(`${this.hub.size} NFS layers already watch this follower (limit ${this.opts.maxGateWatchers})`, 'gate_watchers')));
        }
        const initial = this.lease.isLive()
          ? { lease: { remainingMs: Math.floor(this.lease.remainingMs()), deadlineMonotonicMs: this.lease.deadlineMs } }
          : { fence: { reason: 'no live session', seq: this.hub.currentFenceSeq } };
        this.hub.add(call, initial);
        this.log.info({ ev: 'gate.watching', watcher: call.request.watcher }, 'NFS layer watching');
      },
      AckRevoke: (call, cb) => cb(null, { known: this.hub.ack(call.request.revokeId) }),
      Report: (call, cb) => {
        if (!this.hub.report(call.request)) return cb(toServiceError(new NotFound(`unknown watcher ${call.request.watcherId}`)));
        cb(null, {});
      },
      Release: (call, cb) => {
        this.release(call.request.clientId, call.request.releasedUpTo).then((released) => cb(null, { released }), (e) => cb(toServiceError(e)));
      },
      Status: (_call, cb) => cb(null, this.status()),
    };
  }

  /**
   * Starts the session and the NFS probe without a gRPC server (the
   * simulation serves handlers() itself). A new follower process first fences
   * its NFS server: an earlier follower of this server (killed, or frozen and
   * replaced) may have left calls in it, and with that fence the master need
   * not fence or wait out the earlier follower's sessions.
   */
  async run(): Promise<void> {
    this.nfsHealth.start();
    await this.staleReset?.start();
    if (this.nfsFence.configured) {
      const r = await this.nfsFence.fence('follower start: whatever an earlier follower of this server left in flight');
      this.fencedAtStart = r.ok;
      this.noteFenceRun(r);
      // Unproven: whatever an earlier follower's NFS layers left in the NFS
      // server is unaccounted for, as if a layer had left with calls unknown:
      // revokes fence first (and hold while fences fail), introductions say
      // so, and the fence is tried again until it works (simulation seed
      // 352024172 and its recipe follower-and-gate-die-fence-broken).
      if (!r.ok && !mutant('follower-start-fence-failure-forgotten')) this.hub.markUnaccounted();
    }
    if (!this.stopped) this.session.start();
  }

  async start(): Promise<string> {
    const { tls, serverId } = this.opts;
    // A master address this follower may not dial is a configuration error now, not later.
    this.session.endpoints.prepare();
    if (!tls.insecure) {
      loadOwnIdentity(tls.dir, ['follower'], serverId);
    }
    const { server, health } = createServer({
      services: [GATE_SERVICE],
      maxMessageBytes: this.opts.maxMessageBytes,
      edge: {
        rules: gateRules(serverId),
        insecure: tls.insecure === true,
        refused: (method, code) => this.refusedCalls.inc({ method, code: grpc.status[code] }),
      },
    });
    const handlers = this.handlers();
    server.addService(nfshaGrpc().Gate.service, handlers);
    if (this.opts.gateListen.startsWith('unix:')) {
      const file = this.opts.gateListen.slice(5);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.rmSync(file, { force: true });
    }
    this.server = await bindServer(server, health, this.opts.gateListen, tls);
    health.setStatus(GATE_SERVICE, 'SERVING');
    void this.run().catch((err: Error) => this.log.error({ ev: 'follower.run.failed', err: err.message }, 'could not start the session'));
    this.metrics.watchCertificate(this.opts.tls);
    if (this.opts.metricsListen) this.metricsServer = await this.metrics.serve(this.opts.metricsListen);
    if (this.opts.httpListen) {
      this.httpApi = await serveHttpApi({
        listen: this.opts.httpListen, tls, rules: gateRules(serverId), maxBodyBytes: this.opts.maxMessageBytes, log: this.log,
        refused: (method, code) => this.refusedCalls.inc({ method, code: grpc.status[code] }),
        routes: [
          { method: 'GET', path: '/v1/status', grpcMethod: '/nfsha.v1.Gate/Status', request: 'nfsha.v1.FollowerStatusRequest', response: 'nfsha.v1.FollowerStatusReply', unary: handlers.Status as never },
          healthRoute(health),
        ],
      });
    }
    this.log.info({ ev: 'follower.started', gate: this.server.address, master: this.opts.master, metrics: this.metricsServer?.address, http: this.httpApi?.address }, 'follower running');
    return this.server.address;
  }

  /**
   * Stops after moving this server's hosts away: keepalives say the server
   * is leaving (agents move its hosts at once, each login elsewhere revokes
   * here, drains and acks), and the follower waits until it holds no client
   * (bounded by gracefulStopMs), or until its session is gone (nothing can
   * move then). A host that cannot move is logged, and the stop goes on as
   * an ungraceful one would: its next login elsewhere waits the lease out.
   */
  async stopGracefully(): Promise<void> {
    const limitMs = this.opts.gracefulStopMs;
    if (limitMs > 0 && !this.stopped && this.admissions.list().length > 0 && this.lease.isLive() && this.session.streaming) {
      const started = this.clock.now();
      this.leaving = true;
      this.session.keepaliveNow();
      const clients = this.admissions.list().map((c) => c.clientId);
      this.log.warn({ ev: 'follower.stopping', clients, limit_ms: limitMs }, 'stopping gracefully: this server is listed leaving until its hosts moved away');
      while (this.admissions.list().length > 0 && this.lease.isLive() && this.session.streaming && this.clock.now() - started < limitMs) {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 100));
      }
      const left = this.admissions.list().map((c) => c.clientId);
      if (left.length) {
        this.log.warn({ ev: 'follower.stop.unmoved', clients: left, waited_ms: Math.round(this.clock.now() - started), why: this.lease.isLive() && this.session.streaming ? `not moved within ${limitMs} ms` : 'no master to move them (session stream or lease lost)' }, 'stopping with hosts still here: their next login elsewhere waits this lease out');
      } else {
        this.log.info({ ev: 'follower.stop.moved', clients, waited_ms: Math.round(this.clock.now() - started) }, 'every host moved away');
      }
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.session.stop();
    this.nfsHealth.stop();
    this.staleReset?.stop();
    if (this.fencePointTimer) this.clock.clearTimeout(this.fencePointTimer);
    for (const t of this.endedFencePoints.values()) this.clock.clearTimeout(t);
    this.lease.dispose();
    this.hub.endAll();
    await this.metricsServer?.close();
    await this.httpApi?.close();
    await this.server?.close();
  }
}

export function createFollower(partial: Partial<FollowerOptions> & { serverId: string }, clock?: Clock, log?: Logger, deps?: FollowerDeps): Follower {
  return new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, ...partial }, clock, log, deps);
}
