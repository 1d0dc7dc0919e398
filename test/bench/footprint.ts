import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, waitFor } from '../support/cluster';
import { tlsArgs, tlsDir } from '../support/pki';
import type { BenchRow } from './reroute';
import { cpuSeconds, rssMiB } from './proc';
import { DEFAULT_AGENT_OPTIONS } from '../../agent/options';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const INIT_SCRIPT = path.join(ROOT, 'build', 'esxi', 'nfsha-agent.init');

const one = (figure: string, unit: string, x: number, extra: Partial<BenchRow> = {}): BenchRow => ({ figure, unit, n: 1, min: x, median: x, p99: x, max: x, ...extra });

/** The V8 flags the ESXi init script gives the agent (NFSHA_NODE_OPTIONS): measured as shipped. */
function initScriptNodeOptions(): string {
  const m = /^NFSHA_NODE_OPTIONS="([^"]*)"/m.exec(fs.readFileSync(INIT_SCRIPT, 'utf8'));
  if (!m) throw new Error(`${INIT_SCRIPT} sets no NFSHA_NODE_OPTIONS`);
  return m[1];
}

/** Resident memory after settling: the median and the most of one sample a second for `seconds`. */
async function settledRss(p: ChildProcess, seconds: number): Promise<{ median: number; max: number; cpu: number }> {
  await new Promise((r) => setTimeout(r, 3000));
  const c0 = cpuSeconds(p.pid!), t0 = performance.now();
  const samples: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push(rssMiB(p.pid!));
  }
  const cpu = ((cpuSeconds(p.pid!) - c0) / ((performance.now() - t0) / 1000)) * 100;
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], max: samples[samples.length - 1], cpu };
}

/**
 * The ESXi agent's resident memory and idle CPU (probing 3 servers every
 * 500 ms, following the membership over mTLS), as shipped: the agent-only
 * executable with the init script's V8 flags. Beside it, the full nfsha
 * executable running the same agent, and the floor: bare Node 20, and Node 20
 * holding only the agent's one mTLS gRPC stream (test/bench/agent-floor.ts).
 */
export async function benchFootprint(log: (s: string) => void): Promise<BenchRow[]> {
  // Always rebuilt: an executable left from older code would measure that code.
  execFileSync(process.execPath, [path.join(ROOT, 'build/build-agent.mjs')], { stdio: 'ignore' });
  const lean = path.join(ROOT, 'out', 'nfsha-agent');
  const full = path.join(ROOT, 'out', 'nfsha');
  const size = fs.statSync(lean).size / 2 ** 20;
  const gz = Number(execFileSync('sh', ['-c', `gzip -c ${lean} | wc -c`]).toString()) / 2 ** 20;
  const nodeOptions = initScriptNodeOptions();
  const cluster = await new Cluster({ followers: 3 }).start();
  const measured: Record<string, { median: number; max: number; cpu: number }> = {};
  const run = async (name: string, argv: string[], env: NodeJS.ProcessEnv, registersAs?: string) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: 'ignore', env: { ...process.env, ...env } });
    try {
      if (registersAs) {
        await waitFor(`${name} registered`, async () => (await cluster.status()).hosts.some((h) => h.hostId === registersAs && h.agentConnected), 15_000, 100);
      }
      measured[name] = await settledRss(p, 10);
      log(`  ${name}: RSS median ${measured[name].median.toFixed(1)} MiB (max ${measured[name].max.toFixed(1)}), CPU ${measured[name].cpu.toFixed(2)}% of a core`);
    } finally {
      p.kill('SIGKILL');
      await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.once('exit', r)));
    }
  };
  const agentArgs = (host: string) => ['agent', '--host-id', host, '--local-server-id', 'scvm-1', '--backend', 'dry-run', '--master', cluster.masterAddress, ...tlsArgs('agent', host)];
  try {
    // Dry-run routes, ICMP probes of three loopback "SCVMs".
    await run('agent executable (nfsha-agent, init script flags)', [lean, ...agentArgs('esx-1')], { NODE_OPTIONS: nodeOptions }, 'esx-1');
    await run('full nfsha executable, agent command, no flags', [full, ...agentArgs('esx-2')], {}, 'esx-2');
    await run('floor: Node 20 + one mTLS gRPC stream', [process.execPath, path.join(__dirname, 'agent-floor.js'), cluster.masterAddress, tlsDir('agent', 'esx-3'), 'esx-3'], { NODE_OPTIONS: nodeOptions }, 'esx-3');
    await run('floor: bare Node 20, idle', [process.execPath, '-e', 'setInterval(() => undefined, 500)'], { NODE_OPTIONS: nodeOptions });
  } finally {
    await cluster.stop();
  }
  const agent = measured['agent executable (nfsha-agent, init script flags)'];
  const floor = measured['floor: Node 20 + one mTLS gRPC stream'];
  const bare = measured['floor: bare Node 20, idle'];
  return [
    { figure: 'agent RSS (nfsha-agent as shipped, 3 servers probed)', unit: 'MiB', n: 10, min: agent.median, median: agent.median, p99: agent.max, max: agent.max,
      target: 65, kind: 'target', note: `floor ${floor.median.toFixed(0)} (Node + mTLS gRPC stream), bare Node ${bare.median.toFixed(0)}` },
    one('agent RSS, full nfsha executable, no V8 flags', 'MiB', measured['full nfsha executable, agent command, no flags'].median),
    one(`agent idle CPU (local probe every ${DEFAULT_AGENT_OPTIONS.localProbeIntervalMs} ms, remotes every ${DEFAULT_AGENT_OPTIONS.probeIntervalMs} ms)`, '% core', agent.cpu, { target: 1, kind: 'target', note: '10 s window' }),
    one('agent executable size', 'MiB', size, { note: `${gz.toFixed(1)} MiB gzipped` }),
  ];
}
