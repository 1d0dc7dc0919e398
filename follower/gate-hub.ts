import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/clock';
import { mutant } from '../common/mutants';
import type { GateCommand } from '../gen/nfsha/v1/GateCommand';
import type { GateReport__Output } from '../gen/nfsha/v1/GateReport';
import type { NfsLayerInfo } from '../gen/nfsha/v1/NfsLayerInfo';
import type { WatchRevokesRequest__Output } from '../gen/nfsha/v1/WatchRevokesRequest';

type WatchCall = grpc.ServerWritableStream<WatchRevokesRequest__Output, GateCommand>;

interface Watcher {
  call: WatchCall;
  name: string;
  since: number;
  /** The hub's fence seq when it joined: a layer that joins later stopped all it had forwarded when its old stream ended. */
  joinedAtFenceSeq: number;
  reportAt?: number;
  report?: GateReport__Output;
}

interface PendingRevoke {
  waiting: Set<number>;
  done: (outcome: RevokeOutcome) => void;
  lost: boolean;
}

/**
 * acked: every NFS layer acked (each drained its calls); none: no NFS layer
 * was watching; lost: an NFS layer went away before acking, so what it had
 * forwarded is unknown (the caller fences the NFS server before moving on).
 */
export type RevokeOutcome = 'acked' | 'none' | 'lost';

/**
 * The NFS layers watching this follower (WatchRevokes streams): broadcasts
 * lease renewals, revokes and fences, gathers revoke acks and the NFS
 * layers' reports (drain progress, quiescence, liveness).
 */
export class GateHub {
  private readonly watchers = new Map<number, Watcher>();
  private readonly pending = new Map<string, PendingRevoke>();
  private nextWatcher = 1;
  private fenceSeq = 0;
  /**
   * An NFS layer left while it may have had calls in flight: until the NFS
   * server is fenced, nothing says those calls are done.
   */
  private unaccounted = false;

  /** Called when the hub turns dirty: an NFS layer left with calls unknown, or (markUnaccounted) calls no layer here knows of. */
  onDirty?: (cause: 'layer-left' | 'unaccounted') => void;

  constructor(private readonly clock: Clock, readonly reportIntervalMs = 250) {}

  get size(): number {
    return this.watchers.size;
  }

  /** True while an NFS layer that left may have left calls behind (cleared by a fence of the NFS server). */
  get dirty(): boolean {
    return this.unaccounted;
  }

  /**
   * Calls may sit in the NFS server that no NFS layer here accounts for (a
   * new follower whose start fence failed: its predecessor's layers may
   * have died with calls there): dirty until a fence works.
   */
  markUnaccounted(): void {
    this.unaccounted = true;
    this.onDirty?.('unaccounted');
  }

  nfsServerFenced(): void {
    this.unaccounted = false;
  }

  add(call: WatchCall, initial: GateCommand): number {
    const id = this.nextWatcher++;
    this.watchers.set(id, { call, name: call.request.watcher, since: this.clock.now(), joinedAtFenceSeq: this.fenceSeq });
    const gone = () => this.remove(id);
    call.on('cancelled', gone);
    call.on('close', gone);
    call.on('error', gone);
    call.write({ welcome: { watcherId: id, reportIntervalMs: this.reportIntervalMs } });
    call.write(initial);
    return id;
  }

  private remove(id: number): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.watchers.delete(id);
    const r = w.report;
    // A layer whose last report said it serves may have forwarded a call the
    // moment after (reports come every 250 ms; a call needs no admit), so an
    // idle-looking serving layer is not proven idle. A layer that stops
    // gracefully sends a final report (not serving, nothing in flight)
    // before it leaves (GateCore.finalReport), and that one is trusted.
    // Only a final report proves it: a layer that reported "not serving" may
    // have been renewed and forwarded a call before its next report (found
    // by the swarm: a gate killed that way left a call at a hung server).
    const proven = r && (r.final || mutant('hub-trusts-idle-report')) && !r.serving && r.callsInFlight === 0 && r.stoppedCallsInFlight === 0;
    if (!proven) {
      this.unaccounted = true;
      this.onDirty?.('layer-left');
    }
    for (const p of new Set(this.pending.values())) {
      if (p.waiting.delete(id)) {
        p.lost = true;
        if (p.waiting.size === 0) p.done('lost');
      }
    }
  }

  broadcast(cmd: GateCommand): void {
    for (const w of this.watchers.values()) w.call.write(cmd);
  }

  /** Tells every NFS layer to drop every client; returns the fence's sequence number. */
  fence(reason: string): number {
    this.fenceSeq += 1;
    this.broadcast({ fence: { reason, seq: this.fenceSeq } });
    return this.fenceSeq;
  }

  get currentFenceSeq(): number {
    return this.fenceSeq;
  }

  /** Sends a revoke to every watcher; resolves when all have acked or left. */
  revoke(revokeId: string, clientId: string, reason: string, token: { epoch: number; sequence: number }): Promise<RevokeOutcome> {
    return new Promise((resolve) => {
      if (this.watchers.size === 0) return resolve('none');
      const waiting = new Set(this.watchers.keys());
      const keys = [...waiting].map((w) => `${revokeId}.${w}`);
      const pending: PendingRevoke = {
        waiting,
        lost: false,
        done: (outcome) => { for (const k of keys) this.pending.delete(k); resolve(outcome); },
      };
      for (const k of keys) this.pending.set(k, pending);
      for (const w of waiting) {
        this.watchers.get(w)!.call.write({ revoke: { revokeId: `${revokeId}.${w}`, clientId, reason, epoch: token.epoch, sequence: token.sequence } });
      }
    });
  }

  /** An NFS layer's ack of a per-watcher revoke id; false when unknown. */
  ack(gateRevokeId: string): boolean {
    const p = this.pending.get(gateRevokeId);
    if (!p) return false;
    this.pending.delete(gateRevokeId);
    const watcher = Number(gateRevokeId.slice(gateRevokeId.lastIndexOf('.') + 1));
    if (p.waiting.delete(watcher) && p.waiting.size === 0) p.done(p.lost ? 'lost' : 'acked');
    return true;
  }

  /** An NFS layer's report; false for an unknown watcher id. */
  report(r: GateReport__Output): boolean {
    const w = this.watchers.get(r.watcherId);
    if (!w) return false;
    // A late or retried copy of an older report must not undo a newer one
    // (a final report overwritten by an earlier periodic one made a clean
    // graceful stop look dirty: found by the simulation, seed 81 of the
    // gate-graceful-restart faults).
    const last = w.report?.reportSeq ?? 0;
    if (r.reportSeq > 0 && r.reportSeq <= last && !mutant('hub-takes-stale-report')) return true;
    w.report = r;
    w.reportAt = this.clock.now();
    return true;
  }

  /**
   * Calls still owed for a revoke, from the NFS layers' latest reports, when
   * every layer it waits for reported within `freshMs`; undefined when one is
   * silent (a frozen NFS layer must not keep the session alive by proxy).
   */
  progress(revokeId: string, freshMs: number): number | undefined {
    const now = this.clock.now();
    let left = 0;
    for (const [key, p] of this.pending) {
      if (!key.startsWith(`${revokeId}.`)) continue;
      const id = Number(key.slice(revokeId.length + 1));
      if (!p.waiting.has(id)) continue;
      const w = this.watchers.get(id);
      if (!w?.reportAt || now - w.reportAt > freshMs) return undefined;
      left += w.report!.draining.find((d) => d.revokeId === key)?.callsLeft ?? 0;
    }
    return left;
  }

  /** Every watcher reported within `silentMs` (and there is one). */
  responsive(silentMs: number): boolean {
    if (!this.watchers.size) return false;
    const now = this.clock.now();
    for (const w of this.watchers.values()) {
      const last = w.reportAt ?? w.since;
      if (now - last > silentMs) return false;
    }
    return true;
  }

  /**
   * Nothing any NFS layer forwarded under the lease ending at `deadline`
   * can still reach or run in the NFS server: each reported, after the stop,
   * no call owed on stopped connections, and either that it stopped serving
   * for this deadline or that it carried out fence `fenceSeq`.
   */
  quiescedFor(deadline: number, fenceSeq: number): boolean {
    if (this.unaccounted) return false;
    for (const w of this.watchers.values()) {
      const r = w.report;
      if (!r || r.stoppedCallsInFlight > 0) return false;
      const stoppedForLease = !r.serving && r.callsInFlight === 0 && r.leaseDeadlineMonotonicMs >= deadline;
      let carriedOutFence = fenceSeq > 0 && r.fenceSeq >= fenceSeq;
      // Issue 18 hole a: having seen the fence does not mean having stopped
      // (a late Admit reply once lifted it): it must also say it is not
      // serving and has nothing in flight.
      if (!mutant('gate-late-admit-unfences')) carriedOutFence &&= !r.serving && r.callsInFlight === 0;
      if (!stoppedForLease && !carriedOutFence) return false;
    }
    return true;
  }

  /**
   * Nothing forwarded under the lease that fence `fenceSeq` ended (at
   * `deadline`) is still owed, though a new session may have renewed the
   * NFS layers since: each reported no call owed on stopped connections
   * after it stopped everything of that lease, by carrying the fence out
   * (and not serving, or serving only on a newer lease), by stopping for
   * that lease, or by joining after the fence (on a new stream: what it had
   * forwarded stopped when its old one ended, and counts as stopped calls).
   */
  drainedAfterFence(deadline: number, fenceSeq: number): boolean {
    if (this.unaccounted) return false;
    for (const w of this.watchers.values()) {
      const r = w.report;
      if (!r || r.stoppedCallsInFlight > 0) return false;
      const renewedPast = r.leaseDeadlineMonotonicMs > deadline;
      const idle = !r.serving && r.callsInFlight === 0;
      const carriedOutFence = r.fenceSeq >= fenceSeq && (renewedPast || idle);
      const stoppedForLease = idle && r.leaseDeadlineMonotonicMs >= deadline;
      if (!carriedOutFence && !stoppedForLease && w.joinedAtFenceSeq < fenceSeq) return false;
    }
    return true;
  }

  /** Every watching NFS layer read fence `seq` (reported it, or joined after it). */
  fenceReadByAll(seq: number): boolean {
    for (const w of this.watchers.values()) {
      if (w.joinedAtFenceSeq < seq && (w.report?.fenceSeq ?? 0) < seq) return false;
    }
    return true;
  }

  /**
   * Clients with calls in flight at a watching NFS layer, by its latest
   * report: revokes it still drains, and connections it reports with calls
   * owed. What the follower remembers plays no part (issue 18 hole f).
   */
  clientsWithCallsInFlight(): Set<string> {
    const out = new Set<string>();
    for (const w of this.watchers.values()) {
      for (const d of w.report?.draining ?? []) if (d.callsLeft > 0) out.add(d.clientId);
      for (const c of w.report?.clientsInFlight ?? []) if (c.calls > 0) out.add(c.clientId);
    }
    return out;
  }

  /** Each watching NFS layer's name and latest report (undefined before its first), for the fencing state. */
  fencingReports(): Array<{ name: string; report?: GateReport__Output }> {
    return [...this.watchers.values()].map((w) => ({ name: w.name, report: w.report }));
  }

  /** The NFS layers watching now, for status. */
  layers(): NfsLayerInfo[] {
    const now = this.clock.now();
    return [...this.watchers].map(([id, w]) => ({
      watcherId: id,
      name: w.name,
      serving: w.report?.serving ?? false,
      callsInFlight: w.report?.callsInFlight ?? 0,
      sinceReportMs: Math.max(0, Math.round(now - (w.reportAt ?? w.since))),
    }));
  }

  endAll(): void {
    for (const w of this.watchers.values()) w.call.end();
    this.watchers.clear();
  }
}
