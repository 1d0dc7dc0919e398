import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { FAULT_KINDS, chaosTable, runSchedule, type Fault } from '../support/chaos';
import { Lab, MOUNT_SERVER_PORT, NFS_SERVER_PORT } from '../support/lab';
import { summarize } from './stats';
import type { BenchRow } from './reroute';

const run = promisify(execFile);

/**
 * Real NFS through the gates: the IO pause per fault kind (last acknowledged
 * write before the fault → first after, the longest gap on any host), the
 * time from a revoke to its ack (the drain), and the gate's throughput with
 * the drain on against the same host talking to its SCVM's Ganesha directly.
 */
export async function benchIo(rounds: number, log: (s: string) => void, onlyMaintenance = false): Promise<BenchRow[]> {
  const lab = new Lab({ hosts: 3, nfs: true, etcd: true, prefix: 'nfsha-bio', holdDownMs: 2000 });
  await lab.up();
  const rows: BenchRow[] = [];
  try {
    if (onlyMaintenance) return await maintenancePauses(lab, log);
    // Every fault kind, `rounds` times, targets rotating.
    const list: Fault[] = [];
    for (let r = 0; r < rounds; r++) FAULT_KINDS.forEach((kind, k) => list.push({ kind, target: 1 + ((k + r) % 3) }));
    const o = await runSchedule(lab, 4242, list, (line) => log(`  ${line}`));
    log(chaosTable([o]));
    if (o.failures.length || o.violations.length) log(`  problems: ${[...o.failures, ...o.violations].join('; ')}`);
    for (const kind of FAULT_KINDS) {
      const xs = o.faults.filter((f) => f.kind === kind).map((f) => f.pauseMs);
      if (xs.length) rows.push({ figure: `IO pause: ${kind}`, unit: 'ms', ...summarize(xs), note: '8 calls in flight, 4 KiB blocks' });
    }
    // The fault schedule's drains, before maintenance adds its own.
    const drains = revokeAckTimes(lab);
    if (drains.length) rows.push({ figure: 'revoke → ack at the old holder (drain)', unit: 'ms', ...summarize(drains), note: 'follower revoke.received → revoke.acked, during the faults' });
    rows.push(...(await maintenancePauses(lab, log)));
    rows.push(...(await throughput(lab, log)));
  } finally {
    await lab.down();
  }
  return rows;
}

/**
 * Planned maintenance with real agents and libnfs writers: a rolling restart
 * (each SCVM in turn: enter --wait, follower/gate/Ganesha restarted, exit,
 * fail-back), then seven maintenance enter/exit cycles without a restart,
 * rotating: ten steps, each moving one host away and back, 20 moves. Every
 * step also checks status against the gates' logs after each move, and that
 * each restart condemned, waited out and fenced nothing but its start-up
 * fence.
 */
async function maintenancePauses(lab: Lab, log: (s: string) => void): Promise<BenchRow[]> {
  const list: Fault[] = [1, 2, 3].map((target) => ({ kind: 'maintenance-restart', target }));
  for (let k = 0; k < 7; k++) list.push({ kind: 'maintenance-move', target: 1 + (k % 3) });
  const o = await runSchedule(lab, 4343, list, (line) => log(`  ${line}`));
  if (o.failures.length || o.violations.length) log(`  problems: ${[...o.failures, ...o.violations].join('; ')}`);
  const problems = o.failures.length + o.violations.length ? `; ${o.failures.length + o.violations.length} problems (see log)` : '';
  const moves = o.faults.flatMap((f) => f.movePausesMs ?? []);
  const rolling = o.faults.filter((f) => f.kind === 'maintenance-restart').map((f) => f.pauseMs);
  return [
    ...(moves.length ? [{ figure: 'maintenance: IO pause per host move (enter --wait away, exit back)', unit: 'ms', ...summarize(moves), target: 100, kind: 'target' as const, note: `longest gap of any writer per move${problems}` }] : []),
    ...(rolling.length ? [{ figure: 'rolling restart: IO pause per SCVM step (both moves)', unit: 'ms', ...summarize(rolling), target: 250, kind: 'target' as const, note: `follower, gate and Ganesha restarted in maintenance; MAX is the longest of the whole restart${problems}` }] : []),
  ];
}

/** Milliseconds from each revoke a follower received to its ack, from the followers' logs. */
function revokeAckTimes(lab: Lab): number[] {
  const out: number[] = [];
  for (const p of lab.procs) {
    if (!p.name.startsWith('follower-')) continue;
    for (const line of p.log().split('\n')) {
      if (line.includes('"revoke.acked"') && line.includes('"ms"')) out.push(JSON.parse(line).ms as number);
    }
  }
  return out;
}

/**
 * nfs-cp of a 64 MiB file from host 1, through its SCVM's gate (2049/20048,
 * the drain's bookkeeping on) vs straight to that SCVM's Ganesha
 * (2050/20050) over the same private link: the difference is the gate.
 */
async function throughput(lab: Lab, log: (s: string) => void): Promise<BenchRow[]> {
  const src = path.join(lab.dir, 'blob.bin');
  fs.writeFileSync(src, Buffer.alloc(64 * 2 ** 20, 7));
  const mbps = async (nfsPort: number, mountPort: number, name: string) => {
    const url = `nfs://192.168.33.2${lab.exportDir}/${name}?version=3&nfsport=${nfsPort}&mountport=${mountPort}`;
    const t0 = performance.now();
    await run('ip', ['netns', 'exec', lab.ns('h1'), 'nfs-cp', src, url]);
    return 64 / ((performance.now() - t0) / 1000);
  };
  const viaGate: number[] = [], direct: number[] = [];
  for (let i = 0; i < 5; i++) {
    viaGate.push(await mbps(2049, 20048, `tp-gate-${i}.bin`));
    direct.push(await mbps(NFS_SERVER_PORT, MOUNT_SERVER_PORT, `tp-direct-${i}.bin`));
  }
  const g = summarize(viaGate), d = summarize(direct);
  const ratios = viaGate.map((x, i) => x / direct[i]);
  log(`  throughput: gate ${g.median.toFixed(0)} MB/s, direct ${d.median.toFixed(0)} MB/s`);
  return [
    { figure: 'NFS write throughput via gate (nfs-cp 64 MiB)', unit: 'MB/s', ...g },
    { figure: 'NFS write throughput direct to the SCVM\'s Ganesha', unit: 'MB/s', ...d },
    { figure: 'gate / direct throughput (interleaved pairs)', unit: 'ratio', ...summarize(ratios) },
  ];
}
