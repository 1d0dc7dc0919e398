import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, waitFor } from '../support/cluster';
import { tlsArgs } from '../support/pki';
import type { BenchRow } from './reroute';
import { cpuSeconds, rssMiB } from './proc';

const ROOT = path.resolve(__dirname, '..', '..', '..');

const one = (figure: string, unit: string, x: number, note?: string): BenchRow => ({ figure, unit, n: 1, min: x, median: x, p99: x, max: x, note });

/** The agent's resident memory and idle CPU (probing 3 servers every 500 ms), and the executable's size. */
export async function benchFootprint(log: (s: string) => void): Promise<BenchRow[]> {
  const exe = path.join(ROOT, 'out', 'nfsha');
  // Always rebuilt: an executable left from older code would measure that code.
  execFileSync(process.execPath, [path.join(ROOT, 'build/build-agent.mjs')], { stdio: 'ignore' });
  const size = fs.statSync(exe).size / 2 ** 20;
  const gz = Number(execFileSync('sh', ['-c', `gzip -c ${exe} | wc -c`]).toString()) / 2 ** 20;
  const cluster = await new Cluster({ followers: 3 }).start();
  // The single executable, as on ESXi; dry-run routes, ICMP probes of three loopback "SCVMs".
  const agent = spawn(exe, ['agent', '--host-id', 'esx-1', '--local-server-id', 'scvm-1', '--backend', 'dry-run', '--master', cluster.masterAddress, ...tlsArgs('agent', 'esx-1')], { stdio: 'ignore' });
  try {
    await waitFor('agent registered', async () => (await cluster.status()).hosts.some((h) => h.hostId === 'esx-1' && h.agentConnected), 15_000, 100);
    await new Promise((r) => setTimeout(r, 3000));
    const c0 = cpuSeconds(agent.pid!), t0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const cpu = ((cpuSeconds(agent.pid!) - c0) / ((performance.now() - t0) / 1000)) * 100;
    const rss = rssMiB(agent.pid!);
    log(`  agent: RSS ${rss.toFixed(0)} MiB, idle CPU ${cpu.toFixed(2)}% of a core; executable ${size.toFixed(1)} MiB (${gz.toFixed(1)} MiB gzipped)`);
    return [
      one('agent RSS (single executable, 3 servers probed)', 'MiB', rss),
      one('agent idle CPU (probe every 500 ms)', '% core', cpu, '10 s window'),
      one('agent executable size', 'MiB', size, `${gz.toFixed(1)} MiB gzipped`),
    ];
  } finally {
    agent.kill('SIGKILL');
    await cluster.stop();
  }
}

