import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { silentLogger } from '../../common/log';
import { setSimulationMutants } from '../../common/mutants';
import type { GateClient } from '../../common/proto';
import type { ForwardedConn } from '../../follower/gate-core';
import { GateHub } from '../../follower/gate-hub';
import { TcpGate } from '../../follower/tcp-gate';
import type { GateCommand } from '../../gen/nfsha/v1/GateCommand';
import type { GateReport__Output } from '../../gen/nfsha/v1/GateReport';
import { fakeClock, flush } from '../support/fake-clock';

/** A forwarded connection whose one call the test answers by hand. */
class FakeConn implements ForwardedConn {
  readonly serial = 1;
  stopped = false;
  drained = false;
  why: string | undefined;
  inFlight = 0;
  unsentBytes = 0;
  constructor(readonly clientId: string, readonly openedAt: number, private readonly gate: TcpGate) {}
  stop(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.why = why;
    this.gate.core.connStopped(this);
    this.check();
  }
  reply(): void {
    this.inFlight--;
    this.check();
  }
  fenced(): void {
    this.inFlight = 0;
    this.stop('NFS server fenced');
    this.check();
  }
  private check(): void {
    if (this.stopped && !this.drained && this.inFlight === 0) {
      this.drained = true;
      this.gate.core.connDrained(this);
    }
  }
}

/**
 * A TcpGate (no listening ports) wired to a real GateHub through a fake Gate
 * client: the hub's writes reach the gate's stream, the gate's reports reach
 * the hub, and cancelling the stream makes the hub see the layer leave.
 */
function gateAndHub(opts: { stopDrainTimeoutMs?: number } = {}) {
  const clock = fakeClock();
  const hub = new GateHub(clock, 250);
  let stream: EventEmitter & { cancel(): void } | undefined;
  let cancelled = false;
  const client = {
    WatchRevokes: () => {
      const serverCall = Object.assign(new EventEmitter(), {
        request: { watcher: 'gate-1' },
        write: (cmd: GateCommand) => {
          const kind = Object.keys(cmd)[0];
          queueMicrotask(() => stream!.emit('data', { ...cmd, kind }));
          return true;
        },
        end: () => undefined,
      });
      stream = Object.assign(new EventEmitter(), {
        cancel: () => { cancelled = true; serverCall.emit('cancelled'); },
      });
      queueMicrotask(() => hub.add(serverCall as never, { lease: { remainingMs: 3000, deadlineMonotonicMs: clock.now() + 3000 } }));
      return stream;
    },
    Report: (r: GateReport__Output, _o: unknown, cb: (err: null, r: object) => void) => {
      queueMicrotask(() => { hub.report(r); cb(null, {}); });
    },
    AckRevoke: (_r: unknown, _o: unknown, cb: (err: null, r: object) => void) => cb(null, {}),
    Release: (_r: unknown, _o: unknown, cb: (err: null, r: object) => void) => cb(null, {}),
    close: () => undefined,
  } as unknown as GateClient;
  const gate = new TcpGate({ name: 'gate-1', follower: 'unix:/nonexistent', routes: [], tls: { insecure: true }, ...opts }, silentLogger(), clock, client);
  return { clock, hub, gate, isCancelled: () => cancelled };
}

/** The gate started, welcomed, serving one admitted connection with `calls` in flight, and having reported so. */
async function servingWithCalls(calls: number, opts?: Parameters<typeof gateAndHub>[0]) {
  const t = gateAndHub(opts);
  await t.gate.start();
  await flush();
  assert.equal(t.gate.core.serving(), true);
  const conn = new FakeConn('host:esx-9', t.clock.now(), t.gate);
  assert.ok(t.gate.core.attach(conn, { clientId: 'host:esx-9', token: { epoch: 5, sequence: 1 }, leaseDeadline: 0, admissionSeq: 1 }));
  conn.inFlight = calls;
  await t.clock.tickAsync(250);
  await flush();
  return { ...t, conn };
}

describe('gate: a graceful stop waits for its drains (issue 18 hole b)', () => {
  afterEach(() => setSimulationMutants([]));

  it('stops serving at once but keeps its stream until every stopped connection drained', async () => {
    const t = await servingWithCalls(2);
    let done = false;
    const stopping = t.gate.stop().then(() => { done = true; });
    await flush();
    assert.equal(done || t.isCancelled(), false, 'closed its stream with calls still in the NFS server');
    assert.equal(t.conn.stopped, true, 'stopped forwarding at once');
    assert.equal(t.gate.core.serving(), false);
    t.conn.reply();
    await flush();
    assert.equal(done, false, 'one call still owed');
    t.conn.reply();
    await stopping;
    assert.equal(t.isCancelled(), true);
  });

  it('waits at most stopDrainTimeoutMs for a stuck NFS server, then leaves the follower dirty', async () => {
    const t = await servingWithCalls(1, { stopDrainTimeoutMs: 1500 });
    let done = false;
    void t.gate.stop().then(() => { done = true; });
    await t.clock.tickAsync(1499);
    await flush();
    assert.equal(done || t.isCancelled(), false, 'gave up waiting for the drain before the timeout');
    await t.clock.tickAsync(1);
    await flush();
    assert.equal(done, true);
    assert.equal(t.hub.dirty, true, 'calls still owed when the layer left: the NFS server must be fenced');
  });

  it('with mutant follower-release-while-dirty on, stops without waiting for its calls (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-release-while-dirty']);
    const t = await servingWithCalls(2);
    await t.gate.stop();
    assert.equal(t.isCancelled(), true);
    assert.equal(t.conn.inFlight, 2);
  });
});

describe('gate: a graceful stop leaves the follower clean (issue 18 hole g)', () => {
  afterEach(() => setSimulationMutants([]));

  it('sends a final report (not serving, nothing in flight) and waits for the follower to have it before closing its stream', async () => {
    const t = await servingWithCalls(0);
    assert.equal(t.hub.layers()[0].serving, true, 'its last periodic report said serving');
    await t.gate.stop();
    assert.equal(t.isCancelled(), true);
    assert.equal(t.hub.dirty, false, 'an idle gate that stopped gracefully marked the follower dirty');
  });

  it('the same once its calls drained', async () => {
    const t = await servingWithCalls(1);
    const stopping = t.gate.stop();
    await flush();
    t.conn.reply();
    await stopping;
    assert.equal(t.hub.dirty, false);
  });

  it('with mutant gate-stop-without-final-report on, an idle gate that stops marks the follower dirty (the fix\'s exact revert)', async () => {
    setSimulationMutants(['gate-stop-without-final-report']);
    const t = await servingWithCalls(0);
    await t.gate.stop();
    assert.equal(t.hub.dirty, true);
  });
});
