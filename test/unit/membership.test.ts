import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { MembershipFollower } from '../../agent/membership-client';
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

describe('agent membership: a registration the master refuses', () => {
  it('logs the refusal (an address another host still owns) once per reason, though the agent never connected', async () => {
    const clock = fakeClock();
    const lines: Array<{ ev?: string; why?: string; level: number }> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const refusals = ['10.20.0.14 belongs to host esx-4; host esx-1 may not register it', '10.20.0.14 belongs to host esx-4; host esx-1 may not register it', '10.20.0.15 belongs to host esx-5; host esx-1 may not register it'];
    let opened = 0;
    const client = {
      WatchMembers: () => {
        const stream = Object.assign(new EventEmitter(), { cancel: () => undefined });
        const details = refusals[Math.min(opened++, refusals.length - 1)];
        setImmediate(() => stream.emit('error', Object.assign(new Error(details), { code: grpc.status.PERMISSION_DENIED, details })));
        return stream;
      },
    } as never;
    const agent = new MembershipFollower('m1:7410', { hostId: 'esx-1', storageIp: '10.10.0.11', mgmtIp: '10.20.0.14', localServerId: 'scvm-1' }, log, { insecure: true }, { clock, random: () => 0.5, connect: () => client });
    agent.start();
    while (opened < 4) { await new Promise((r) => setImmediate(r)); await clock.tickAsync(2000); }
    const refused = lines.filter((l) => l.ev === 'membership.refused');
    assert.deepEqual(refused.map((l) => l.why), [refusals[0], refusals[2]], 'each reason once, in order');
    assert.ok(refused.every((l) => l.level === 50), 'at error level: an operator must act');
    assert.equal(agent.connected, false);
  });
});
