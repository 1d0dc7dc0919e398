import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor, type Proc } from './cluster';
import { admissions, overlaps, readGateEvents } from './invariant';
import { MASTER_IP, type Lab } from './lab';

const run = promisify(execFile);

/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_KINDS = ['scvm-links', 'follower-kill9', 'follower-sigstop', 'nft-partition', 'agent-restart', 'master-kill9'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** The SCVM / host it hits (1-based). */
  target: number;
}

export function schedule(seed: number, count: number, hosts: number, kinds: readonly FaultKind[] = FAULT_KINDS): Fault[] {
  const r = prng(seed);
  return Array.from({ length: count }, () => ({
    kind: kinds[Math.floor(r() * kinds.length)],
    target: 1 + Math.floor(r() * hosts),
  }));
}

/** Injects a fault; returns how to heal it. */
export async function inject(lab: Lab, f: Fault): Promise<() => Promise<void>> {
  const s = lab.ns(`s${f.target}`);
  switch (f.kind) {
    case 'scvm-links':
      await lab.scvmLinks(f.target, 'down');
      return () => lab.scvmLinks(f.target, 'up');
    case 'follower-kill9':
      await lab.followers[f.target - 1].kill9();
      return async () => { lab.followers[f.target - 1] = lab.startFollower(f.target); };
    case 'follower-sigstop':
      lab.followers[f.target - 1].signal('SIGSTOP');
      return async () => lab.followers[f.target - 1].signal('SIGCONT');
    case 'nft-partition':
      // The follower can no longer reach the master (one SCVM cut off from the control plane).
      await run('ip', ['netns', 'exec', s, 'nft', `add table inet nfsha_chaos; add chain inet nfsha_chaos out { type filter hook output priority 0; }; add rule inet nfsha_chaos out ip daddr ${MASTER_IP} drop`]);
      return async () => { await run('ip', ['netns', 'exec', s, 'nft', 'delete table inet nfsha_chaos']); };
    case 'master-kill9': {
      // The leader, whichever candidate it is; the target is ignored.
      const k = Number((await lab.status()).masterId.slice(1));
      await lab.masters[k - 1].kill9();
      return async () => { lab.masters[k - 1] = lab.startMaster(k); };
    }
    case 'agent-restart':
      await lab.agents[f.target - 1].kill9();
      lab.agents[f.target - 1] = lab.startAgent(f.target);
      return async () => undefined;
  }
}

export interface Ack { rec: number; t: number }

/** The acknowledged records a writer has reported so far. */
export function acks(writer: Proc): Ack[] {
  return writer.log().split('\n').filter((l) => l.includes('"ack"')).map((l) => JSON.parse(l) as Ack);
}

/**
 * Every acknowledged record of every writer is intact in the backend's
 * export (what NFS-Ganesha stored), and the writer's own read-back through
 * NFS agreed. Returns the problems found.
 */
export function checkWrites(lab: Lab, writers: Array<{ proc: Proc; file: string }>): string[] {
  const problems: string[] = [];
  for (const w of writers) {
    const data = fs.readFileSync(path.join(lab.exportDir, w.file));
    for (const a of acks(w.proc)) {
      const want = recordText(a.rec, w.file);
      const got = data.subarray(a.rec * 64, a.rec * 64 + 64).toString('latin1');
      if (got !== want) problems.push(`${w.file}: acknowledged record ${a.rec} is ${JSON.stringify(got.slice(0, 24))}`);
    }
    const verify = w.proc.log().split('\n').find((l) => l.includes('"verify"'));
    if (!verify || !JSON.parse(verify).ok) problems.push(`${w.file}: NFS read-back ${verify ?? 'missing'}`);
  }
  return problems;
}

/** The writer's record layout (test/nfs-writer/nfs-writer.c). */
export function recordText(n: number, file: string): string {
  const head = `rec ${String(n).padStart(8, '0')} of ${file}`;
  return (head + ' ' + '.'.repeat(64)).slice(0, 63) + '\n';
}

/** The single-admission invariant over every gate's event log; returns violations. */
export function checkSingleAdmission(lab: Lab): string[] {
  const events = readGateEvents(Array.from({ length: lab.opts.hosts }, (_, i) => lab.gateEventLog(i + 1)));
  return overlaps(admissions(events)).map(([a, b]) => `${a.client} admitted by ${a.gate} [${a.from}, ${a.to}] and ${b.gate} [${b.from}, ${b.to}]`);
}

/** Waits until every writer has acked `more` records after `since` (monotonic ms). */
export async function waitIoResumed(writers: Proc[], since: number, more: number, timeoutMs: number): Promise<void> {
  await waitFor('IO resumed on every host', () => writers.every((w) => acks(w).filter((a) => a.t > since).length >= more), timeoutMs, 100);
}

/** Per writer, the longest gap between consecutive acks since `since`, counted from the last ack before it. */
export function ioPauses(writers: Proc[], since: number): number[] {
  return writers.map((w) => {
    const all = acks(w);
    let prev = all.filter((a) => a.t <= since).at(-1)?.t ?? since;
    let gap = 0;
    for (const a of all.filter((x) => x.t > since)) {
      gap = Math.max(gap, a.t - prev);
      prev = a.t;
    }
    return gap;
  });
}

