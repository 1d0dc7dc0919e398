import assert from 'node:assert/strict';
import { Agent } from '../../agent/agent';
import { FakeMembership } from '../support/fake-membership';
import { DEFAULT_AGENT_OPTIONS } from '../../agent/options';
import { DryRunBackend } from '../../agent/routes/dry-run';
import { silentLogger } from '../../common/log';
import { Cluster, waitFor } from '../support/cluster';
import { fakeClock } from '../support/fake-clock';
import { sample, scrape } from '../support/scrape';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Metric families a text exposition declares (its `# TYPE` lines). */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
}

describe('Prometheus metrics', function () {
  this.timeout(60_000);
  /** What each kind of process exported in the tests below. */
  const exported = new Set<string>();

  it('master and followers serve /metrics with sessions, logins, revokes and their latencies, fences', async () => {
    const cluster = await new Cluster({ followers: 2, metrics: true, hosts: { 'esx-9': '127.0.9.1' } }).start();
    try {
      const held = await cluster.connect(1, '127.0.9.1');
      const moved = await cluster.connect(2, '127.0.9.1');
      await waitFor('revoked on gate 1', () => held.closed);
      const master: string = await waitFor('login metrics', async () => {
        const t = await scrape(cluster.metricsPorts.get('master-1')!);
        return (sample(t, 'nfsha_master_logins_total', { result: 'granted' }) ?? 0) >= 2 ? t : undefined;
      });
      assert.equal(sample(master, 'nfsha_master_sessions', { state: 'live' }), 2);
      assert.equal(sample(master, 'nfsha_master_is_leader'), 1);
      assert.equal(sample(master, 'nfsha_master_login_duration_seconds_count', { with_revoke: 'false' }), 1);
      assert.equal(sample(master, 'nfsha_master_login_duration_seconds_count', { with_revoke: 'true' }), 1);
      assert.equal(sample(master, 'nfsha_master_revokes_total', { outcome: 'acked' }), 1);
      assert.equal(sample(master, 'nfsha_master_revoke_ack_seconds_count'), 1);
      assert.match(master, /^# TYPE nfsha_master_revoke_ack_seconds histogram$/m);
      assert.match(master, /^# TYPE nfsha_master_leader_changes_total counter$/m);
      assert.ok(sample(master, 'nfsha_process_resident_memory_bytes')! > 0);
      const f1 = await scrape(cluster.metricsPorts.get('follower-1')!);
      for (const name of [...families(master), ...families(f1)]) exported.add(name);
      assert.ok(sample(f1, 'nfsha_follower_lease_remaining_seconds')! > 0);
      assert.equal(sample(f1, 'nfsha_follower_revokes_total', { outcome: 'acked' }), 1);
      assert.match(f1, /^# TYPE nfsha_follower_fences_total counter$/m);
      assert.ok((sample(f1, 'nfsha_follower_admits_total', { result: 'admitted' }) ?? 0) >= 1);
      moved.close();
    } finally {
      await cluster.stop();
    }
  });

  it('the agent counts route changes by kind and probes by result', async () => {
    const clock = fakeClock();
    const down = new Set<string>(['local']);
    const members = [1, 2, 3].map((n) => ({ serverId: `scvm-${n}`, hostId: `esx-${n}`, storageIp: `10.10.0.2${n}`, mgmtIp: '' }));
    const membership = new FakeMembership(members);
    const agent = new Agent({ ...DEFAULT_AGENT_OPTIONS, hostId: 'esx-2', localServerId: 'scvm-2', backend: 'dry-run', missesToFail: 3, metricsListen: '127.0.0.1:0' }, new DryRunBackend(),
      { clock, membership, log: silentLogger(), probe: async (ip, local) => !down.has(local ? 'local' : ip) });
    agent.start();
    await clock.tickAsync(2000);
    agent.stop();
    const text = await agent.metrics!.registry.metrics();
    for (const name of families(text)) exported.add(name);
    assert.equal(sample(text, 'nfsha_agent_route_changes_total', { kind: 'reroute' }), 1);
    assert.ok((sample(text, 'nfsha_agent_probes_total', { target: 'local', result: 'missed' }) ?? 0) >= 3);
    assert.equal(sample(text, 'nfsha_agent_route_remote'), 1);
    assert.match(text, /^# TYPE nfsha_agent_probe_rtt_seconds histogram$/m);
  });

  it('every metric the shipped alert rules and dashboard name is one that a master, a follower or an agent exports (scraped above)', () => {
    assert.ok(exported.size > 0, 'the scrapes above failed');
    const ops = path.resolve(__dirname, '..', '..', '..', 'ops');
    const rules = fs.readFileSync(path.join(ops, 'prometheus', 'nfsha-alerts.yml'), 'utf8');
    const dashboard = JSON.parse(fs.readFileSync(path.join(ops, 'grafana', 'nfsha-dashboard.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const exprs = [...[...rules.matchAll(/^\s+expr: (.*)$/gm)].map((m) => m[1]), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
    // A histogram's series carry _bucket, _count and _sum after its family name.
    const named = [...new Set(exprs.flatMap((e) => [...e.matchAll(/\bnfsha_[a-z_]+/g)].map((x) => x[0].replace(/_(bucket|count|sum)$/, ''))))];
    assert.ok(named.length >= 15, `too few metrics found: ${named.join(', ')}`);
    assert.deepEqual(named.filter((n) => !exported.has(n)), [], 'rules or dashboard panels name metrics nobody exports');
  });

  it('an agent not serving metrics (no --metrics-listen) keeps none: no registry, no process collectors', () => {
    const agent = new Agent({ ...DEFAULT_AGENT_OPTIONS, hostId: 'esx-2', localServerId: 'scvm-2', backend: 'dry-run' }, new DryRunBackend(),
      { clock: fakeClock(), membership: new FakeMembership([]), log: silentLogger(), probe: async () => true });
    assert.equal(agent.metrics, undefined);
  });
});
