import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { monotonicMs } from '../../common/clock';
import { waitFor } from '../support/cluster';
import { FAULT_KINDS, inject, ioPauses, schedule, waitIoResumed } from '../support/chaos';
import { Lab, NFS_BACKEND_IP } from '../support/lab';
import { summarize } from './stats';
import type { BenchRow } from './reroute';

const run = promisify(execFile);

/**
 * Real NFS through the gates: the IO pause per fault kind (last acknowledged
 * write before the fault → first after, the longest gap on any host), and the
 * gate's throughput against a direct connection to NFS-Ganesha in the same lab.
 */
export async function benchIo(faults: number, log: (s: string) => void): Promise<BenchRow[]> {
  const lab = new Lab({ hosts: 3, nfs: true, etcd: true, prefix: 'nfsha-bio', holdDownMs: 2000 });
  await lab.up();
  const rows: BenchRow[] = [];
  try {
    const writers = [1, 2, 3].map((i) => lab.startWriter(i, `bench-${i}.dat`, 20));
    await waitIoResumed(writers, monotonicMs() - 60_000, 10, 30_000);
    const byKind = new Map<string, number[]>();
    for (const f of schedule(4242, faults, 3)) {
      const at = monotonicMs();
      const heal = await inject(lab, f);
      await waitIoResumed(writers, at + 6000, 10, 60_000);
      const pause = Math.max(...ioPauses(writers, at));
      byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), pause]);
      log(`  ${f.kind}@${f.target}: IO pause ${pause.toFixed(0)} ms`);
      await heal();
      await waitFor('all hosts local again', async () => {
        for (let i = 1; i <= 3; i++) if ((await lab.route(i)) !== 'local') return false;
        return (await lab.status()).sessions.filter((s) => s.state === 'live').length === 3;
      }, 60_000, 200);
    }
    for (const p of writers) p.signal('SIGTERM');
    for (const kind of FAULT_KINDS) {
      const xs = byKind.get(kind);
      if (xs?.length) rows.push({ figure: `IO pause: ${kind}`, unit: 'ms', ...summarize(xs), note: 'libnfs writer, fsync per 64 B record' });
    }
    rows.push(...(await throughput(lab, log)));
  } finally {
    await lab.down();
  }
  return rows;
}

/** nfs-cp of a 64 MiB file from host 1: through its SCVM's gate vs straight to Ganesha. */
async function throughput(lab: Lab, log: (s: string) => void): Promise<BenchRow[]> {
  const src = path.join(lab.dir, 'blob.bin');
  fs.writeFileSync(src, Buffer.alloc(64 * 2 ** 20, 7));
  const mbps = async (server: string, name: string) => {
    const url = `nfs://${server}${lab.exportDir}/${name}?version=3&nfsport=2049&mountport=20048`;
    const t0 = performance.now();
    await run('ip', ['netns', 'exec', lab.ns('h1'), 'nfs-cp', src, url]);
    return 64 / ((performance.now() - t0) / 1000);
  };
  const viaGate: number[] = [], direct: number[] = [];
  for (let i = 0; i < 3; i++) {
    viaGate.push(await mbps('192.168.33.2', `tp-gate-${i}.bin`));
    direct.push(await mbps(NFS_BACKEND_IP, `tp-direct-${i}.bin`));
  }
  const g = summarize(viaGate), d = summarize(direct);
  log(`  throughput: gate ${g.median.toFixed(0)} MB/s, direct ${d.median.toFixed(0)} MB/s`);
  return [
    { figure: 'NFS write throughput via gate (nfs-cp 64 MiB)', unit: 'MB/s', ...g },
    { figure: 'NFS write throughput direct to Ganesha', unit: 'MB/s', ...d },
    { figure: 'gate / direct throughput (median)', unit: 'ratio', n: 3, min: g.median / d.median, median: g.median / d.median, p99: g.median / d.median, max: g.median / d.median },
  ];
}
