import assert from 'node:assert/strict';
import { Cluster, waitFor } from '../support/cluster';
import { admissions, type Admission } from '../support/invariant';

const HOST_IP = '127.0.9.1';
const CLIENT = 'host:esx-9';

function admissionsOf(cluster: Cluster, gate: string): Admission[] {
  return admissions(cluster.events()).filter((a) => a.client === CLIENT && a.gate === gate);
}

describe('faults: the old holder stops serving before the client moves', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.stop();
  });

  // These clusters run without fence commands (the loopback default), so
  // nothing proves a silent holder's NFS server stopped: its client is held
  // until an operator confirms the fence (issue 18, safe by default).
  it('a follower cut off from the master by a partition has fenced itself; its client is held until an operator confirms the fence, then moves', async () => {
    cluster = await new Cluster({ followers: 3, hosts: { 'esx-9': HOST_IP }, proxied: [2] }).start();
    const held = await cluster.connect(2, HOST_IP);
    cluster.proxies.get(2)!.blackhole();
    const hold = await cluster.heldBy(1, HOST_IP, CLIENT, 'scvm-2');
    assert.match(hold.reason, /fence-confirm scvm-2/);
    await waitFor('old connection closed', () => held.closed);
    assert.match(await cluster.fenceConfirm('scvm-2'), /fence of scvm-2 confirmed/);
    assert.match(cluster.master.log(), /"fence\.confirmed".*"operator":"operator\/test"/);
    const moved = await cluster.connect(1, HOST_IP);
    const [old] = admissionsOf(cluster, 'gate-2');
    const [now] = admissionsOf(cluster, 'gate-1');
    assert.match(old.dropWhy ?? '', /fenced|lease stop point/);
    assert.ok(old.to < now.from, `gate-2 dropped at ${old.to}, gate-1 admitted at ${now.from}`);
    // It fences itself when its lease runs out, which may come after the
    // operator's confirmation and the move.
    await waitFor('scvm-2 fenced itself at its lease end', () => /"follower\.fenced"/.test(cluster.followers[1].log()));
    cluster.assertSingleAdmission();
    // Healed, the follower opens a fresh session and serves again.
    cluster.proxies.get(2)!.heal();
    await cluster.waitLive(3);
    moved.close();
  });

  it('a follower frozen with SIGSTOP has its NFS layer stop at the lease deadline; its client is held until an operator confirms the fence', async () => {
    cluster = await new Cluster({ followers: 3, hosts: { 'esx-9': HOST_IP } }).start();
    const held = await cluster.connect(3, HOST_IP);
    cluster.followers[2].signal('SIGSTOP');
    await cluster.heldBy(1, HOST_IP, CLIENT, 'scvm-3');
    await waitFor('frozen follower\'s gate dropped the client', () => held.closed);
    await cluster.fenceConfirm('scvm-3');
    const moved = await cluster.connect(1, HOST_IP);
    const [old] = admissionsOf(cluster, 'gate-3');
    const [now] = admissionsOf(cluster, 'gate-1');
    assert.match(old.dropWhy ?? '', /lease stop point/, 'the gate stopped on its own: its follower was frozen');
    assert.ok(old.to < now.from, `gate-3 dropped at ${old.to}, gate-1 admitted at ${now.from}`);
    cluster.assertSingleAdmission();
    cluster.followers[2].signal('SIGCONT');
    await cluster.waitLive(3);
    // The woken follower checked its lease and does not serve on the old session.
    const status = await cluster.status();
    assert.equal(status.clients.find((c) => c.clientId === CLIENT)?.serverId, 'scvm-1');
    moved.close();
  });

  it('kill -9 of a follower: its gate drops the client, the client is held until an operator confirms the fence, and a restarted follower rejoins', async () => {
    cluster = await new Cluster({ followers: 3, hosts: { 'esx-9': HOST_IP } }).start();
    const held = await cluster.connect(1, HOST_IP);
    await cluster.followers[0].kill9();
    await waitFor('gate-1 dropped its clients', () => held.closed);
    // The gate logs the drop as it closes the connection: the client may see the close first.
    const old = await waitFor('gate-1 logged the drop', () => admissionsOf(cluster, 'gate-1').find((a) => a.dropWhy !== undefined));
    assert.match(old.dropWhy ?? '', /gate stream ended/, JSON.stringify(cluster.events()));
    await cluster.heldBy(2, HOST_IP, CLIENT, 'scvm-1');
    assert.equal((await cluster.status()).clients.find((c) => c.clientId === CLIENT)?.serverId, 'scvm-1', 'still held by the dead follower');
    await cluster.fenceConfirm('scvm-1');
    const moved = await cluster.connect(2, HOST_IP);
    const [now] = admissionsOf(cluster, 'gate-2');
    assert.ok(old.to < now.from);
    cluster.followers[0] = cluster.startFollower(1);
    await cluster.waitLive(3);
    // The gate admits again once it watches the new follower's revoke stream.
    await waitFor('gate-1 serving for the restarted follower', () => cluster.gates[0].log().split('"gate.serving"').length - 1 >= 2);
    const again = await cluster.connect(1, HOST_IP);
    await waitFor('client revoked on gate-2', () => moved.closed);
    cluster.assertSingleAdmission();
    again.close();
  });
});
