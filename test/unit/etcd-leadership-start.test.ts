import assert from 'node:assert/strict';
import type { CandidateKey, ElectionStore, StoreLease } from '../../master/election-store';
import { EtcdLeadership } from '../../master/etcd-leadership';
import { fakeClock, flush } from '../support/fake-clock';
import { silentLogger } from '../../common/log';
import { setSimulationMutants } from '../../common/mutants';
import type { Clock } from '../../common/clock';

/**
 * An in-memory ElectionStore that can be down (every call rejects, as etcd
 * without quorum does once the client's deadline passes).
 */
function memoryStore(): ElectionStore & { down: boolean; watches: number } {
  const kvs = new Map<string, CandidateKey>();
  let revision = 1;
  let lease = 0x100;
  const store = {
    down: false,
    watches: 0,
    async grantLease(): Promise<StoreLease> {
      if (store.down) throw new Error('etcd: deadline exceeded');
      const id = (lease++).toString(16);
      return { id, keepaliveOnce: async () => { if (store.down) throw new Error('etcd: deadline exceeded'); }, revoke: async () => undefined };
    },
    async putWithLease(key: string, value: string): Promise<number> {
      if (store.down) throw new Error('etcd: deadline exceeded');
      kvs.set(key, { key, value, createRevision: ++revision });
      return revision;
    },
    async listByCreate(prefix: string): Promise<CandidateKey[]> {
      if (store.down) throw new Error('etcd: deadline exceeded');
      return [...kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => a.createRevision - b.createRevision);
    },
    async watch(): Promise<{ cancel(): Promise<void> }> {
      if (store.down) throw new Error('etcd: deadline exceeded');
      store.watches++;
      return { cancel: async () => undefined };
    },
    async put(): Promise<void> { if (store.down) throw new Error('etcd: deadline exceeded'); },
    async getAll(): Promise<Record<string, string>> { return {}; },
    close(): void {},
  };
  return store;
}

describe('EtcdLeadership when etcd is down at start', () => {
  it('a candidate started while etcd has no quorum keeps trying, and leads once etcd is back (found by the simulation: etcd-quorum-loss, seed 9250)', async () => {
    const clock = fakeClock();
    const store = memoryStore();
    store.down = true;
    const leadership = new EtcdLeadership({ store, self: { id: 'm1', address: 'm1:7410' }, leaseTtlSeconds: 1, clock, log: silentLogger(), random: () => 0.5 });
    // Before the fix start() awaited the watch: it rejected, and nothing ever campaigned again.
    await leadership.start();
    await clock.tickAsync(2_000);
    assert.equal(leadership.isLeader(), false);
    store.down = false;
    await clock.tickAsync(2_000);
    await flush();
    assert.equal(leadership.isLeader(), true, 'elected once etcd answers again');
    assert.equal(store.watches, 1, 'the watch is set up once etcd answers');
    await leadership.stop();
  });
});

/**
 * The memory store on a clock: candidate reads take `readMs`, keepalives
 * fail while `keepalivesFail`, and the test can fire the election watch.
 */
function slowStore(clock: Clock): ElectionStore & { readMs: number; keepalivesFail: boolean; fireWatch: () => void } {
  const base = memoryStore();
  let changed: () => void = () => undefined;
  const store = Object.assign(base, {
    readMs: 0,
    keepalivesFail: false,
    fireWatch: () => changed(),
    async grantLease(): Promise<StoreLease> {
      return { id: 'a1', keepaliveOnce: async () => { if (store.keepalivesFail) throw new Error('etcd: deadline exceeded'); }, revoke: async () => undefined };
    },
    async watch(_prefix: string, onChange: () => void): Promise<{ cancel(): Promise<void> }> {
      changed = onChange;
      return { cancel: async () => undefined };
    },
  });
  const list = base.listByCreate.bind(base);
  store.listByCreate = async (prefix: string) => {
    const kvs = await list(prefix);
    if (store.readMs) await new Promise<void>((resolve) => clock.setTimeout(resolve, store.readMs));
    return kvs;
  };
  return store;
}

describe('EtcdLeadership stepping down', () => {
  /** Elects a leader whose keepalives then fail, and has a candidates read out when its lease runs out; returns the epochs it was elected with. */
  async function stepDownDuringRead(): Promise<number[]> {
    const clock = fakeClock();
    const store = slowStore(clock);
    const leadership = new EtcdLeadership({ store, self: { id: 'm1', address: 'm1:7410' }, leaseTtlSeconds: 1, clock, log: silentLogger(), random: () => 0.5 });
    const epochs: number[] = [];
    leadership.on('elected', (e) => epochs.push(e));
    store.keepalivesFail = true;
    await leadership.start();
    await clock.tickAsync(100);
    assert.equal(leadership.isLeader(), true);
    // The lease runs out at 900 ms (10% early); a read sent at 850 returns at 950.
    store.readMs = 100;
    await clock.tickAsync(750);
    store.fireWatch();
    await clock.tickAsync(200);
    await flush();
    await leadership.stop();
    return epochs;
  }

  it('a leader that steps down while a candidates read is out does not lead again on the same key: that would be a second term with the same epoch (found by the simulation: seed 583294829, a token went back from 20.3 to 20.1)', async () => {
    const epochs = await stepDownDuringRead();
    assert.equal(epochs.length, 1, `elected with epochs ${epochs.join(', ')}`);
  });

  it('with mutant election-leads-again-on-same-key on, it leads again with the same epoch (the fix\'s exact revert)', async () => {
    setSimulationMutants(['election-leads-again-on-same-key']);
    try {
      const epochs = await stepDownDuringRead();
      assert.equal(epochs.length, 2);
      assert.equal(epochs[0], epochs[1]);
    } finally {
      setSimulationMutants([]);
    }
  });
});
