import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { silentLogger } from '../../common/log';
import { Metrics } from '../../common/metrics';
import { setSimulationMutants } from '../../common/mutants';
import type { LeaderInfo, Leadership, LeadershipEvents, RegistryStore } from '../../master/leadership';
import { MasterMetrics } from '../../master/metrics';
import { DEFAULT_MASTER_OPTIONS } from '../../master/options';
import { MasterRuntime } from '../../master/runtime';
import { fakeClock, flush } from '../support/fake-clock';

/** A leadership the test drives: isLeader() as set, events as emitted. */
class TestLeadership extends EventEmitter<LeadershipEvents> implements Leadership {
  readonly leaseMs = 1000;
  leading = false;
  private readonly self: LeaderInfo = { id: 'm1', address: 'm1:7410' };
  constructor(readonly registry: RegistryStore) {
    super();
  }
  async start(): Promise<void> { /* driven by the test */ }
  async stop(): Promise<void> { /* driven by the test */ }
  isLeader(): boolean { return this.leading; }
  leader(): LeaderInfo | undefined { return this.leading ? this.self : undefined; }
}

function setup() {
  let loaded!: () => void;
  const registry: RegistryStore = {
    load: () => new Promise((resolve) => { loaded = () => resolve({ servers: [], hosts: [] }); }),
    saveServer: async () => undefined,
    saveHost: () => undefined,
  };
  const leadership = new TestLeadership(registry);
  const log = silentLogger();
  const runtime = new MasterRuntime({ ...DEFAULT_MASTER_OPTIONS, id: 'm1', listen: 'm1:7410', tls: { insecure: true } }, leadership, { setStatus: () => undefined }, {
    clock: fakeClock(), log, metrics: new MasterMetrics(log, new Metrics('master', { processMetrics: false })),
  });
  return { leadership, runtime, load: () => loaded() };
}

/**
 * Elected at epoch 50; then a stall: the lease runs out on this clock and
 * the registry load's answer is handled first, before a keepalive answered
 * before the lapse renews the lease (leading again).
 */
async function electedThenLapsedDuringLoad() {
  const t = setup();
  t.leadership.leading = true;
  t.leadership.emit('elected', 50);
  await flush();
  t.leadership.leading = false;
  t.load();
  await flush();
  return t;
}

describe('a new leader\'s term (MasterRuntime)', () => {
  it('is built though the lease lapsed for a moment while the registry loaded, and serves once it is renewed (simulation seed 398908720)', async () => {
    const { leadership, runtime } = await electedThenLapsedDuringLoad();
    assert.equal(runtime.core(), undefined, 'a term acts only while isLeader() holds');
    leadership.leading = true;
    assert.ok(runtime.core(), 'the leader kept the election but built no term: it refuses every call for good');
    assert.equal(runtime.core()!.epoch, 50);
  });

  it('is not built when the leadership stepped down while the registry loaded', async () => {
    const { leadership, runtime, load } = setup();
    leadership.leading = true;
    leadership.emit('elected', 50);
    await flush();
    leadership.leading = false;
    leadership.emit('deposed', 'election lease not renewed in time');
    load();
    await flush();
    leadership.leading = true; // a later term would come with its own 'elected'
    assert.equal(runtime.core(), undefined);
  });

  it('with mutant master-term-given-up-on-lapse on, gives the term up on the lapse and never builds it (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-term-given-up-on-lapse']);
    try {
      const { leadership, runtime } = await electedThenLapsedDuringLoad();
      leadership.leading = true;
      assert.equal(runtime.core(), undefined);
    } finally {
      setSimulationMutants([]);
    }
  });
});
