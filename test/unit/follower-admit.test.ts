import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
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
  if (opts.watcher !== false) {
    const call = Object.assign(new EventEmitter(), { request: { watcher: 'gate' }, write: () => true });
    f.hub.add(call as never, { lease: { remainingMs: 3000 } });
  }
  return { f, clock, logins, logouts };
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
