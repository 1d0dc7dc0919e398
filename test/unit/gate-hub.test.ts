import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setSimulationMutants } from '../../common/mutants';
import { GateHub } from '../../follower/gate-hub';
import type { GateReport__Output } from '../../gen/nfsha/v1/GateReport';
import { fakeClock } from '../support/fake-clock';

/** A hub with one watching NFS layer, whose reports the test writes. */
function hubWithLayer() {
  const clock = fakeClock();
  const hub = new GateHub(clock, 250);
  const call = Object.assign(new EventEmitter(), { request: { watcher: 'gate' }, write: () => true, end: () => undefined });
  const id = hub.add(call as never, { lease: { remainingMs: 3000 } });
  const report = (r: Partial<GateReport__Output>) => hub.report({
    watcherId: id, leaseDeadlineMonotonicMs: 0, serving: false, callsInFlight: 0, quiesced: false, draining: [], fenceSeq: 0, stoppedCallsInFlight: 0, ...r,
  } as GateReport__Output);
  return { clock, hub, call, report };
}

describe('gate hub: quiescence at the fence point (issue 18 hole a)', () => {
  afterEach(() => setSimulationMutants([]));

  it('does not count a layer that carried out the fence but serves again with calls in flight as quiesced', () => {
    const { hub, report } = hubWithLayer();
    const seq = hub.fence('session lost');
    report({ serving: true, callsInFlight: 2, fenceSeq: seq, leaseDeadlineMonotonicMs: 5000 });
    assert.equal(hub.quiescedFor(5000, seq), false, 'a serving layer with calls in flight counted as quiesced');
    report({ serving: false, callsInFlight: 0, fenceSeq: seq, leaseDeadlineMonotonicMs: 5000 });
    assert.equal(hub.quiescedFor(5000, seq), true, 'stopped and nothing in flight after the fence');
  });

  it('with mutant gate-late-admit-unfences on, the serving layer counts as quiesced again (the fix\'s exact revert)', () => {
    setSimulationMutants(['gate-late-admit-unfences']);
    const { hub, report } = hubWithLayer();
    const seq = hub.fence('session lost');
    report({ serving: true, callsInFlight: 2, fenceSeq: seq, leaseDeadlineMonotonicMs: 5000 });
    assert.equal(hub.quiescedFor(5000, seq), true);
  });
});

describe('gate hub: a layer that leaves is idle only by a final report (found by the swarm)', () => {
  afterEach(() => setSimulationMutants([]));

  it('marks itself dirty when a layer whose last report said "not serving, nothing in flight" leaves without a final report', () => {
    const { hub, call, report } = hubWithLayer();
    report({ serving: false, callsInFlight: 0 });
    call.emit('close');
    assert.equal(hub.dirty, true, 'a renewal may have let it forward a call after that report');
  });

  it('stays clean when the layer\'s last report was final (a graceful stop)', () => {
    const { hub, call, report } = hubWithLayer();
    report({ serving: false, callsInFlight: 0, final: true });
    call.emit('close');
    assert.equal(hub.dirty, false);
  });

  it('with mutant hub-trusts-idle-report on, an idle-looking periodic report is trusted (the fix\'s exact revert)', () => {
    setSimulationMutants(['hub-trusts-idle-report']);
    const { hub, call, report } = hubWithLayer();
    report({ serving: false, callsInFlight: 0 });
    call.emit('close');
    assert.equal(hub.dirty, false);
  });
});

describe('gate hub: a late copy of an older report does not undo a newer one', () => {
  afterEach(() => setSimulationMutants([]));

  /** A layer stops gracefully; a copy of its periodic report before the final one arrives last (a retried or late call). */
  function finalThenStaleCopy() {
    const { hub, call, report } = hubWithLayer();
    report({ reportSeq: 7, serving: true, callsInFlight: 1 });
    report({ reportSeq: 8, serving: false, callsInFlight: 0, final: true });
    report({ reportSeq: 7, serving: true, callsInFlight: 1 });
    call.emit('close');
    return hub;
  }

  it('keeps the final report, so the clean graceful stop is not counted dirty (simulation seed 81 of gate-graceful-restart)', () => {
    assert.equal(finalThenStaleCopy().dirty, false, 'the older copy undid the final report: a needless fence of the NFS server');
  });

  it('takes every report of a layer that does not number them (an older gate)', () => {
    const { hub, call, report } = hubWithLayer();
    report({ reportSeq: 0, serving: true, callsInFlight: 1 });
    report({ reportSeq: 0, serving: false, callsInFlight: 0, final: true });
    call.emit('close');
    assert.equal(hub.dirty, false);
  });

  it('with mutant hub-takes-stale-report on, the older copy wins and the stop counts dirty (the fix\'s exact revert)', () => {
    setSimulationMutants(['hub-takes-stale-report']);
    assert.equal(finalThenStaleCopy().dirty, true);
  });
});
