import assert from 'node:assert/strict';
import { SessionState, SessionTable } from '../../master/sessions';
import { fakeClock } from '../support/fake-clock';
import { setSimulationMutants } from '../../common/mutants';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { DEFAULT_GATE_TIMING } from '../../follower/gate-core';

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

describe('the fence budget the master grants (wait_out_slack_ms)', () => {
  afterEach(() => setSimulationMutants([]));
  const timing = { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 };

  it('is only the margin, as a follower clock slow by the whole drift bound counts it: 227 ms, so the default 1,000 ms fence fits 800 ms of lead', () => {
    const slack = new SessionTable(fakeClock(), timing).waitOutSlackMs;
    assert.equal(slack, 227);
    // The worst case in real time: the follower's deadline falls at renewal +
    // TTL × 1.1; its fence starts 800 of its ms (880 real) before and runs
    // 1,000 of its ms (1,100 real); the master's wait-out ends 250 ms later.
    const fenceEnds = 3000 * 1.1 - 800 * 1.1 + 1000 * 1.1;
    const waitOutEnds = 3000 * 1.1 + 250;
    assert.ok(fenceEnds <= waitOutEnds + 1e-9, `fence ends ${fenceEnds}, wait-out ${waitOutEnds}`);
    assert.ok(DEFAULT_FOLLOWER_OPTIONS.fenceTimeoutMs <= DEFAULT_FOLLOWER_OPTIONS.fenceLeadMs + slack);
    assert.equal(DEFAULT_GATE_TIMING.fenceLeadMs, DEFAULT_FOLLOWER_OPTIONS.fenceLeadMs);
  });

  it('mutant fence-budget-counts-drift counts the drift part too (550 ms)', () => {
    setSimulationMutants(['fence-budget-counts-drift']);
    assert.equal(new SessionTable(fakeClock(), timing).waitOutSlackMs, 550);
  });
});
