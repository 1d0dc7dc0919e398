import assert from 'node:assert/strict';
import { Lease, LeaseState } from '../../follower/lease';
import { fakeClock } from '../support/fake-clock';

describe('follower lease', () => {
  it('fences itself exactly TTL after the last acked keepalive was sent', async () => {
    const clock = fakeClock();
    const lease = new Lease(clock);
    const fenced: string[] = [];
    lease.on('fenced', (why) => fenced.push(why));
    const introSent = clock.now();
    await clock.tickAsync(100);
    assert.equal(lease.start(introSent, 3000), true);
    await clock.tickAsync(400);
    lease.sent(1);
    await clock.tickAsync(200);
    lease.acked(1, 3000); // ack 200 ms after sending: the lease still counts from the send
    await clock.tickAsync(2999 - 200);
    assert.equal(lease.current, LeaseState.Live);
    assert.deepEqual(fenced, []);
    await clock.tickAsync(1);
    assert.equal(lease.current, LeaseState.Fenced);
    assert.equal(fenced.length, 1);
  });

  it('reports fenced from the clock alone, before its timer has run', async () => {
    let now = 0;
    const timers: Array<() => void> = [];
    const lease = new Lease({ now: () => now, setTimeout: (fn) => { timers.push(fn); return {}; }, clearTimeout: () => undefined });
    lease.start(0, 3000);
    now = 3000; // as after SIGSTOP: time passed, no timer has fired yet
    assert.equal(lease.isLive(), false);
    assert.equal(lease.remainingMs(), 0);
  });

  it('is not revived by a late ack once fenced', async () => {
    const clock = fakeClock();
    const lease = new Lease(clock);
    lease.start(clock.now(), 3000);
    lease.sent(1);
    await clock.tickAsync(3000);
    assert.equal(lease.current, LeaseState.Fenced);
    lease.acked(1, 3000);
    assert.equal(lease.current, LeaseState.Fenced);
  });

  it('refuses a grant that arrives after its lease would have ended', async () => {
    const clock = fakeClock();
    const lease = new Lease(clock);
    const sent = clock.now();
    await clock.tickAsync(3000);
    assert.equal(lease.start(sent, 3000), false);
    assert.equal(lease.current, LeaseState.NoSession);
  });

  it('emits renewals with the time left, and only for newer deadlines', async () => {
    const clock = fakeClock();
    const lease = new Lease(clock);
    const renewed: number[] = [];
    lease.on('renewed', (ms) => renewed.push(ms));
    lease.start(clock.now(), 3000);
    await clock.tickAsync(500);
    lease.sent(1);
    await clock.tickAsync(500);
    lease.sent(2);
    await clock.tickAsync(100);
    lease.acked(2, 3000);
    lease.acked(1, 3000); // older than the ack already applied
    assert.deepEqual(renewed, [3000, 2900]);
  });
});
