import assert from 'node:assert/strict';
import { Cluster, waitFor } from '../support/cluster';
import { RpcTestClient, callRecord } from '../support/rpc-stand-in';
import type { Admission } from '../support/invariant';

const HOST_A = '127.0.9.1';
const HOST_B = '127.0.9.2';
const hosts = { 'esx-9': HOST_A, 'esx-8': HOST_B };

/** Calls a client sent, as the stand-in NFS server behind gate i executed them, by time. */
function executedFrom(cluster: Cluster, i: number, client: RpcTestClient): number[] {
  const xids = new Set(client.sent);
  return cluster.executions(i).filter((e) => xids.has(e.xid)).map((e) => e.t);
}

/**
 * Waits until gate-1 has forwarded n calls to its stopped NFS server (they sit
 * unread in the server's socket): only then are they in flight at the gate, which
 * is what a revoke must drain or fence. Sending is not enough; under load the gate
 * may not have read them yet, and a revoke then finds nothing to drain.
 */
async function forwardedToHungServer(cluster: Cluster, n: number): Promise<void> {
  const bytes = n * callRecord(0, 64).length;
  await waitFor(`gate-1 forwarded ${n} calls to its stopped NFS server`, () => cluster.nfsUnreadBytes(1) >= bytes);
}

function servicesOf(cluster: Cluster, gate: string, client = 'host:esx-9'): Admission[] {
  return cluster.services().filter((a) => a.client === client && a.gate === gate);
}

describe('drain before ack: no request of a revoked holder outlives the revoke (real processes, ONC RPC stand-in NFS servers)', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.stop();
  });

  it('acks a revoke only after the old NFS server ran every call it had been sent: the new owner is admitted after the last of them', async () => {
    cluster = await new Cluster({ followers: 2, hosts, rpcBackend: { delayMs: 600 } }).start();
    const a = new RpcTestClient(HOST_A, cluster.gatePorts[0]);
    await a.roundTrip();
    a.send(5);
    // The host moves to gate-2 while gate-1's server still has 5 calls to run.
    const moved = new RpcTestClient(HOST_A, cluster.gatePorts[1], 1000);
    await moved.roundTrip();
    const stale = executedFrom(cluster, 1, a);
    assert.equal(stale.length, 6, 'the old server ran the first call and the 5 in flight');
    const [now] = servicesOf(cluster, 'gate-2');
    assert.ok(now.from > Math.max(...stale), `gate-2 admitted at ${now.from}, after the old server's last call at ${Math.max(...stale)}`);
    const [old] = servicesOf(cluster, 'gate-1');
    assert.equal(old.pending, 5, 'the drop counted the 5 calls in flight');
    assert.match(cluster.gates[0].log(), /"gate\.revoke\.drained".*"calls":5/);
    cluster.assertSingleAdmission();
    a.close();
    moved.close();
  });

  it('a holder that drains for longer than the revoke ack timeout keeps its session: its other clients do not notice', async () => {
    cluster = await new Cluster({ followers: 2, hosts, rpcBackend: { delayMs: 1200 } }).start();
    const before = (await cluster.status()).sessions.find((s) => s.serverId === 'scvm-1')!.sessionId;
    const started = Number(process.hrtime.bigint()) / 1e6;
    const a = new RpcTestClient(HOST_A, cluster.gatePorts[0]);
    const b = new RpcTestClient(HOST_B, cluster.gatePorts[0], 5000);
    await Promise.all([a.roundTrip(), b.roundTrip()]);
    a.send(3);
    const moving = new RpcTestClient(HOST_A, cluster.gatePorts[1], 1000);
    const bKeepsGoing = (async () => { for (let k = 0; k < 3; k++) await b.roundTrip(); })();
    await moving.roundTrip();
    await bKeepsGoing;
    assert.equal(b.closed, false, 'the other client of the draining server kept its connection');
    const after = (await cluster.status()).sessions.find((s) => s.serverId === 'scvm-1' && s.state === 'live')!;
    assert.equal(after.sessionId, before, 'same session: not condemned');
    assert.doesNotMatch(cluster.master.log(), /"session\.condemned"/);
    assert.doesNotMatch(cluster.followers[0].log(), /"follower\.fenced"/);
    assert.deepEqual(cluster.fences().filter((f) => f.t > started), [], 'no NFS server fenced');
    const [now] = servicesOf(cluster, 'gate-2');
    assert.ok(now.from > Math.max(...executedFrom(cluster, 1, a)), 'admitted after the drained calls ran');
    cluster.assertSingleAdmission();
    for (const c of [a, b, moving]) c.close();
  });

  it('a hung NFS server is fenced before the revoke is acked: its calls never run, and the new owner is admitted after it is gone', async () => {
    cluster = await new Cluster({ followers: 2, hosts, rpcBackend: { delayMs: 0 } }).start();
    const a = new RpcTestClient(HOST_A, cluster.gatePorts[0]);
    await a.roundTrip();
    const hung = cluster.nfsPid(1);
    cluster.signalNfs(1, 'SIGSTOP');
    a.send(3);
    await forwardedToHungServer(cluster, 3);
    const moving = new RpcTestClient(HOST_A, cluster.gatePorts[1], 1000);
    await moving.roundTrip();
    const fences = cluster.fences().filter((f) => f.label === 'gate-1' && Number(f.pid) === hung);
    assert.ok(fences.length >= 1, 'gate-1\'s NFS server was fenced');
    const [now] = servicesOf(cluster, 'gate-2');
    assert.ok(now.from > fences[0].t, `gate-2 admitted at ${now.from}, after the fence completed at ${fences[0].t}`);
    assert.equal(executedFrom(cluster, 1, a).length, 1, 'only the call answered before the hang ever ran');
    assert.match(cluster.gates[0].log(), /"gate\.revoke\.drain_timeout"/);
    cluster.assertSingleAdmission();
    // Its supervisor restarted it; hung again, the follower reports its NFS service down.
    await waitFor('a new NFS server', () => cluster.nfsPid(1) !== hung);
    cluster.signalNfs(1, 'SIGSTOP');
    await waitFor('scvm-1 reported with NFS down', async () => (await cluster.status()).sessions.some((s) => s.serverId === 'scvm-1' && s.nfs === 'down'));
    a.close();
    moving.close();
  });

  it('a frozen follower\'s gate stops at the lease stop point and fences its NFS server at deadline − E: the calls it had sent never run after the client moved', async () => {
    cluster = await new Cluster({ followers: 2, hosts, rpcBackend: { delayMs: 0 } }).start();
    const a = new RpcTestClient(HOST_A, cluster.gatePorts[0]);
    await a.roundTrip();
    const hung = cluster.nfsPid(1);
    cluster.signalNfs(1, 'SIGSTOP');
    a.send(4);
    await forwardedToHungServer(cluster, 4);
    cluster.followers[0].signal('SIGSTOP');
    const moving = new RpcTestClient(HOST_A, cluster.gatePorts[1], 1000);
    await moving.roundTrip(20_000);
    const fences = cluster.fences().filter((f) => f.label === 'gate-1' && Number(f.pid) === hung);
    assert.ok(fences.length >= 1, 'gate-1\'s NFS server was fenced by the gate on its own');
    const [old] = servicesOf(cluster, 'gate-1');
    const [now] = servicesOf(cluster, 'gate-2');
    assert.match(old.dropWhy ?? '', /lease stop point/);
    assert.ok(now.from > fences[0].t, 'admitted after the fence');
    assert.equal(executedFrom(cluster, 1, a).length, 1);
    cluster.assertSingleAdmission();
    cluster.followers[0].signal('SIGCONT');
    a.close();
    moving.close();
  });
});
