import * as fs from 'node:fs';
import type { GateEvent } from '../../follower/tcp-gate';

export interface Admission {
  gate: string;
  client: string;
  from: number;
  /** Infinity while still admitted at the end of the log. */
  to: number;
  dropWhy?: string;
}

export function readGateEvents(files: string[]): GateEvent[] {
  const events: GateEvent[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) if (line.trim()) events.push(JSON.parse(line) as GateEvent);
  }
  return events.sort((a, b) => a.t - b.t);
}

/** Turns admit/drop events into per-gate, per-client admission intervals. */
export function admissions(events: GateEvent[]): Admission[] {
  const open = new Map<string, Admission>();
  const done: Admission[] = [];
  for (const e of events) {
    const key = `${e.gate}\u0000${e.client}`;
    if (e.ev === 'admit') {
      if (!open.has(key)) open.set(key, { gate: e.gate, client: e.client, from: e.t, to: Infinity });
    } else {
      const a = open.get(key);
      if (a) { a.to = e.t; a.dropWhy = e.why; done.push(a); open.delete(key); }
    }
  }
  return [...done, ...open.values()].sort((a, b) => a.from - b.from);
}

/**
 * The single-admission invariant: at no instant do two gates both have one
 * client admitted. Returns the violations (empty when it holds).
 */
export function overlaps(intervals: Admission[]): Array<[Admission, Admission]> {
  const bad: Array<[Admission, Admission]> = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i], b = intervals[j];
      if (a.client === b.client && a.gate !== b.gate && b.from < a.to && a.from < b.to) bad.push([a, b]);
    }
  }
  return bad;
}
