import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setSimulationMutants } from '../../common/mutants';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { Admissions } from '../../follower/admissions';
import { silentLogger } from '../../common/log';
import { fakeClock, flush } from '../support/fake-clock';

function follower() {
  const f = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-1', master: '127.0.0.1:1' }, fakeClock(), silentLogger());
  const acks: string[] = [];
  f.session.sendRevokeAck = (id: string) => { acks.push(id); };
  return { f, acks };
}

describe('follower revoke handling', () => {
  it('ignores a revoke from an epoch older than the highest it has seen', async () => {
    const { f, acks } = follower();
    f.session.emit('granted', { sessionId: 's1', epoch: 10, resumed: false });
    f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 10, sequence: 4 });
    f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-9', epoch: 9, reason: 'stale', token: { epoch: 9, sequence: 99 } });
    await flush();
    assert.deepEqual(acks, []);
    assert.deepEqual(f.admissions.tokenOf('host:esx-9'), { epoch: 10, sequence: 4 });
  });

  it('drops the client and acks a current-epoch revoke at once when no NFS layer is watching', async () => {
    const { f, acks } = follower();
    f.session.emit('granted', { sessionId: 's1', epoch: 10, resumed: false });
    f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 10, sequence: 4 });
    f.session.emit('revoke', { revokeId: 'r2', clientId: 'host:esx-9', epoch: 10, reason: 'login elsewhere', token: { epoch: 10, sequence: 4 } });
    await flush();
    assert.deepEqual(acks, ['r2']);
    assert.equal(f.admissions.tokenOf('host:esx-9'), undefined);
  });
});

describe('follower admissions', () => {
  it('refuses a login reply that arrives after the revoke of its grant', () => {
    const a = new Admissions();
    a.revoke('host:esx-9', { epoch: 10, sequence: 5 });
    assert.equal(a.grant('10.0.0.9', 'host:esx-9', { epoch: 10, sequence: 5 }), false);
    assert.equal(a.tokenOf('host:esx-9'), undefined);
    assert.equal(a.grant('10.0.0.9', 'host:esx-9', { epoch: 10, sequence: 6 }), true);
  });

  it('keeps the newer token when an older grant of the same client (another new address) lands last: tokens never go back (sim seed 5851)', () => {
    const a = new Admissions();
    assert.equal(a.grant('10.10.0.13', 'host:esx-3', { epoch: 10, sequence: 10 }), true);
    assert.equal(a.grant('10.20.0.13', 'host:esx-3', { epoch: 10, sequence: 9 }), true);
    assert.deepEqual(a.tokenOf('host:esx-3'), { epoch: 10, sequence: 10 });
    assert.equal(a.clientOf('10.20.0.13'), 'host:esx-3', 'the second address is known as the same client');
  });
});

describe('follower: a revoke the master sends again after its stream was replaced (issue 18 hole g)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A follower with one NFS layer watching; returns the revokes that layer was sent. */
  function watched() {
    const t = follower();
    const toLayer: string[] = [];
    const call = Object.assign(new EventEmitter(), { request: { watcher: 'gate' }, write: (cmd: { revoke?: { revokeId: string } }) => { if (cmd.revoke) toLayer.push(cmd.revoke.revokeId); return true; } });
    const watcherId = t.f.hub.add(call as never, { lease: { remainingMs: 3000 } });
    t.f.session.emit('granted', { sessionId: 's1', epoch: 10, resumed: false });
    t.f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 10, sequence: 4 });
    const revoke = () => t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-9', epoch: 10, reason: 'login elsewhere', token: { epoch: 10, sequence: 4 } });
    return { ...t, toLayer, watcherId, revoke };
  }

  it('ignores a copy of a revoke it is still draining, and acks it once', async () => {
    const t = watched();
    t.revoke();
    await flush();
    t.revoke();
    await flush();
    assert.deepEqual(t.toLayer, ['r1.1'], 'the copy went to the NFS layer as a second revoke of the same id');
    assert.equal(t.f.hub.ack(`r1.${t.watcherId}`), true);
    await flush();
    assert.deepEqual(t.acks, ['r1']);
  });

  it('handles again a revoke it already acked (the ack may have been lost with the old stream)', async () => {
    const t = watched();
    t.revoke();
    await flush();
    t.f.hub.ack(`r1.${t.watcherId}`);
    await flush();
    t.revoke();
    await flush();
    t.f.hub.ack(`r1.${t.watcherId}`);
    await flush();
    assert.deepEqual(t.acks, ['r1', 'r1']);
  });

  it('with mutant master-revoke-lost-with-stream on, the copy reaches the NFS layer again (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-revoke-lost-with-stream']);
    const t = watched();
    t.revoke();
    await flush();
    t.revoke();
    await flush();
    assert.deepEqual(t.toLayer, ['r1.1', 'r1.1']);
  });
});
