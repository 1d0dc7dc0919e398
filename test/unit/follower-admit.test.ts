import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { setSimulationMutants } from '../../common/mutants';
import type { GateReport__Output } from '../../gen/nfsha/v1/GateReport';
import { silentLogger } from '../../common/log';
import type { LoginReply__Output } from '../../gen/nfsha/v1/LoginReply';
import { fakeClock, flush } from '../support/fake-clock';

/** A follower with a live lease, one NFS layer watching, and a master the test answers by hand. */
function follower(opts: { watcher?: boolean } = {}) {
  const clock = fakeClock();
  const f = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-1', hostId: 'esx-1', master: '127.0.0.1:1' }, clock, silentLogger());
  const logins: Array<{ address: string; answer: (r: Partial<LoginReply__Output>) => void }> = [];
  const logouts: string[] = [];
  f.session.login = (address: string) => new Promise((resolve) => {
    logins.push({ address, answer: (r) => resolve({ clientId: 'host:esx-9', token: { epoch: 5, sequence: 1 }, revoked: 0, alreadyOwned: false, ...r } as LoginReply__Output) });
  });
  f.session.logout = async (clientId: string) => { logouts.push(clientId); return true; };
  f.lease.start(clock.now(), 3000);
  const call = Object.assign(new EventEmitter(), { request: { watcher: 'gate' }, write: () => true });
  const watcherId = opts.watcher !== false ? f.hub.add(call as never, { lease: { remainingMs: 3000 } }) : 0;
  return { f, clock, logins, logouts, call, watcherId };
}

describe('follower admissions and releases', () => {
  it('admits nothing while no NFS layer watches the revoke stream (race 4: nothing could revoke it)', async () => {
    const { f, logins } = follower({ watcher: false });
    await assert.rejects(f.admit('10.0.0.9'), { name: 'Unavailable', message: /no NFS layer watches/ });
    assert.equal(logins.length, 0, 'not even asked the master');
  });

  it('keeps a client when a release covers only older admissions (a new address was admitted since) (race 2)', async () => {
    const { f, logins, logouts } = follower();
    const first = f.admit('10.0.0.9');
    await flush();
    logins[0].answer({});
    const a = await first;
    // A connection from the host's other address is admitted too (already ours).
    const other = f.admit('10.1.0.9');
    await flush();
    logins[1].answer({ alreadyOwned: true });
    const second = Number((await other).admissionSeq);
    assert.ok(second > Number(a.admissionSeq));
    assert.equal(await f.release('host:esx-9', Number(a.admissionSeq)), false, 'released the client under a newer admission');
    assert.deepEqual(logouts, []);
    assert.equal(await f.release('host:esx-9', second), true);
    assert.deepEqual(logouts, ['host:esx-9']);
  });

  it('with mutant follower-release-ignores-newer-admission on, a release of the older admission logs the client out (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-release-ignores-newer-admission']);
    try {
      const { f, logins, logouts } = follower();
      const first = f.admit('10.0.0.9');
      await flush();
      logins[0].answer({});
      const a = await first;
      const other = f.admit('10.1.0.9');
      await flush();
      logins[1].answer({ alreadyOwned: true });
      await other;
      assert.equal(await f.release('host:esx-9', Number(a.admissionSeq)), true);
      assert.deepEqual(logouts, ['host:esx-9'], 'logged out while its newer connection is served');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('asks the master again when a release logged the client out while its login was on the way (race 2)', async () => {
    const { f, logins, logouts } = follower();
    const first = f.admit('10.0.0.9');
    await flush();
    logins[0].answer({});
    const a = await first;
    // A connection from a new address: its login goes out...
    const moving = f.admit('10.1.0.9');
    await flush();
    assert.equal(logins.length, 2);
    // ...the old connection's release logs the client out meanwhile...
    assert.equal(await f.release('host:esx-9', Number(a.admissionSeq)), true);
    assert.deepEqual(logouts, ['host:esx-9']);
    // ...and the master's answer, given before the logout, says "already owned".
    logins[1].answer({ alreadyOwned: true });
    await flush();
    assert.equal(logins.length, 3, 'the admit asked again instead of serving a client the master lists as free');
    logins[2].answer({ token: { epoch: 5, sequence: 2 } });
    const r = await moving;
    assert.deepEqual([r.epoch, r.sequence], [5, 2]);
  });

  it('refuses a login reply that arrives while a new introduction is out (race 7)', async () => {
    const { f, logins } = follower();
    const p = f.admit('10.0.0.9');
    await flush();
    (f.session as unknown as { introducing: boolean }).introducing = true;
    logins[0].answer({});
    await assert.rejects(p, { name: 'Unavailable', message: /session changed/ });
    assert.equal(f.admissions.tokenOf('host:esx-9'), undefined);
  });
});

describe('follower release after an NFS layer left with calls in flight (issue 18 hole b)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A client admitted, then its NFS layer dies right after reporting calls in flight. */
  async function admittedThenLayerDied() {
    const t = follower();
    const admitting = t.f.admit('10.0.0.9');
    await flush();
    t.logins[0].answer({});
    const seq = Number((await admitting).admissionSeq);
    t.f.hub.report({
      watcherId: t.watcherId, leaseDeadlineMonotonicMs: t.f.lease.deadlineMs, serving: true, callsInFlight: 3, quiesced: false, draining: [], fenceSeq: 0, stoppedCallsInFlight: 0, fenceConfigured: true, fenceTimeoutMs: 1000, fenceFailed: false, clientsInFlight: [], final: false, reportSeq: 0,
    } as GateReport__Output);
    t.call.emit('close');
    return { ...t, seq };
  }

  it('keeps the client (no logout) while a layer that died may still have calls in the NFS server, and releases it once that server was fenced', async () => {
    const t = await admittedThenLayerDied();
    assert.equal(t.f.hub.dirty, true);
    assert.equal(await t.f.release('host:esx-9', t.seq), false, 'released a client whose calls may still run here');
    assert.deepEqual(t.logouts, []);
    assert.deepEqual(t.f.admissions.tokenOf('host:esx-9'), { epoch: 5, sequence: 1 }, 'still held: a login elsewhere must revoke it here');
    t.f.hub.nfsServerFenced();
    assert.equal(await t.f.release('host:esx-9', t.seq), true);
    assert.deepEqual(t.logouts, ['host:esx-9']);
  });

  it('with mutant follower-release-while-dirty on, the client is logged out at once (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-release-while-dirty']);
    const t = await admittedThenLayerDied();
    assert.equal(await t.f.release('host:esx-9', t.seq), true);
    assert.deepEqual(t.logouts, ['host:esx-9']);
  });
});

describe('follower address map after a grant ended (issue 18 hole d)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * host:esx-9 is admitted from 10.0.0.9, its grant ends (`end`), it comes
   * back from 10.1.0.9, then a connection comes from 10.0.0.9 again (another
   * host took that address): returns the logins the master saw and that admit.
   */
  async function oldAddressReused(end: (t: ReturnType<typeof follower>) => Promise<void>) {
    const t = follower();
    const first = t.f.admit('10.0.0.9');
    await flush();
    t.logins[0].answer({});
    await first;
    await end(t);
    const back = t.f.admit('10.1.0.9');
    await flush();
    t.logins[1].answer({ token: { epoch: 5, sequence: 2 } });
    await back;
    const reused = t.f.admit('10.0.0.9');
    await flush();
    return { ...t, reused };
  }
  const revoked = async (t: ReturnType<typeof follower>) => {
    t.f.session.sendRevokeAck = () => undefined;
    t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-9', epoch: 5, reason: 'login elsewhere', token: { epoch: 5, sequence: 1 } });
    await flush();
    assert.equal(t.f.hub.ack(`r1.${t.watcherId}`), true);
    await flush();
  };

  it('asks the master about an address whose client was revoked since, instead of admitting it as that client', async () => {
    const t = await oldAddressReused(revoked);
    assert.equal(t.logins.length, 3, 'admitted the old address as host:esx-9 without asking the master');
    t.logins[2].answer({ clientId: 'host:esx-7', token: { epoch: 5, sequence: 3 } });
    assert.equal((await t.reused).clientId, 'host:esx-7');
  });

  it('asks the master about an address whose client was released since', async () => {
    const t = await oldAddressReused(async (t) => { assert.equal(await t.f.release('host:esx-9', 1), true); });
    assert.equal(t.logins.length, 3, 'admitted the old address as host:esx-9 without asking the master');
  });

  it('forgets every address when the follower fences (its grants are gone)', () => {
    const { f } = follower();
    f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 5, sequence: 1 });
    f.lease.fence('session lost');
    assert.equal(f.admissions.clientOf('10.0.0.9'), undefined);
  });

  it('with mutant follower-stale-address-admits on, the old address is admitted as the old client (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-stale-address-admits']);
    const t = await oldAddressReused(revoked);
    assert.equal(t.logins.length, 2);
    assert.equal((await t.reused).clientId, 'host:esx-9');
  });
});
