import * as fs from 'node:fs';
import type { GateEvent } from '../../follower/gate-core';
import { completeLines } from './log-lines';

/**
 * An interval in which one gate served one client: from its admission until
 * it could no longer forward (dropped, or its lease's stop point), extended
 * until every call it had forwarded was answered or its NFS server was
 * fenced (DESIGN §4: requests, not only connections).
 */
export interface Admission {
  gate: string;
  client: string;
  /** The host the client is (by host identity, not the client-id string). */
  host: string;
  from: number;
  /** When it stopped forwarding: min(drop, the lease's stop point). Infinity while admitted. */
  admittedUntil: number;
  /** When its last forwarded call was answered or killed. Infinity while unknown. */
  to: number;
  dropWhy?: string;
  /** Calls in flight when it was dropped. */
  pending?: number;
}

/**
 * An NFS server confirmed gone: every call sent to it before `started` can
 * no longer run after `t`. `whole`: the whole SCVM (gate included) was
 * killed, so nothing of that gate runs or serves after `t`.
 */
export interface NfsFenceMark {
  gate: string;
  started: number;
  t: number;
  whole?: boolean;
}

export function readGateEvents(files: string[]): GateEvent[] {
  const events: GateEvent[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    // A gate may be appending its last event right now: only whole lines.
    for (const line of completeLines(fs.readFileSync(f, 'utf8'))) if (line.trim()) events.push(JSON.parse(line) as GateEvent);
  }
  return events.sort((a, b) => a.t - b.t);
}

export interface ServiceOptions {
  /** The host a client id stands for on a gate; default: the id itself. */
  hostOf?: (clientId: string, gate: string) => string;
  /** NFS server fences besides those in the gates' own logs (e.g. a follower's, or the master's fence agent). */
  fences?: NfsFenceMark[];
}

/** Turns gate events into service intervals per gate and client. */
export function admissions(events: GateEvent[], opts: ServiceOptions = {}): Admission[] {
  const hostOf = opts.hostOf ?? ((c: string) => c);
  const fences: NfsFenceMark[] = [...(opts.fences ?? [])];
  for (const e of events) if (e.ev === 'fence' && e.ok) fences.push({ gate: e.gate, started: e.started, t: e.t });
  type Step = GateEvent | { ev: 'fence-mark'; gate: string; t: number; mark: NfsFenceMark };
  const steps: Step[] = [...events.filter((e) => e.ev !== 'fence'), ...fences.map((mark) => ({ ev: 'fence-mark' as const, gate: mark.gate, t: mark.t, mark }))]
    .sort((a, b) => a.t - b.t);
  const open = new Map<string, Admission>();
  const draining = new Map<string, Admission[]>();
  const done: Admission[] = [];
  const key = (gate: string, client: string) => `${gate}\u0000${client}`;
  const finish = (a: Admission, to: number) => {
    a.to = Math.max(a.admittedUntil, to);
    done.push(a);
  };
  /** Ends everything of one gate at `t`: its process is gone (killed, or a new one started). */
  const endGate = (gate: string, t: number, why: string) => {
    for (const [k, a] of open) {
      if (a.gate !== gate) continue;
      open.delete(k);
      a.admittedUntil = t;
      a.dropWhy = why;
      finish(a, t);
    }
    for (const [k, list] of draining) {
      if (!k.startsWith(`${gate}\u0000`)) continue;
      for (const a of list) finish(a, t);
      draining.delete(k);
    }
  };
  for (const e of steps) {
    if (e.ev === 'fence-mark') {
      const m = e.mark;
      if (m.whole) {
        endGate(m.gate, m.t, 'SCVM fenced');
        continue;
      }
      // The NFS server died: calls forwarded before the fence started are over.
      for (const [k, list] of draining) {
        if (!k.startsWith(`${m.gate}\u0000`)) continue;
        const rest = list.filter((a) => {
          if (m.started < a.admittedUntil) return true;
          finish(a, m.t);
          return false;
        });
        if (rest.length) draining.set(k, rest);
        else draining.delete(k);
      }
      continue;
    }
    if (e.ev === 'start') {
      endGate(e.gate, e.t, 'gate restarted');
      continue;
    }
    if (e.ev === 'fence') continue;
    const k = key(e.gate, e.client);
    if (e.ev === 'admit') {
      if (!open.has(k)) open.set(k, { gate: e.gate, client: e.client, host: hostOf(e.client, e.gate), from: e.t, admittedUntil: Infinity, to: Infinity });
    } else if (e.ev === 'drop') {
      const a = open.get(k);
      if (!a) continue;
      open.delete(k);
      a.admittedUntil = e.stopAt > 0 ? Math.min(e.t, e.stopAt) : e.t;
      a.dropWhy = e.why;
      a.pending = e.pending ?? 0;
      if (!a.pending) finish(a, a.admittedUntil);
      else draining.set(k, [...(draining.get(k) ?? []), a]);
    } else if (e.ev === 'drained') {
      for (const a of draining.get(k) ?? []) finish(a, e.t);
      draining.delete(k);
    }
  }
  for (const list of draining.values()) done.push(...list);
  return [...done, ...open.values()].sort((a, b) => a.from - b.from);
}

/**
 * DESIGN §4: at no instant do two Access Servers both serve a host (admitted,
 * or with calls in flight). Compares hosts, not client-id strings. Returns
 * the violations (empty when it holds).
 */
export function overlaps(intervals: Admission[]): Array<[Admission, Admission]> {
  const bad: Array<[Admission, Admission]> = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i], b = intervals[j];
      if (a.host === b.host && a.gate !== b.gate && b.from < a.to && a.from < b.to) bad.push([a, b]);
    }
  }
  return bad;
}

export function describeOverlap([a, b]: [Admission, Admission]): string {
  const side = (x: Admission) => `${x.gate} as ${x.client} [${x.from.toFixed(1)}, ${x.admittedUntil.toFixed(1)}${x.to > x.admittedUntil ? ` +calls to ${x.to.toFixed(1)}` : ''}]`;
  return `host ${a.host} served by ${side(a)} and ${side(b)}`;
}
