import { Etcd3 } from 'etcd3';
import { Cluster, waitFor } from '../support/cluster';
import { EtcdCluster, etcdClientOptions } from '../support/etcd';
import { clientAddress, SimFollower } from './sim-follower';
import { summarize } from './stats';
import type { BenchRow } from './reroute';
import { cpuSeconds, rssMiB } from './proc';

async function startMaster(): Promise<{ cluster: Cluster; address: string; pid: number }> {
  // A master process only (no real followers): the simulated ones connect to it.
  const cluster = new Cluster({ followers: 0 });
  await cluster.start();
  // Logins wait out the fresh master's grace period.
  await waitFor('grace over', async () => (await cluster.status()).ready, 20_000, 100);
  return { cluster, address: cluster.masterAddress, pid: cluster.master.pid };
}

/** Login with revoke: one client moved between two sessions, latency per login; and logins/s with 32 in flight. */
async function loginFigures(followers: number, log: (s: string) => void): Promise<BenchRow[]> {
  const { cluster, address } = await startMaster();
  const sims = Array.from({ length: followers }, (_, i) => new SimFollower(address, `sim-${i}`));
  try {
    await Promise.all(sims.map((s) => s.start()));
    const latency: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      await sims[i % 2].login('10.200.0.1');
      latency.push(performance.now() - t0);
    }
    // Throughput: 32 clients in flight, each moving to the next session on every login (always a revoke).
    const n = 3000;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, async (_, w) => {
      for (let i = 0; ; i++) {
        const k = next++;
        if (k >= n) return;
        await sims[(w + i) % sims.length].login(clientAddress(1000 + w));
      }
    }));
    const rate = n / ((performance.now() - t0) / 1000);
    log(`  ${followers} followers: login with revoke median ${summarize(latency).median.toFixed(2)} ms, ${rate.toFixed(0)} logins/s`);
    return [
      { figure: `login with revoke, ${followers} followers`, unit: 'ms', ...summarize(latency) },
      { figure: `logins/s with revoke, ${followers} followers (32 in flight)`, unit: '/s', n: 1, min: rate, median: rate, p99: rate, max: rate },
    ];
  } finally {
    for (const s of sims) s.stop();
    await cluster.stop();
  }
}

/** The same ownership move as an etcd compare-and-swap transaction on a real etcd. */
async function etcdFigures(log: (s: string) => void): Promise<BenchRow[]> {
  const etcd = await new EtcdCluster(3).start();
  const client = new Etcd3(etcdClientOptions(etcd.endpoints));
  try {
    const key = 'bench/owner/10.200.0.1';
    await client.put(key).value('sim-0');
    const latency: number[] = [];
    for (let i = 0; i < 300; i++) {
      const from = `sim-${i % 2}`, to = `sim-${(i + 1) % 2}`;
      const t0 = performance.now();
      const r = await client.if(key, 'Value', '==', from).then(client.put(key).value(to)).commit();
      latency.push(performance.now() - t0);
      if (!r.succeeded) throw new Error('etcd CAS lost its own race');
    }
    const n = 3000;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, async (_, w) => {
      const k = `bench/owner/w${w}`;
      let owner = 'none';
      await client.put(k).value(owner);
      while (next++ < n) {
        const to = owner === 'a' ? 'b' : 'a';
        await client.if(k, 'Value', '==', owner).then(client.put(k).value(to)).commit();
        owner = to;
      }
    }));
    const rate = n / ((performance.now() - t0) / 1000);
    log(`  etcd txn: median ${summarize(latency).median.toFixed(2)} ms, ${rate.toFixed(0)} txn/s`);
    return [
      { figure: 'same ownership move as an etcd txn (3-member etcd)', unit: 'ms', ...summarize(latency) },
      { figure: 'etcd txn/s (32 in flight)', unit: '/s', n: 1, min: rate, median: rate, p99: rate, max: rate },
    ];
  } finally {
    client.close();
    await etcd.stop();
  }
}

/** Keepalive CPU and master RSS with many simulated followers and clients. */
async function scaleFigures(followers: number, clients: number, log: (s: string) => void): Promise<BenchRow[]> {
  const { cluster, address, pid } = await startMaster();
  const sims = Array.from({ length: followers }, (_, i) => new SimFollower(address, `sim-${i}`));
  try {
    for (let i = 0; i < sims.length; i += 100) await Promise.all(sims.slice(i, i + 100).map((s) => s.start()));
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      for (let k = next++; k < clients; k = next++) await sims[k % sims.length].login(clientAddress(k));
    }));
    const rssAfterLogins = rssMiB(pid);
    const c0 = cpuSeconds(pid), t0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const cpu = (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
    log(`  ${followers} followers, ${clients} clients: master keepalive CPU ${(cpu * 100).toFixed(1)}% of a core, RSS ${rssAfterLogins.toFixed(0)} MiB`);
    return [
      { figure: `master CPU for keepalives, ${followers} followers (500 ms)`, unit: '% core', n: 1, min: cpu * 100, median: cpu * 100, p99: cpu * 100, max: cpu * 100, note: '10 s window' },
      { figure: `master RSS, ${followers} followers, ${clients} clients`, unit: 'MiB', n: 1, min: rssAfterLogins, median: rssAfterLogins, p99: rssAfterLogins, max: rssAfterLogins },
    ];
  } finally {
    for (const s of sims) s.stop();
    await cluster.stop();
  }
}

export async function benchMaster(log: (s: string) => void): Promise<BenchRow[]> {
  const rows = [...await loginFigures(3, log), ...await loginFigures(64, log), ...await etcdFigures(log)];
  const ratio = (a: string, b: string) => rows.find((r) => r.figure.startsWith(a))!.median / rows.find((r) => r.figure.startsWith(b))!.median;
  const r = ratio('login with revoke, 3', 'same ownership move');
  rows.push({ figure: 'login with revoke (3 followers) / etcd txn, median latency', unit: 'ratio', n: 1, min: r, median: r, p99: r, max: r });
  rows.push(...await scaleFigures(1000, 100_000, log));
  return rows;
}
