import assert from 'node:assert/strict';
import { setSimulationMutants } from '../../common/mutants';
import { Readiness } from '../../master/readiness';
import { fakeClock, flush } from '../support/fake-clock';

/**
 * A new leader's grace (DESIGN §4) ends by time only for servers that could
 * fence their NFS server when last heard of: one that could not, and never
 * came back, may still have calls in its NFS server that no lease bounds.
 */
describe('grace period over a registered server without a working fence', () => {
  afterEach(() => setSimulationMutants([]));

  async function graceOver(unfenced: string[]) {
    const clock = fakeClock();
    const r = new Readiness(clock, ['scvm-1', 'scvm-2'], 2000, undefined, unfenced);
    let outcome: string | undefined;
    r.ready().then(() => { outcome = 'granted'; }, (err: Error) => { outcome = err.message; });
    r.introduced('scvm-1');
    await clock.tickAsync(2000);
    await flush();
    return { r, clock, outcome: () => outcome };
  }

  it('ends by time when every missing server could fence', async () => {
    const g = await graceOver([]);
    assert.equal(g.outcome(), 'granted');
    assert.equal(g.r.isReady(), true);
  });

  it('refuses logins, naming the server and the command, while an unfenced server has not come back', async () => {
    const g = await graceOver(['scvm-2']);
    assert.match(g.outcome() ?? '', /scvm-2 could not fence its NFS server.*nfsha fence-confirm scvm-2/);
    assert.equal(g.r.isReady(), false);
    await assert.rejects(g.r.ready(), /scvm-2/);
    assert.deepEqual(g.r.heldBy(), ['scvm-2']);
  });

  it('grants once that server comes back, or an operator confirms it is down', async () => {
    const back = await graceOver(['scvm-2']);
    back.r.introduced('scvm-2');
    assert.equal(back.r.isReady(), true);
    const confirmed = await graceOver(['scvm-2']);
    assert.equal(confirmed.r.fenceConfirmed('scvm-2'), true, 'it was awaited');
    assert.equal(confirmed.r.isReady(), true);
    await confirmed.r.ready();
  });

  it('does not hold the unfenced server\'s own logins (its clients stay on its NFS server)', async () => {
    const g = await graceOver(['scvm-2']);
    await g.r.ready('scvm-2');
    await assert.rejects(g.r.ready('scvm-1'), /scvm-2/);
  });

  it('an unfenced server that came back before the grace ended holds nothing', async () => {
    const clock = fakeClock();
    const r = new Readiness(clock, ['scvm-1', 'scvm-2', 'scvm-3'], 2000, undefined, ['scvm-2']);
    r.introduced('scvm-2');
    await clock.tickAsync(2000);
    assert.equal(r.isReady(), true);
  });

  it('an introduction that says an NFS layer left with calls unknown does not end the grace, and without a fence holds others\' logins', async () => {
    const clock = fakeClock();
    const r = new Readiness(clock, ['scvm-1', 'scvm-2'], 2000, undefined, []);
    r.introduced('scvm-1');
    r.unaccounted('scvm-2', false);
    assert.equal(r.isReady(), false, 'the grace did not end on that introduction');
    await clock.tickAsync(2000);
    await flush();
    await assert.rejects(r.ready('scvm-1'), /scvm-2/);
    await r.ready('scvm-2');
    r.introduced('scvm-2'); // later, clean (a fence ran, or an operator confirmed one)
    await r.ready('scvm-1');
  });

  it('with mutant grace-ends-over-unfenced-server on, the grace ends by time regardless (the fix\'s exact revert)', async () => {
    setSimulationMutants(['grace-ends-over-unfenced-server']);
    const g = await graceOver(['scvm-2']);
    assert.equal(g.outcome(), 'granted');
  });
});

describe('grace period: in progress while it runs its time or its fence agent fences (a visible hold)', () => {
  it('is in progress until its time is over, then while the fence agent fences the servers it awaited, and not once it ended', async () => {
    const clock = fakeClock();
    let confirm!: (ok: boolean) => void;
    const r = new Readiness(clock, ['scvm-1', 'scvm-2'], 2000, () => new Promise<boolean>((res) => { confirm = res; }));
    r.introduced('scvm-1');
    assert.equal(r.inProgress(), true, 'running its time');
    await clock.tickAsync(2000);
    await flush();
    assert.equal(r.inProgress(), true, 'the fence agent is fencing scvm-2');
    assert.equal(r.isReady(), false);
    confirm(true);
    await flush();
    assert.equal(r.inProgress(), false);
    assert.equal(r.isReady(), true);
  });
});
