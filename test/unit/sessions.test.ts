import assert from 'node:assert/strict';
import { SessionState, SessionTable } from '../../master/sessions';
import { fakeClock } from '../support/fake-clock';

const timing = { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 };
const intro = (serverId: string, resumeSessionId = '') => ({ serverId, hostId: 'esx-1', storageIp: '10.0.0.1', mgmtIp: '', resumeSessionId });

describe('master session table', () => {
  it('keeps a session live until exactly TTL after the last keepalive was received, then expired', async () => {
    const clock = fakeClock();
    const table = new SessionTable(clock, timing);
    const { session } = table.introduce(intro('scvm-1'));
    await clock.tickAsync(1000);
    assert.equal(table.renew(session), true);
    await clock.tickAsync(2999);
    assert.equal(table.state(session), SessionState.Live);
    await clock.tickAsync(1);
    assert.equal(table.state(session), SessionState.Expired);
  });

  it('never renews an expired session', async () => {
    const clock = fakeClock();
    const table = new SessionTable(clock, timing);
    const { session } = table.introduce(intro('scvm-1'));
    await clock.tickAsync(3000);
    assert.equal(table.renew(session), false);
    assert.equal(table.state(session), SessionState.Expired);
  });

  it('refuses a second live session for the same server id, and accepts it once the first expired', async () => {
    const clock = fakeClock();
    const table = new SessionTable(clock, timing);
    const first = table.introduce(intro('scvm-1')).session;
    assert.throws(() => table.introduce(intro('scvm-1')), { name: 'AlreadyExists' });
    assert.equal(table.all().length, 1);
    await clock.tickAsync(3000);
    const second = table.introduce(intro('scvm-1')).session;
    assert.notEqual(second.id, first.id);
  });

  it('resumes a live session when the introduction names it', async () => {
    const clock = fakeClock();
    const table = new SessionTable(clock, timing);
    const first = table.introduce(intro('scvm-1')).session;
    await clock.tickAsync(2000);
    const again = table.introduce(intro('scvm-1', first.id));
    assert.equal(again.resumed, true);
    assert.equal(again.session, first);
    await clock.tickAsync(2999);
    assert.equal(table.state(first), SessionState.Live);
  });

  it('refuses a new session past the session limit, naming it, and still resumes live ones', () => {
    const table = new SessionTable(fakeClock(), timing, 2);
    const first = table.introduce(intro('scvm-1')).session;
    table.introduce(intro('scvm-2'));
    assert.throws(() => table.introduce(intro('scvm-3')), { name: 'ResourceExhausted', limit: 'sessions' });
    assert.equal(table.introduce({ ...intro('scvm-1'), resumeSessionId: first.id }).resumed, true);
    assert.equal(table.all().length, 2);
  });

  it('sweeps a dead session only once its follower has surely stopped serving', async () => {
    const clock = fakeClock();
    const table = new SessionTable(clock, timing);
    const { session } = table.introduce(intro('scvm-1'));
    const surely = Math.ceil(3000 * 1.1) + 250;
    await clock.tickAsync(surely - 1);
    assert.deepEqual(table.sweep(), []);
    await clock.tickAsync(1);
    assert.deepEqual(table.sweep().map((s) => s.id), [session.id]);
  });
});
