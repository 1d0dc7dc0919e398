import assert from 'node:assert/strict';
import type { CandidateKey, ElectionStore, StoreLease } from '../../master/election-store';
import { EtcdLeadership } from '../../master/etcd-leadership';
import { fakeClock, flush } from '../support/fake-clock';
import { silentLogger } from '../../common/log';

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
