import assert from 'node:assert/strict';
import { silentLogger } from '../../common/log';
import { HostRegistry } from '../../master/identity';
import { MembershipFeed } from '../../master/membership';
import { SessionTable } from '../../master/sessions';
import { fakeClock } from '../support/fake-clock';

const timing = { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 };
const intro = (serverId: string) => ({ serverId, hostId: 'esx-1', storageIp: '10.0.0.1', mgmtIp: '', resumeSessionId: '' });
const sink = { write: () => undefined, end: () => undefined } as never;

describe('master membership: a closed keepalive stream', () => {
  function setup() {
    const clock = fakeClock();
    const sessions = new SessionTable(clock, timing);
    const feed = new MembershipFeed(clock, sessions, new HostRegistry(), 1, silentLogger());
    const { session } = sessions.introduce(intro('scvm-1'));
    session.sink = sink;
    return { clock, sessions, feed, session };
  }

  it('takes the server out of the membership 1 s after its stream closed, long before its lease ends (a dead follower process)', async () => {
    const { clock, feed, session } = setup();
    session.sink = undefined;
    session.disconnectedAt = clock.now();
    feed.disconnected();
    await clock.tickAsync(999);
    assert.deepEqual(feed.members().map((m) => m.serverId), ['scvm-1']);
    await clock.tickAsync(2);
    assert.deepEqual(feed.members().map((m) => m.serverId), []);
    assert.equal(feed.snapshot().version, 1, 'the change was pushed when the grace ended');
  });

  it('keeps a server whose follower took up a new stream within the grace (a reconnect, not a death)', async () => {
    const { clock, feed, session } = setup();
    session.sink = undefined;
    session.disconnectedAt = clock.now();
    feed.disconnected();
    await clock.tickAsync(400);
    session.sink = sink;
    session.disconnectedAt = undefined;
    await clock.tickAsync(2000);
    assert.deepEqual(feed.members().map((m) => m.serverId), ['scvm-1']);
  });

  it('keeps a server whose stream is open but silent until its lease ends (silence is no proof of death)', async () => {
    const { clock, feed } = setup();
    await clock.tickAsync(2999);
    assert.deepEqual(feed.members().map((m) => m.serverId), ['scvm-1']);
    await clock.tickAsync(1);
    assert.deepEqual(feed.members().map((m) => m.serverId), []);
  });
});
