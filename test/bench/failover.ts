import { Cluster, TestClient, waitFor } from '../support/cluster';
import { EtcdCluster } from '../support/etcd';
import { summarize } from './stats';
import type { BenchRow } from './reroute';

/**
 * Master failover time: the leader is killed (kill -9) at t0; measured until a
 * login is granted by the new leader (a connection through another gate is
 * admitted and echoes). Real 3-member etcd, 3 candidates, default TTLs.
 */
export async function benchFailover(runs: number, log: (s: string) => void): Promise<BenchRow[]> {
  const etcd = await new EtcdCluster(3).start();
  const cluster = await new Cluster({ followers: 3, masters: 3, etcd: etcd.endpoints, hosts: { 'esx-9': '127.0.9.1' }, ttlMs: 3000, keepaliveMs: 500 }).start();
  const times: number[] = [];
  try {
    let gate = 1;
    (await cluster.connect(gate, '127.0.9.1', 30_000)).close();
    for (let i = 0; i < runs; i++) {
      const s = await cluster.status();
      const k = Number(s.masterId.slice(1));
      const t0 = performance.now();
      await cluster.masterProcs[k - 1].kill9();
      gate = (gate % 3) + 1;
      for (;;) {
        const c = new TestClient('127.0.9.1', cluster.gatePorts[gate - 1]);
        try {
          await c.roundTrip(`after failover ${i}\n`, 20_000);
          c.close();
          break;
        } catch {
          c.close();
          if (performance.now() - t0 > 60_000) throw new Error(`no login granted within 60 s of the leader's death\n${cluster.dump()}`);
        }
      }
      times.push(performance.now() - t0);
      log(`  failover run ${i + 1}/${runs}: ${times.at(-1)!.toFixed(0)} ms`);
      cluster.masterProcs[k - 1] = cluster.startMaster(k);
      await waitFor('all followers live again', async () => (await cluster.status()).sessions.filter((x) => x.state === 'live').length === 3, 30_000, 100);
    }
  } finally {
    await cluster.stop();
    await etcd.stop();
  }
  return [{ figure: 'master failover: leader killed → login granted by new leader', unit: 'ms', ...summarize(times), note: 'etcd lease 1 s, session TTL 3 s (defaults)' }];
}
