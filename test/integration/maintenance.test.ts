import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { CLI, Cluster, waitFor } from '../support/cluster';
import { tlsArgs } from '../support/pki';

/** Runs the nfsha CLI as an operator; resolves with its exit code and output (it never rejects). */
function nfsha(cluster: Cluster, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--master', cluster.masterAddresses.join(','), ...tlsArgs('operator', 'test')], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('maintenance mode (real processes: a master, two followers and gates, the nfsha CLI)', function () {
  this.timeout(60_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await new Cluster({ followers: 2, hosts: { 'esx-9': '127.0.9.1' } }).start();
  });

  after(async () => {
    await cluster?.stop();
  });

  it('enter marks the server leaving in the membership it pushes, and --wait returns once its host moved, naming the move', async () => {
    const before = await cluster.connect(1, '127.0.9.1');
    await before.roundTrip('on scvm-1');
    const waiting = nfsha(cluster, ['maintenance', 'enter', 'scvm-1', '--reason', 'upgrade to 0.9', '--wait', '--timeout', '30']);
    await waitFor('scvm-1 in maintenance in status', async () => (await cluster.status()).maintenance.find((m) => m.serverId === 'scvm-1'));
    await waitFor('the membership marks scvm-1 leaving', () => /"ev":"membership.changed"[^\n]*"leaving":\["scvm-1"\]/.test(cluster.master.log()));
    const status = await cluster.status();
    assert.equal(status.maintenance[0].operator, 'operator/test');
    assert.equal(status.maintenance[0].reason, 'upgrade to 0.9');
    assert.equal(status.maintenance[0].clients, 1);
    // The host's agent moves it (no agent runs here: the test connects the host to scvm-2's gate, as its new route would).
    const after = await cluster.connect(2, '127.0.9.1');
    await after.roundTrip('on scvm-2');
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /scvm-1 is now in maintenance; 1 host still served there/);
    assert.match(r.stdout, /host:esx-9 moved to scvm-2 after [\d.]+ s \(its login waited \d+ ms\)/);
    before.close();
    after.close();
    cluster.assertSingleAdmission();
  });

  it('entering twice changes nothing, and exit ends it once', async () => {
    const again = await nfsha(cluster, ['maintenance', 'enter', 'scvm-1']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /scvm-1 was already in maintenance/);
    assert.equal((await cluster.status()).maintenance[0].reason, 'upgrade to 0.9', 'a second enter replaced the record');
    const exit = await nfsha(cluster, ['maintenance', 'exit', 'scvm-1']);
    assert.match(exit.stdout, /scvm-1 left maintenance/);
    assert.deepEqual((await cluster.status()).maintenance, []);
    const twice = await nfsha(cluster, ['maintenance', 'exit', 'scvm-1']);
    assert.match(twice.stdout, /scvm-1 was not in maintenance/);
  });

  it('the last healthy server is refused (nothing changes) unless --force, which names the hosts left with no server', async () => {
    const host = await cluster.connect(1, '127.0.9.1');
    await host.roundTrip('on scvm-1');
    const other = await nfsha(cluster, ['maintenance', 'enter', 'scvm-2']);
    assert.equal(other.code, 0, other.stderr);
    const refused = await nfsha(cluster, ['maintenance', 'enter', 'scvm-1']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /scvm-1 is the last live Access Server with working NFS out of maintenance: entering would leave host:esx-9 with no server; nothing changed \(force it: --force, or "force": true over HTTPS\)/);
    assert.deepEqual((await cluster.status()).maintenance.map((m) => m.serverId), ['scvm-2'], 'a refused enter changed the maintenance');
    const forced = await nfsha(cluster, ['maintenance', 'enter', 'scvm-1', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /warning \(--force\): no other live server with working NFS is out of maintenance; host:esx-9 will have no server until scvm-1 leaves maintenance/);
    assert.deepEqual((await cluster.status()).maintenance.map((m) => m.serverId), ['scvm-1', 'scvm-2']);
    assert.match(cluster.master.log(), /"ev":"maintenance.entered"[^\n]*"forced":true,"unserved":\["host:esx-9"\]/);
    for (const s of ['scvm-1', 'scvm-2']) assert.equal((await nfsha(cluster, ['maintenance', 'exit', s])).code, 0);
    host.close();
  });

  it('--wait fails at its timeout naming each host still there and why; an unknown server is refused and nothing changes', async () => {
    const held = await cluster.connect(2, '127.0.9.1');
    await held.roundTrip('still on scvm-2');
    const r = await nfsha(cluster, ['maintenance', 'enter', 'scvm-2', '--wait', '--timeout', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /scvm-2 still serves 1 host after 1 s:\n {2}host:esx-9: the agent of esx-9 is not connected to the master/);
    await nfsha(cluster, ['maintenance', 'exit', 'scvm-2']);
    const unknown = await nfsha(cluster, ['maintenance', 'enter', 'scvm-7']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /scvm-7 is not known to this master/);
    assert.deepEqual((await cluster.status()).maintenance, []);
    held.close();
  });
});

describe('graceful follower stop (real processes: SIGTERM to a follower with a host)', function () {
  this.timeout(60_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await new Cluster({ followers: 2, hosts: { 'esx-9': '127.0.9.1', 'esx-8': '127.0.8.1' }, followerArgs: ['--graceful-stop-ms', '4000'] }).start();
  });

  after(async () => {
    await cluster?.stop();
  });

  it('lists its server leaving, waits until its host moved (one revoke and drain, no wait-out), then exits 0', async () => {
    const before = await cluster.connect(1, '127.0.9.1');
    await before.roundTrip('on scvm-1');
    const follower = cluster.followers[0];
    const exited = new Promise<number | null>((resolve) => follower.child.once('exit', (code) => resolve(code)));
    follower.signal('SIGTERM');
    await waitFor('the membership marks scvm-1 leaving', () => /"ev":"membership.changed"[^\n]*"leaving":\["scvm-1"\]/.test(cluster.master.log()));
    assert.equal(follower.child.exitCode, null, 'exited before its host moved');
    // The host's agent would move it now; the test connects it to scvm-2's gate as its new route would.
    const after = await cluster.connect(2, '127.0.9.1');
    await after.roundTrip('on scvm-2');
    assert.equal(await exited, 0);
    assert.match(follower.log(), /"ev":"follower.stop.moved"[^\n]*"clients":\["host:esx-9"\]/);
    const moved = (await cluster.status()).clients.find((c) => c.clientId === 'host:esx-9')!;
    assert.equal(moved.serverId, 'scvm-2');
    assert.ok(moved.loginMs < 2000, `the login waited ${moved.loginMs} ms: a wait-out, not a revoke and drain`);
    before.close();
    after.close();
    cluster.assertSingleAdmission();
  });

  it('a host that does not move within --graceful-stop-ms is logged, and the follower exits anyway', async () => {
    const held = await cluster.connect(2, '127.0.8.1');
    await held.roundTrip('on scvm-2');
    const follower = cluster.followers[1];
    const exited = new Promise<number | null>((resolve) => follower.child.once('exit', (code) => resolve(code)));
    follower.signal('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(follower.log(), /"ev":"follower.stop.unmoved"[^\n]*"clients":\[[^\]]*"host:esx-8"[^\]]*\][^\n]*"why":"not moved within 4000 ms"/);
    held.close();
  });
});
