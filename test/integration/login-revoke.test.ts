import assert from 'node:assert/strict';
import { Cluster, waitFor } from '../support/cluster';
import { admissions } from '../support/invariant';

const HOST_IP = '127.0.9.1';

describe('Login Revoke across real processes (master + 3 followers + 3 gates)', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  beforeEach(async () => {
    cluster = await new Cluster({ followers: 3, hosts: { 'esx-9': HOST_IP } }).start();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.stop();
  });

  it('keeps one client admitted by exactly one gate while it moves between followers', async () => {
    const path = [1, 2, 3, 1, 3, 2];
    let previous: { gate: number; client: import('../support/cluster').TestClient } | undefined;
    for (const gate of path) {
      const client = await cluster.connect(gate, HOST_IP);
      if (previous) {
        await waitFor('old connection closed by revoke', () => previous!.client.closed);
      }
      const s = await cluster.status();
      const owner = s.clients.find((c) => c.clientId === 'host:esx-9');
      assert.equal(owner?.serverId, `scvm-${gate}`);
      previous = { gate, client };
    }
    previous!.client.close();
    cluster.assertSingleAdmission();
    const intervals = admissions(cluster.events()).filter((a) => a.client === 'host:esx-9');
    assert.equal(intervals.length, path.length, 'one admission per move');
    for (const a of intervals.slice(0, -1)) assert.match(a.dropWhy ?? '', /revoked/);
  });

  it('admits several connections of one client on one gate as one login', async () => {
    const a = await cluster.connect(2, HOST_IP);
    const b = await cluster.connect(2, HOST_IP);
    const s = await cluster.status();
    assert.equal(s.clients.length, 1);
    assert.equal(s.clients[0].serverId, 'scvm-2');
    a.close();
    await b.roundTrip('still served after one connection closed\n');
    b.close();
    await waitFor('logout after the last connection closed', async () => (await cluster.status()).clients.length === 0);
    const intervals = admissions(cluster.events());
    assert.equal(intervals.length, 1);
    assert.equal(intervals[0].dropWhy, 'client closed');
  });

  it('moves a released client without any revoke', async () => {
    const a = await cluster.connect(1, HOST_IP);
    a.close();
    await waitFor('logout', async () => (await cluster.status()).clients.length === 0);
    const b = await cluster.connect(3, HOST_IP);
    b.close();
    assert.doesNotMatch(cluster.master.log(), /revoke\.sent/);
  });
});
