import assert from 'node:assert/strict';
import { ProbeTracker } from '../../common/hysteresis';

describe('probe hysteresis', () => {
  it('is unknown until the first answer or N misses', () => {
    const t = new ProbeTracker(3);
    assert.equal(t.state, 'unknown');
    t.record(false, 0);
    t.record(false, 500);
    assert.equal(t.state, 'unknown');
    t.record(false, 1000);
    assert.equal(t.state, 'down');
  });

  it('goes down only after N consecutive misses, and up on one answer', () => {
    const t = new ProbeTracker(3);
    t.record(true, 0);
    assert.equal(t.state, 'up');
    assert.equal(t.upSince, 0);
    t.record(false, 500);
    t.record(false, 1000);
    t.record(true, 1500); // the streak is broken
    t.record(false, 2000);
    t.record(false, 2500);
    assert.equal(t.state, 'up');
    assert.equal(t.upSince, 0, 'stays up without restarting its healthy time');
    t.record(false, 3000);
    assert.equal(t.state, 'down');
    assert.equal(t.upSince, undefined);
    t.record(true, 3500);
    assert.equal(t.upSince, 3500);
  });
});
