import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Cluster, freePort } from '../support/cluster';

// The harness every real-process test stands on. A fresh-clone CI run once
// failed a cluster's start ("cannot reach master ... ECONNRESET": its port was
// answered by another listener) and then never ended: the half-started
// cluster's children held mocha open until CI's 90 min limit.
describe('test harness: ports and a cluster that fails to start (real processes)', function () {
  this.timeout(30_000);

  it('freePort hands out each port once, below the kernel\'s ephemeral range, and free to bind', async () => {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    assert.equal(new Set(ports).size, ports.length, 'a port handed out twice');
    assert.ok(ports.every((p) => p < low), `a port inside the ephemeral range (from ${low})`);
    // An ephemeral listener never lands on one of them.
    for (let i = 0; i < 50; i++) {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const port = (s.address() as net.AddressInfo).port;
      await new Promise((r) => s.close(r));
      assert.ok(!ports.includes(port));
    }
  });

  it('a cluster whose master exits at start fails at once, naming it with its log, and leaves no process running', async () => {
    const cluster = new Cluster({ followers: 1, masterArgs: ['--no-such-flag'] });
    // Not a timeout: the start notices the exit instead of waiting for sessions.
    await assert.rejects(cluster.start(), (e: Error) => /^master exited while the cluster started/.test(e.message) && /no-such-flag/.test(e.message));
    for (const p of cluster.procs) assert.ok(p.child.exitCode !== null || p.child.signalCode !== null, `${p.name} still running`);
    assert.ok(!fs.existsSync(cluster.dir), 'its directory was left behind');
  });
});
