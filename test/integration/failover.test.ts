import assert from 'node:assert/strict';
import { Cluster, waitFor, type Proc } from '../support/cluster';
import { EtcdCluster } from '../support/etcd';
import { admissions } from '../support/invariant';
import { OPERATOR_TLS } from '../support/pki';

const HOST_IP = '127.0.9.1';
const CLIENT = 'host:esx-9';

interface Grant { master: string; client: string; token: string; t: string }

/** Every login.granted line of every master candidate. */
function grants(cluster: Cluster): Grant[] {
  return cluster.masterProcs.flatMap((p) => p.log().split('\n').filter((l) => l.includes('"login.granted"'))
    .map((l) => { const j = JSON.parse(l); return { master: p.name, client: j.client, token: j.token, t: j.time }; }));
}

function assertNoLoginGrantedTwice(cluster: Cluster): void {
  const seen = new Set<string>();
  for (const g of grants(cluster)) {
    assert.ok(!seen.has(g.token), `token ${g.token} granted twice`);
    seen.add(g.token);
  }
}

describe('master failover through a real 3-member etcd cluster (3 master candidates, 3 followers, 3 gates; needs etcd-server)', function () {
  this.timeout(180_000);
  let etcd: EtcdCluster;
  let cluster: Cluster;

  beforeEach(async () => {
    etcd = await new EtcdCluster(3).start();
    // Session TTL above the election's failover time, so followers keep their
    // sessions' clients across a failover and the new leader rebuilds ownership
    // from their introductions (with a shorter TTL they fence, which is safe too).
    cluster = await new Cluster({ followers: 3, masters: 3, etcd: etcd.endpoints, hosts: { 'esx-9': HOST_IP }, ttlMs: 6000, keepaliveMs: 500, electionTtlSeconds: 3 }).start();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.stop();
    await etcd.stop();
  });

  async function leaderProc(): Promise<{ proc: Proc; index: number; epoch: number }> {
    const s = await cluster.status();
    assert.equal(s.leader, true, 'a leader answers');
    const index = cluster.masterProcs.findIndex((p) => p.name === `master-${s.masterId.slice(1)}`);
    return { proc: cluster.masterProcs[index], index, epoch: s.epoch };
  }

  async function newLeader(old: number): Promise<{ id: string; epoch: number }> {
    return waitFor('a new leader with every follower back', async () => {
      const s = await cluster.status();
      const live = s.sessions.filter((x) => x.state === 'live' && x.connected).length;
      return s.leader && s.epoch > old && live === 3 ? { id: s.masterId, epoch: s.epoch } : undefined;
    }, 30_000, 100);
  }

  it('kill -9 of the leader: another leads and grants logins, and no login is granted twice', async () => {
    const held = await cluster.connect(1, HOST_IP);
    const first = await leaderProc();
    await first.proc.kill9();
    const next = await newLeader(first.epoch);
    assert.notEqual(next.id, `m${first.index + 1}`);
    // The new leader rebuilt ownership from follower 1's introduction: the client moves only through a revoke.
    const moved = await cluster.connect(2, HOST_IP);
    await waitFor('gate-1 revoked', () => held.closed);
    const intervals = admissions(cluster.events()).filter((a) => a.client === CLIENT);
    assert.match(intervals[0].dropWhy ?? '', /revoked/, 'follower 1 kept serving across the failover until revoked');
    cluster.assertSingleAdmission();
    assertNoLoginGrantedTwice(cluster);
    moved.close();
  });

  it('SIGSTOP of the leader for longer than its lease: another leads; resumed, the paused one refuses to act', async () => {
    const held = await cluster.connect(1, HOST_IP);
    const first = await leaderProc();
    first.proc.signal('SIGSTOP');
    const next = await newLeader(first.epoch);
    const moved = await cluster.connect(3, HOST_IP);
    await waitFor('gate-1 stopped serving', () => held.closed);
    first.proc.signal('SIGCONT');
    const oldAddress = cluster.masterAddresses[first.index];
    await waitFor('the resumed master knows it is not the leader', async () => {
      const { statusOf } = await import('../../cli/status-command');
      const s = await statusOf(oldAddress, 2000, OPERATOR_TLS()).catch(() => undefined);
      return s && !s.leader;
    }, 15_000, 100);
    const log = first.proc.log();
    const resumedAt = log.lastIndexOf('"election.deposed"');
    assert.ok(resumedAt >= 0, 'the paused leader stepped down');
    assert.doesNotMatch(log.slice(resumedAt), /"login\.granted"|"revoke\.sent"/, 'it granted or revoked nothing after waking');
    assert.equal((await cluster.status()).epoch, next.epoch);
    const { healthCheck } = await import('../support/grpc-raw');
    assert.equal(await healthCheck(oldAddress, 'nfsha.v1.SessionMaster'), 'NOT_SERVING', 'health reports SERVING only on the leader');
    cluster.assertSingleAdmission();
    assertNoLoginGrantedTwice(cluster);
    moved.close();
  });

  it('kill of the etcd raft leader does not disturb the master', async () => {
    const held = await cluster.connect(2, HOST_IP);
    const before = await leaderProc();
    const raft = await etcd.raftLeader();
    await raft.proc!.kill9();
    await waitFor('etcd elected a new raft leader', async () => (await etcd.raftLeader()).name !== raft.name, 15_000, 200);
    // Give the master several lease periods to be disturbed if it were going to be.
    for (let i = 0; i < 6; i++) {
      await held.roundTrip(`still served ${i}\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const after = await leaderProc();
    assert.equal(after.epoch, before.epoch, 'same leader term');
    assert.doesNotMatch(before.proc.log(), /"election\.deposed"/);
    assert.equal(held.closed, false);
    cluster.assertSingleAdmission();
    held.close();
  });

  it('a restarted leader rejoins as a candidate and does not lead', async () => {
    const first = await leaderProc();
    await first.proc.kill9();
    const next = await newLeader(first.epoch);
    cluster.masterProcs[first.index] = cluster.startMaster(first.index + 1);
    const { statusOf } = await import('../../cli/status-command');
    const s = await waitFor('restarted candidate names the leader', async () => {
      const r = await statusOf(cluster.masterAddresses[first.index], 1000, OPERATOR_TLS()).catch(() => undefined);
      return r?.leaderId ? r : undefined;
    }, 15_000, 100);
    assert.equal(s.leader, false);
    assert.equal(s.leaderId, next.id);
    const moved = await cluster.connect(1, HOST_IP);
    moved.close();
    cluster.assertSingleAdmission();
  });
});
