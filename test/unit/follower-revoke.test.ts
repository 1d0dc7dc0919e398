import assert from 'node:assert/strict';
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
