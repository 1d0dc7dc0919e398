import { strict as assert } from 'node:assert';
import { CondemnationCheck, type CondemnationWorld } from '../sim/condemnation-check';
import type { SimProcess } from '../sim/kernel';

// The simulation's liveness check that no healthy holder is condemned
// (issue 18 hole g), on log events as the real code writes them.
describe('simulation check: no healthy holder condemned', () => {
  let now: number;
  let violations: string[];
  let follower: { dead: boolean; paused: boolean; startedAt: number; resumedAt: number };
  let unheldSince: number;
  const master = {} as SimProcess;
  const world = (): CondemnationWorld => ({
    now: () => now,
    masterProc: (who) => (who === 'master-1' ? master : undefined),
    followerProc: (id) => (id === 'scvm-2' ? (follower as unknown as SimProcess) : undefined),
    followerLogName: (id) => id.replace('scvm-', 'follower-'),
    unheldSince: () => unheldSince,
    maxLatencyMs: () => 2,
    violate: (t) => violations.push(t),
  });

  /** A revoke written at t=100 to scvm-2's session s1, whose stream is replaced at t=300 (and with `closedAt`, closed then); condemned at `at`. */
  function lostRevoke(check: CondemnationCheck, at = 1100, closedAt?: number, followerClosedAt?: number): void {
    now = 0;
    check.onLogEvent('master-1', 'session.opened', { session: 's1', server: 'scvm-2' });
    check.onLogEvent('follower-2', 'session.opened', { session: 's1' });
    now = 100;
    check.onLogEvent('master-1', 'revoke.sent', { session: 's1', server: 'scvm-2', client: 'host:esx-1', revoke: 'r1' });
    now = 200;
    check.onLogEvent('follower-2', 'session.stream.closed', { code: 14 });
    now = 300;
    check.onLogEvent('master-1', 'session.resumed', { session: 's1', server: 'scvm-2' });
    check.onLogEvent('follower-2', 'session.resumed', { session: 's1' });
    if (followerClosedAt !== undefined) {
      now = followerClosedAt;
      check.onLogEvent('follower-2', 'session.stream.closed', { code: 14 });
    }
    if (closedAt !== undefined) {
      now = closedAt;
      check.onLogEvent('master-1', 'session.disconnected', { session: 's1', server: 'scvm-2' });
    }
    now = at;
    // The condemnation ends a live stream first (the master logs the close, then the condemnation).
    if (closedAt === undefined) check.onLogEvent('master-1', 'session.disconnected', { session: 's1', server: 'scvm-2' });
    check.onLogEvent('master-1', 'session.condemned', { session: 's1', server: 'scvm-2', client: 'host:esx-1' });
  }

  beforeEach(() => {
    violations = [];
    follower = { dead: false, paused: false, startedAt: 0, resumedAt: -Infinity };
    unheldSince = -Infinity;
  });

  it('a revoke lost with the replaced stream, never sent again, and its healthy holder condemned: a violation', () => {
    lostRevoke(new CondemnationCheck(world()));
    assert.equal(violations.length, 1);
    assert.match(violations[0], /condemned scvm-2's session s1 \(revoke r1 of host:esx-1 unanswered\).*since t=300 \(800 ms\)/);
  });

  it('the copy sent on the new stream reached the follower: no violation', () => {
    const check = new CondemnationCheck(world());
    now = 300;
    check.onLogEvent('master-1', 'revoke.resent', { session: 's1', server: 'scvm-2', client: 'host:esx-1', revoke: 'r1' });
    check.onLogEvent('follower-2', 'revoke.received', { client: 'host:esx-1', revoke: 'r1' });
    lostRevoke(check);
    assert.deepEqual(violations, []);
  });

  it('no violation where the holder was not healthy: frozen, dead, restarted, cut off, disconnected (either side), or condemned before a message could arrive', () => {
    const cases: Array<[string, () => void, number?]> = [
      ['frozen after the resume', () => { follower.resumedAt = 500; }],
      ['frozen now', () => { follower.paused = true; }],
      ['dead', () => { follower.dead = true; }],
      ['a new process since the stream opened', () => { follower.startedAt = 400; }],
      ['messages held after the resume', () => { unheldSince = 900; }],
      ['messages held now', () => { unheldSince = Infinity; }],
      ['condemned 50 ms after the resume', () => undefined, 350],
    ];
    // Its stream closed again after the resume: nothing to carry the revoke.
    violations = [];
    follower = { dead: false, paused: false, startedAt: 0, resumedAt: -Infinity };
    unheldSince = -Infinity;
    lostRevoke(new CondemnationCheck(world()), 1100, 600);
    // Half-open: the follower's side closed, the master's stayed open and took the revoke.
    lostRevoke(new CondemnationCheck(world()), 1100, undefined, 600);
    assert.deepEqual(violations, [], 'disconnected');
    for (const [what, set, at] of cases) {
      violations = [];
      follower = { dead: false, paused: false, startedAt: 0, resumedAt: -Infinity };
      unheldSince = -Infinity;
      set();
      lostRevoke(new CondemnationCheck(world()), at);
      assert.deepEqual(violations, [], what);
    }
  });
});
