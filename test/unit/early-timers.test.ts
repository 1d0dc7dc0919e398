import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nextEmbeddedEpoch } from '../../master/embedded-epoch';
import { silentLogger } from '../../common/log';
import { HostRegistry } from '../../master/identity';
import { LoginCoordinator } from '../../master/login';
import { Readiness } from '../../master/readiness';
import { SessionTable } from '../../master/sessions';
import { FencingTokens } from '../../master/tokens';
import { earlyTimers, fakeClock, flush } from '../support/fake-clock';
import { scratchDir } from '../support/scratch';

describe('timers that fire early (race 8: Node schedules timers from a cached loop time)', () => {
  it('a new leader\'s grace ends when its clock says so, not when an early timer fires', async () => {
    const base = fakeClock();
    const clock = earlyTimers(base, 500);
    const r = new Readiness(clock, [], 2000);
    let ready = false;
    void r.ready().then(() => { ready = true; });
    await base.tickAsync(1500); // the timer fires here, 500 ms early
    await flush();
    assert.equal(ready, false, 'grace ended 500 ms early');
    assert.equal(r.isReady(), false);
    await base.tickAsync(499);
    await flush();
    assert.equal(ready, false);
    await base.tickAsync(1);
    await flush();
    assert.equal(ready, true);
  });

  it('a silent holder is waited out until its lease has surely expired, however early the timer fires', async () => {
    const base = fakeClock();
    const clock = earlyTimers(base, 800);
    const sessions = new SessionTable(clock, { ttlMs: 3000, clockDriftBound: 0.1, graceMarginMs: 250 });
    const logins = new LoginCoordinator({ clock, sessions, registry: new HostRegistry([{ id: 'esx-9', storageIp: '10.0.0.9' }]), tokens: new FencingTokens(3), revokeAckTimeoutMs: 1000, log: silentLogger() });
    const open = (id: string) => sessions.introduce({ serverId: id, hostId: '', storageIp: '', mgmtIp: '', resumeSessionId: '', fencing: 'FENCING_READY' }).session;
    const a = open('scvm-1');
    const b = open('scvm-2');
    await logins.login(a.id, '10.0.0.9');
    const heard = base.now();
    let granted = false;
    void logins.login(b.id, '10.0.0.9').then(() => { granted = true; });
    const surely = sessions.surelyExpiredAt(a) - heard;
    for (let t = 0; t < surely - 1; t += 250) {
      sessions.renew(b);
      await base.tickAsync(Math.min(250, surely - 1 - t));
    }
    sessions.renew(b);
    await flush();
    assert.equal(granted, false, 'granted while the silent holder might still serve');
    await base.tickAsync(1);
    await flush();
    assert.equal(granted, true);
  });
});

describe('the embedded master\'s epoch', () => {
  it('grows across restarts with --state-dir even when the wall clock stepped back', () => {
    const file = path.join(scratchDir('nfsha-epoch-'), 'epoch');
    const first = nextEmbeddedEpoch(file, () => 2_000_000);
    const afterStepBack = nextEmbeddedEpoch(file, () => 1_000_000);
    assert.equal(first, 2_000_000);
    assert.equal(afterStepBack, 2_000_001, 'a clock stepped back still gives a larger epoch');
    assert.equal(nextEmbeddedEpoch(file, () => 3_000_000), 3_000_000);
    assert.equal(nextEmbeddedEpoch('', () => 5), 5, 'without a file: the wall clock, as before');
  });
});
