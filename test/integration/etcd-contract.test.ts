import assert from 'node:assert/strict';
import { etcdConnection } from '../../master/etcd-client';
import { Etcd3Store, type ElectionStore } from '../../master/election-store';
import { EtcdCluster, requireEtcd } from '../support/etcd';
import { tlsOf } from '../support/pki';
import { SimEtcd } from '../sim/etcd-model';
import { Kernel, Machine, SimProcess } from '../sim/kernel';

/**
 * The simulation's etcd model must behave as etcd does where the election
 * and the registry rely on it: the same scenarios against a real etcd (mTLS,
 * with the masters' access control) and against test/sim/etcd-model.ts.
 */

interface Harness {
  store(): ElectionStore;
  /** Lets `ms` of (real or virtual) time pass. */
  wait(ms: number): Promise<void>;
  /** Runs `p` to completion (on virtual time, the kernel must run meanwhile). */
  run<T>(p: Promise<T>): Promise<T>;
  prefix: string;
}

let unique = 0;

function realHarness(etcd: () => EtcdCluster): Harness {
  const stores: ElectionStore[] = [];
  return {
    prefix: `nfsha/contract-${process.pid}-${++unique}/`,
    store: () => {
      const s = new Etcd3Store(etcdConnection(etcd().endpoints, tlsOf('master', 'm1')));
      stores.push(s);
      return s;
    },
    wait: (ms) => new Promise((r) => setTimeout(r, ms)),
    run: (p) => p,
  };
}

function simHarness(): Harness {
  const kernel = new Kernel(11);
  const model = new SimEtcd(kernel, () => kernel.rng.between(0.2, 3));
  let n = 0;
  const run = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    let value: T | undefined;
    let error: unknown;
    p.then((v) => { done = true; value = v; }, (e) => { done = true; error = e; });
    while (!done) await kernel.runUntil(kernel.now + 1, () => undefined);
    if (error) throw error;
    return value as T;
  };
  return {
    prefix: 'nfsha/contract/',
    store: () => model.client(new SimProcess(kernel, `m${++n}`, new Machine(`m${n}`, 0, 1))),
    wait: (ms) => kernel.runUntil(kernel.now + ms, () => undefined),
    run,
  };
}

describe('etcd contract: the election store on a real etcd and in the simulation (needs etcd-server)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster | undefined;

  before(async function () {
    requireEtcd();
    etcd = await new EtcdCluster(1).start();
  });
  after(async () => { await etcd?.stop(); });

  for (const [name, make] of [['real etcd', () => realHarness(() => etcd!)], ['the model', simHarness]] as const) {
    describe(name, () => {
      it('keys put with leases come back oldest create revision first, and the revision of a put is its create revision', async () => {
        const h = make();
        const a = h.store();
        const b = h.store();
        const la = await h.run(a.grantLease(5));
        const lb = await h.run(b.grantLease(5));
        const ra = await h.run(a.putWithLease(`${h.prefix}election/${la.id}`, 'a', la));
        const rb = await h.run(b.putWithLease(`${h.prefix}election/${lb.id}`, 'b', lb));
        assert.ok(rb > ra, 'a later put has a higher revision');
        const list = await h.run(a.listByCreate(`${h.prefix}election/`));
        assert.deepEqual(list.map((k) => k.value), ['a', 'b']);
        assert.deepEqual(list.map((k) => k.createRevision), [ra, rb]);
        await h.run(la.revoke());
        await h.run(lb.revoke());
      });

      it('a lease not kept alive expires with its keys, and a watcher hears of it; a kept one stays', async () => {
        const h = make();
        const a = h.store();
        const kept = await h.run(a.grantLease(2));
        const lost = await h.run(a.grantLease(2));
        await h.run(a.putWithLease(`${h.prefix}election/kept`, 'k', kept));
        await h.run(a.putWithLease(`${h.prefix}election/lost`, 'l', lost));
        let changes = 0;
        const w = await h.run(a.watch(`${h.prefix}election/`, () => { changes++; }));
        for (let i = 0; i < 8; i++) {
          await h.wait(500);
          await h.run(kept.keepaliveOnce(1000));
        }
        const left = await h.run(a.listByCreate(`${h.prefix}election/`));
        assert.deepEqual(left.map((k) => k.key.slice(h.prefix.length)), ['election/kept']);
        assert.ok(changes >= 1, 'the watcher heard the expiry');
        await assert.rejects(h.run(lost.keepaliveOnce(1000)), 'a keepalive for an expired lease fails');
        await h.run(w.cancel());
        await h.run(kept.revoke());
      });

      it('revoking a lease deletes its keys at once; plain keys are read back by prefix', async () => {
        const h = make();
        const a = h.store();
        const l = await h.run(a.grantLease(30));
        await h.run(a.putWithLease(`${h.prefix}election/x`, 'x', l));
        await h.run(l.revoke());
        assert.deepEqual(await h.run(a.listByCreate(`${h.prefix}election/`)), []);
        await h.run(a.put(`${h.prefix}registry/servers/scvm-1`, '{"serverId":"scvm-1"}'));
        await h.run(a.put(`${h.prefix}registry/servers/scvm-2`, '{"serverId":"scvm-2"}'));
        const all = await h.run(a.getAll(`${h.prefix}registry/servers/`));
        assert.deepEqual(Object.values(all).sort(), ['{"serverId":"scvm-1"}', '{"serverId":"scvm-2"}']);
      });
    });
  }
});
