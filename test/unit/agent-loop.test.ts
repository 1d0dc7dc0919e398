import assert from 'node:assert/strict';
import { Agent } from '../../agent/agent';
import type { MemberView } from '../../agent/decision';
import { DEFAULT_AGENT_OPTIONS } from '../../agent/options';
import { DryRunBackend } from '../../agent/routes/dry-run';
import { silentLogger } from '../../common/log';
import { fakeClock, flush, type FakeClock } from '../support/fake-clock';
import { FakeMembership } from '../support/fake-membership';

const M = (n: number): MemberView => ({ serverId: `scvm-${n}`, hostId: `esx-${n}`, storageIp: `10.10.0.2${n}`, mgmtIp: `10.20.0.2${n}` });

/** localProbeIntervalMs 500 unless said: the tests below count ticks of 500 ms; the fast local loop has its own. */
function setup(holdDownMs = 3000, localProbeIntervalMs = 500) {
  const clock: FakeClock = fakeClock();
  // Two loops may be due at one instant (the local probe and the tick): let
  // both finish what they do at that instant before the test looks.
  const tickAsync = clock.tickAsync;
  clock.tickAsync = async (ms) => { await tickAsync(ms); await flush(); };
  const down = new Set<string>();
  const backend = new DryRunBackend();
  const membership = new FakeMembership([M(1), M(2), M(3)]);
  const counts = { probes: 0 };
  const agent = new Agent(
    { ...DEFAULT_AGENT_OPTIONS, hostId: 'esx-2', localServerId: 'scvm-2', backend: 'dry-run', probeIntervalMs: 500, localProbeIntervalMs, missesToFail: 3, holdDownMs },
    backend,
    { clock, membership, log: silentLogger(), probe: async (ip, local) => { counts.probes++; return !down.has(local ? 'local' : ip); } },
  );
  /** The route's kind, read afresh (a getter: assert.equal narrows `backend.route.kind` for the rest of a test). */
  const kind = (): string => backend.route.kind;
  return { clock, down, backend, membership, agent, counts, kind };
}

describe('agent loop with a fake clock (fake probes, dry-run backend)', () => {
  it('reroutes on the third consecutive missed local probe, not before', async () => {
    const { clock, down, backend, agent } = setup();
    agent.start();
    await clock.tickAsync(1000);
    assert.equal(backend.route.kind, 'local');
    down.add('local');
    await clock.tickAsync(500); // miss 1
    await clock.tickAsync(500); // miss 2
    assert.equal(backend.route.kind, 'local');
    await clock.tickAsync(500); // miss 3
    assert.equal(backend.route.kind, 'remote');
    agent.stop();
  });

  it('leaves a dead local SCVM after three missed probes of its own 100 ms loop, between the 500 ms ticks', async () => {
    const { clock, down, agent, kind } = setup(3000, 100);
    agent.start();
    await clock.tickAsync(1000);
    assert.equal(kind(), 'local');
    await clock.tickAsync(10); // just after a tick and a local probe
    down.add('local');
    await clock.tickAsync(100); // miss 1
    await clock.tickAsync(100); // miss 2
    assert.equal(kind(), 'local', 'two misses are not enough');
    await clock.tickAsync(100); // miss 3: down, and the agent decides at once (no tick is due for 200 ms)
    assert.equal(kind(), 'remote');
    down.delete('local');
    await clock.tickAsync(2000);
    assert.equal(kind(), 'remote', 'failing back still waits the whole hold-down');
    await clock.tickAsync(1500);
    assert.equal(kind(), 'local');
    agent.stop();
  });

  it('leaves a local server the master unlisted after three looks of the 100 ms loop, between the 500 ms ticks', async () => {
    const { clock, membership, agent, kind } = setup(3000, 100);
    agent.start();
    await clock.tickAsync(1000);
    await clock.tickAsync(10);
    membership.emit('members', [M(1), M(3)]); // its follower's stream closed a second ago
    await clock.tickAsync(200);
    assert.equal(kind(), 'local', 'two looks are not enough');
    await clock.tickAsync(100);
    assert.equal(kind(), 'remote');
    agent.stop();
  });

  it('reroutes only after the local server is missing from the membership for N consecutive ticks', async () => {
    const { clock, backend, membership, agent } = setup();
    agent.start();
    await clock.tickAsync(1000);
    membership.emit('members', [M(1), M(3)]);
    await clock.tickAsync(500); // unlisted once
    await clock.tickAsync(500); // twice
    assert.equal(backend.route.kind, 'local');
    membership.emit('members', [M(1), M(2), M(3)]);
    await clock.tickAsync(500); // listed again: the streak is broken
    membership.emit('members', [M(1), M(3)]);
    await clock.tickAsync(1000);
    assert.equal(backend.route.kind, 'local');
    await clock.tickAsync(500); // third consecutive tick unlisted
    assert.equal(backend.route.kind, 'remote');
    agent.stop();
  });

  it('fails back only when the local server has been healthy for the whole hold-down', async () => {
    const { clock, down, backend, agent } = setup(3000);
    down.add('local');
    agent.start();
    await clock.tickAsync(1500);
    assert.equal(backend.route.kind, 'remote');
    down.delete('local');
    await clock.tickAsync(500); // local answers: healthy from this tick
    await clock.tickAsync(2500);
    assert.equal(backend.route.kind, 'remote', 'failed back before the hold-down');
    await clock.tickAsync(500);
    assert.equal(backend.route.kind, 'local');
    agent.stop();
  });

  it('restarts the hold-down when the local server blips during it', async () => {
    const { clock, down, backend, agent } = setup(3000);
    down.add('local');
    agent.start();
    await clock.tickAsync(1500);
    down.delete('local');
    await clock.tickAsync(2000);
    down.add('local');
    await clock.tickAsync(1500); // three misses: down again
    down.delete('local');
    await clock.tickAsync(2500);
    assert.equal(backend.route.kind, 'remote');
    await clock.tickAsync(1000);
    assert.equal(backend.route.kind, 'local');
    agent.stop();
  });

  it('repairs a route changed behind its back on the next tick, and reports routes to the master', async () => {
    const { clock, backend, membership, agent } = setup();
    agent.start();
    await clock.tickAsync(500);
    backend.route = { kind: 'remote', gateway: '10.10.0.21' };
    await clock.tickAsync(500);
    assert.equal(backend.route.kind, 'local');
    assert.ok(membership.reports.some((r) => r.route === 'local' && r.hostId === 'esx-2'));
    agent.stop();
  });

  it('adopts a valid existing route at start (static routes survive reboots on ESXi)', async () => {
    const { clock, down, backend, agent } = setup();
    down.add('local');
    backend.route = { kind: 'remote', gateway: M(3).storageIp };
    agent.start();
    await clock.tickAsync(2000);
    assert.deepEqual(backend.route, { kind: 'remote', gateway: M(3).storageIp }, 'kept the adopted target (stickiness)');
    agent.stop();
  });

  it('moves off its local server the moment the membership marks it leaving (maintenance): no tick, no probe', async () => {
    const { clock, backend, membership, agent, counts } = setup();
    agent.start();
    await clock.tickAsync(1000);
    assert.equal(backend.route.kind, 'local');
    const before = counts.probes;
    membership.emit('members', [M(1), { ...M(2), leaving: true }, M(3)]);
    await clock.tickAsync(0); // promise callbacks only: no probe interval passes
    assert.equal(backend.route.kind, 'remote');
    assert.equal(counts.probes, before);
    agent.stop();
  });

  it('fails back after the whole hold-down once maintenance ends, not before', async () => {
    const { clock, backend, membership, agent } = setup(3000);
    agent.start();
    await clock.tickAsync(1000);
    membership.emit('members', [M(1), { ...M(2), leaving: true }, M(3)]);
    await clock.tickAsync(5000);
    assert.equal(backend.route.kind, 'remote', 'stays off while in maintenance');
    membership.emit('members', [M(1), M(2), M(3)]);
    await clock.tickAsync(2500);
    assert.equal(backend.route.kind, 'remote', 'failed back within the hold-down');
    await clock.tickAsync(1000);
    assert.equal(backend.route.kind, 'local');
    agent.stop();
  });
});
