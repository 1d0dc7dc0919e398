import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lab } from '../support/lab';
import type { BenchRow } from './reroute';
import { DEFAULT_AGENT_OPTIONS } from '../../agent/options';

/** Spins, and ends with its parent (a bench killed hard leaves no hog behind). */
const HOG = 'const p = process.ppid; for (;;) { const t = Date.now(); while (Date.now() - t < 200); if (process.ppid !== p) process.exit(0); }';

/** Writes and syncs 4 MiB at a time, over and over, into `file` (a disk writer beside the SCVMs). */
function diskWriter(file: string): string {
  return `const fs = require('fs'); const p = process.ppid; const b = Buffer.alloc(4 << 20, 7);
    for (;;) { const fd = fs.openSync(${JSON.stringify(file)}, 'w'); for (let i = 0; i < 8; i++) { fs.writeSync(fd, b); fs.fsyncSync(fd); } fs.closeSync(fd); if (process.ppid !== p) process.exit(0); }`;
}

/**
 * False reroutes under load (issue 20 part 1): the lab with real NFS (each
 * follower probing its Ganesha), agents probing their local SCVM at the
 * default rate, and for `seconds` every core kept busy by a spinning
 * process and a disk writer pinned to it with taskset (the SCVMs' processes
 * share those cores: namespaces share one kernel, so the load must be on
 * the CPUs, not only on ICMP). Counts every route change of every agent and
 * every membership change that marks a server nfs_down: nothing failed, so
 * each one is false. Target 0 (hard).
 */
export async function benchFalseReroutes(seconds: number, log: (s: string) => void): Promise<BenchRow[]> {
  const hosts = 3;
  const lab = new Lab({ hosts, nfs: true, prefix: 'nfsha-bench-fr', holdDownMs: 30_000 });
  const load: ChildProcess[] = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-fr-'));
  try {
    await lab.up();
    const routeEventsBefore = Array.from({ length: hosts }, (_, k) => lab.routeEvents(k + 1).length);
    const masterLogBefore = lab.master.log().length;
    for (let cpu = 0; cpu < os.cpus().length; cpu++) {
      load.push(spawn('taskset', ['-c', String(cpu), process.execPath, '-e', HOG], { stdio: 'ignore' }));
      load.push(spawn('taskset', ['-c', String(cpu), process.execPath, '-e', diskWriter(path.join(scratch, `w${cpu}`))], { stdio: 'ignore' }));
    }
    log(`  false reroutes: ${load.length} load processes pinned over ${os.cpus().length} cores for ${seconds} s (pids ${load.map((p) => p.pid).join(', ')})`);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    for (const p of load) p.kill('SIGKILL');
    const routeChanges = Array.from({ length: hosts }, (_, k) => lab.routeEvents(k + 1).slice(routeEventsBefore[k]));
    const nfsDown = lab.master.log().slice(masterLogBefore).split('\n')
      .filter((l) => l.includes('"membership.changed"'))
      .map((l) => JSON.parse(l) as { nfs_down?: string[] })
      .filter((m) => (m.nfs_down ?? []).length > 0);
    for (const [k, events] of routeChanges.entries()) for (const e of events) log(`  false reroute on host ${k + 1}: ${e.from} → ${e.to} (${e.why})`);
    for (const m of nfsDown) log(`  false nfs_down: ${JSON.stringify(m.nfs_down)}`);
    const count = routeChanges.reduce((n, e) => n + e.length, 0) + nfsDown.length;
    log(`  false reroutes: ${count} (${routeChanges.map((e) => e.length).join('+')} route changes, ${nfsDown.length} nfs_down)`);
    const note = `${seconds} s, ${hosts} hosts, every core busy + a disk writer per core (taskset), local probe ${DEFAULT_AGENT_OPTIONS.localProbeIntervalMs} ms × ${DEFAULT_AGENT_OPTIONS.missesToFail}`;
    return [{ figure: 'false reroutes under load (route changes + nfs_down)', unit: 'count', n: 1, min: count, median: count, p99: count, max: count, target: 0, kind: 'hard', note }];
  } finally {
    for (const p of load) p.kill('SIGKILL');
    await lab.down();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
