import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { MasterEndpoints } from '../../common/master-endpoints';
import { silentLogger } from '../../common/log';
import { HostRegistry } from '../../master/identity';
import { LoginCoordinator } from '../../master/login';
import { graceMs, notLeaderError } from '../../master/master';
import { DEFAULT_MASTER_OPTIONS } from '../../master/options';
import { Readiness } from '../../master/readiness';
import { SessionTable, type Session } from '../../master/sessions';
import { FencingTokens } from '../../master/tokens';
import { fakeClock, flush } from '../support/fake-clock';

describe('new leader grace period', () => {
  it('becomes ready once every registered server introduced itself', async () => {
    const clock = fakeClock();
    const r = new Readiness(clock, ['scvm-1', 'scvm-2'], 10_000);
    let ready = false;
    void r.ready().then(() => { ready = true; });
    r.introduced('scvm-1');
    await flush();
    assert.equal(ready, false);
    r.introduced('scvm-2');
    await flush();
    assert.equal(ready, true);
  });

  it('becomes ready when the grace period passes, not a millisecond before', async () => {
    const clock = fakeClock();
    const r = new Readiness(clock, ['scvm-1'], 10_000);
    let ready = false;
    void r.ready().then(() => { ready = true; });
    await clock.tickAsync(9_999);
    assert.equal(ready, false);
    await clock.tickAsync(1);
    assert.equal(ready, true);
  });

  it('waits the whole grace when nobody is registered (a fresh or restarted master)', async () => {
    const clock = fakeClock();
    const r = new Readiness(clock, [], 3_550);
    assert.equal(r.isReady(), false);
    await clock.tickAsync(3_550);
    assert.equal(r.isReady(), true);
  });

  it('is session TTL × (1 + drift) + margin, plus the old leader\'s election lease', () => {
    const ttlWithDrift = Math.ceil(3000 * 1.1); // rounded up: never shorter than the exact bound
    assert.equal(graceMs(DEFAULT_MASTER_OPTIONS, 3000), ttlWithDrift + 250 + 3000);
    assert.equal(graceMs(DEFAULT_MASTER_OPTIONS, 0), ttlWithDrift + 250);
  });

  it('grants no login before the grace period ends', async () => {
    const clock = fakeClock();
    const sessions = new SessionTable(clock, { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 });
    const r = new Readiness(clock, [], 2000);
    const logins = new LoginCoordinator({ clock, sessions, registry: new HostRegistry([{ id: 'esx-9', storageIp: '10.0.0.9' }]), tokens: new FencingTokens(9), revokeAckTimeoutMs: 1000, log: silentLogger(), gates: { mayAct: () => true, ready: () => r.ready() } });
    const { session } = sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '', mgmtIp: '', resumeSessionId: '' });
    let granted = false;
    void logins.login(session.id, '10.0.0.9').then(() => { granted = true; });
    await clock.tickAsync(1999);
    assert.equal(granted, false);
    sessions.renew(session);
    await clock.tickAsync(1);
    await flush();
    assert.equal(granted, true);
  });
});

describe('ownership rebuilt from introductions', () => {
  function setup() {
    const clock = fakeClock();
    const sessions = new SessionTable(clock, { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 });
    let leader = true;
    const logins = new LoginCoordinator({ clock, sessions, registry: new HostRegistry([{ id: 'esx-9', storageIp: '10.0.0.9' }]), tokens: new FencingTokens(20), revokeAckTimeoutMs: 1000, log: silentLogger(), gates: { mayAct: () => leader, ready: () => Promise.resolve() } });
    const open = (id: string) => {
      const s = sessions.introduce({ serverId: id, hostId: '', storageIp: '', mgmtIp: '', resumeSessionId: '' }).session as Session & { revoked: string[] };
      s.revoked = [];
      s.sink = { sendRevoke: (r) => { s.revoked.push(r.revokeId); }, end: () => undefined };
      return s;
    };
    return { clock, sessions, logins, open, depose: () => { leader = false; } };
  }

  it('adopts a follower\'s claims, and a login elsewhere then revokes them', async () => {
    const { logins, open } = setup();
    const a = open('scvm-1');
    const b = open('scvm-2');
    assert.deepEqual(logins.adopt(a.id, [{ clientId: 'host:esx-9', token: { epoch: 19, sequence: 7 } }]), ['host:esx-9']);
    const p = logins.login(b.id, '10.0.0.9');
    await flush();
    assert.equal(a.revoked.length, 1);
    logins.onRevokeAck(a.id, a.revoked[0]);
    const r = await p;
    assert.deepEqual(r.token, { epoch: 20, sequence: 1 });
  });

  it('resolves conflicting claims by fencing token: the lower holder is revoked', async () => {
    const { logins, open } = setup();
    const a = open('scvm-1');
    const b = open('scvm-2');
    logins.adopt(a.id, [{ clientId: 'host:esx-9', token: { epoch: 19, sequence: 3 } }]);
    logins.adopt(b.id, [{ clientId: 'host:esx-9', token: { epoch: 19, sequence: 8 } }]);
    await flush();
    assert.equal(a.revoked.length, 1, 'the lower token is revoked');
    assert.equal(b.revoked.length, 0);
    logins.onRevokeAck(a.id, a.revoked[0]);
    await flush();
    assert.deepEqual(logins.ownerships().map(([, o]) => o.sessionId), [b.id]);
  });

  it('ignores claims with a token from a newer epoch than its own', () => {
    const { logins, open } = setup();
    const a = open('scvm-1');
    assert.deepEqual(logins.adopt(a.id, [{ clientId: 'host:esx-9', token: { epoch: 21, sequence: 1 } }]), []);
  });

  it('grants nothing once it is no longer the leader', async () => {
    const { logins, open, depose } = setup();
    const a = open('scvm-1');
    depose();
    await assert.rejects(logins.login(a.id, '10.0.0.9'), { name: 'Unavailable' });
    assert.deepEqual(logins.ownerships(), []);
  });
});

describe('finding the leader among candidates', () => {
  const make = (address: string) => ({ address, close: () => undefined }) as unknown as grpc.Client;

  it('answers "not leader" with FAILED_PRECONDITION naming the leader, and UNAVAILABLE while there is none', () => {
    const redirect = notLeaderError({ id: 'm2', address: '10.0.0.2:7410' });
    assert.equal(redirect.code, grpc.status.FAILED_PRECONDITION);
    assert.deepEqual(redirect.metadata.get('nfsha-leader'), ['10.0.0.2:7410']);
    assert.equal(notLeaderError(undefined).code, grpc.status.UNAVAILABLE);
  });

  it('follows a redirect, and otherwise tries the next candidate', () => {
    const e = new MasterEndpoints(['a:1', 'b:2', 'c:3'], { dir: '/nonexistent' }, make);
    assert.equal(e.current, 'a:1');
    assert.equal(e.failed(notLeaderError({ id: 'm3', address: 'c:3' })), 'redirect');
    assert.equal(e.current, 'c:3');
    assert.equal(e.failed(notLeaderError(undefined)), 'next');
    assert.equal(e.current, 'a:1');
    assert.equal(e.failed({ code: grpc.status.INVALID_ARGUMENT }), 'same');
    assert.equal(e.current, 'a:1');
  });
});
