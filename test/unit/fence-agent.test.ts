import assert from 'node:assert/strict';
import { silentLogger } from '../../common/log';
import { setSimulationMutants } from '../../common/mutants';
import { FenceAgent } from '../../master/fence-agent';
import { fakeClock } from '../support/fake-clock';

/**
 * What the fence agent's runs prove about a server's earlier sessions, so a
 * new follower of it is not told its predecessor is unproven after the
 * agent killed the whole SCVM (found by the swarm, seed 1872910914: the
 * new follower's revokes were held, the master condemned it and fenced the
 * SCVM again, and again).
 */
describe('fence agent: which sessions a whole-SCVM fence covers', () => {
  const server = { serverId: 'scvm-3', hostId: 'esx-3', storageIp: '10.10.0.23', mgmtIp: '' };

  /** A fence agent whose runs end when the test says (`finish`), on a fake clock. */
  function agent() {
    const clock = fakeClock();
    let finish: () => void = () => undefined;
    const a = new FenceAgent({
      argv: [], timeoutMs: 5000, clock, log: silentLogger(),
      run: (async () => {
        const startedAt = clock.now();
        await new Promise<void>((resolve) => { finish = resolve; });
        return { ok: true, startedAt, ms: clock.now() - startedAt, detail: 'killed' };
      }),
    });
    return { a, clock, finish: () => finish() };
  }

  /** A fence agent whose runs take 300 ms on a fake clock and are counted, at t=1000 ms, and a holder last renewed at 900 ms. */
  async function countingAgent() {
    const clock = fakeClock();
    let runs = 0;
    const a = new FenceAgent({
      argv: [], timeoutMs: 5000, clock, log: silentLogger(),
      run: async () => {
        runs++;
        const startedAt = clock.now();
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 300));
        return { ok: true, startedAt, ms: clock.now() - startedAt, detail: 'killed' };
      },
    });
    await clock.tickAsync(1000);
    const holder = { id: 's1', serverId: 'scvm-3', hostId: 'esx-3', storageIp: '', mgmtIp: '', openedAt: 100, renewedAt: 900 } as unknown as Parameters<FenceAgent['fence']>[0];
    return { a, clock, runs: () => runs, holder };
  }

  it('covers a session opened before the run and last renewed during it (its follower was there to be killed)', async () => {
    const { a, clock, finish } = agent();
    await clock.tickAsync(1000);
    const old = { id: 's1', serverId: 'scvm-3', openedAt: 100, renewedAt: 0 };
    const run = a.fenceServers([server], 'grace', () => []);
    await clock.tickAsync(50);
    old.renewedAt = clock.now(); // a keepalive during the run, before the kill landed
    await clock.tickAsync(150);
    finish();
    assert.equal(await run, true);
    assert.equal(a.isConfirmed(old), true, 'a login leaving it needs no second run');
    assert.equal(a.fencedAfterAll('scvm-3', [old]), true);
    setSimulationMutants(['master-fence-run-proves-only-silent-sessions']);
    try {
      assert.equal(a.isConfirmed(old), false, 'the mutant takes only a session silent before the run started');
      assert.equal(a.fencedAfterAll('scvm-3', [old]), true, 'an introduction is judged as before');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('two logins leaving one silent holder at once run the agent once: the second waits for the first run and finds the holder dead', async () => {
    const { a, clock, runs, holder } = await countingAgent();
    const first = a.fence(holder, 'host:esx-1 moves away');
    const second = a.fence(holder, 'host:esx-2 moves away');
    await clock.tickAsync(1000);
    assert.deepEqual(await Promise.all([first, second]), [true, true]);
    assert.equal(runs(), 1, 'a second run would kill the SCVM again after it came back up');
    setSimulationMutants(['master-fence-runs-overlap']);
    try {
      const other = { ...holder, id: 's2', serverId: 'scvm-4' } as typeof holder;
      await Promise.all([a.fence(other, 'a'), a.fence(other, 'b'), clock.tickAsync(1000)]);
      assert.equal(runs(), 3, 'the mutant runs once per login');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('a grace that ends while a login\'s run against a server is under way waits for that run and fences again only what it did not prove dead', async () => {
    const { a, clock, runs, holder } = await countingAgent();
    const login = a.fence(holder, 'host:esx-3 moves away');
    await clock.tickAsync(100);
    const grace = a.fenceServers([server], 'grace', () => [holder]);
    await clock.tickAsync(1000);
    assert.deepEqual(await Promise.all([login, grace]), [true, true]);
    assert.equal(runs(), 1, 'a second run would kill the SCVM again after it came back up (recipe agent-kill-in-grace-slow-agent)');
    // A session the run under way did not cover (opened after it started) is fenced again.
    const late = a.fence({ ...holder, id: 's2', openedAt: clock.now() - 10, renewedAt: clock.now() } as typeof holder, 'again');
    await clock.tickAsync(50);
    const successor = { ...holder, id: 's3', openedAt: clock.now(), renewedAt: clock.now() } as typeof holder;
    const grace2 = a.fenceServers([server], 'grace', () => [successor]);
    await clock.tickAsync(1000);
    assert.deepEqual(await Promise.all([late, grace2]), [true, true]);
    assert.equal(runs(), 3, 'the successor opened during the run under way: a run after it');
    setSimulationMutants(['master-grace-fence-ignores-run-under-way']);
    try {
      const other = { ...holder, id: 's4', serverId: 'scvm-4' } as typeof holder;
      await Promise.all([a.fence(other, 'a'), a.fenceServers([{ ...server, serverId: 'scvm-4' }], 'grace', () => [other]), clock.tickAsync(1000)]);
      assert.equal(runs(), 5, 'the mutant queues a second run behind the login\'s');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('does not cover a session opened after the run started (a successor), one renewed after the run returned, or a server never fenced', async () => {
    const { a, clock, finish } = agent();
    await clock.tickAsync(1000);
    const run = a.fenceServers([server], 'grace', () => []);
    await clock.tickAsync(100);
    const successor = { id: 's2', serverId: 'scvm-3', openedAt: clock.now(), renewedAt: clock.now() };
    await clock.tickAsync(100);
    finish();
    await run;
    assert.equal(a.fencedAfterAll('scvm-3', [successor]), false);
    assert.equal(a.isConfirmed(successor), false);
    const lateRenewal = { id: 's3', serverId: 'scvm-3', openedAt: 500, renewedAt: clock.now() + 1 };
    assert.equal(a.fencedAfterAll('scvm-3', [lateRenewal]), false);
    assert.equal(a.isConfirmed(lateRenewal), false);
    assert.equal(a.fencedAfterAll('scvm-9', []), false, 'no run against it');
  });
});
