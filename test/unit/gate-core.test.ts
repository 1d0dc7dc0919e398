import assert from 'node:assert/strict';
import { silentLogger } from '../../common/log';
import type { FenceResult } from '../../common/fence-command';
import { setSimulationMutants } from '../../common/mutants';
import { GateCore, type AdmitGrant, type ForwardedConn, type GateEventBody, type GateStateReport } from '../../follower/gate-core';
import { fakeClock, flush, type FakeClock } from '../support/fake-clock';

let serial = 0;

/** A forwarded connection whose calls the test answers by hand. */
class FakeConn implements ForwardedConn {
  readonly serial = ++serial;
  stopped = false;
  drained = false;
  why: string | undefined;
  inFlight = 0;
  unsentBytes = 0;
  forwarded = 0;
  constructor(readonly clientId: string, readonly openedAt: number, private readonly core: GateCore) {}

  /** The client sends one call: forwarded only if the gate still serves it. */
  call(): boolean {
    if (this.stopped || !this.core.mayForward(this)) {
      if (!this.stopped) this.stop('not serving');
      return false;
    }
    this.inFlight++;
    this.forwarded++;
    return true;
  }

  reply(): void {
    this.inFlight--;
    this.check();
  }

  stop(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.why = why;
    this.core.connStopped(this);
    this.check();
  }

  fenced(): void {
    this.inFlight = 0;
    this.stop('NFS server fenced');
    this.check();
  }

  private check(): void {
    if (this.stopped && !this.drained && this.inFlight === 0 && this.unsentBytes === 0) {
      this.drained = true;
      this.core.connDrained(this);
    }
  }
}

interface Harness {
  clock: FakeClock;
  core: GateCore;
  acks: string[];
  releases: string[];
  reports: GateStateReport[];
  events: GateEventBody[];
  fences: string[];
  fenceResult: (r: { ok: boolean }) => void;
  connect(clientId: string, seq?: number): Promise<FakeConn>;
}

function harness(opts: { fenceConfigured?: boolean; fenceMs?: number; fenceOk?: () => boolean; admit?: () => Promise<AdmitGrant> } = {}): Harness {
  const clock = fakeClock();
  const h = { clock, acks: [], releases: [], reports: [], events: [], fences: [] } as unknown as Harness;
  let nextSeq = 1;
  const core = new GateCore({
    name: 'gate-1', clock, log: silentLogger(),
    stopLeadMs: 1000, fenceLeadMs: 500, revokeDrainTimeoutMs: 1500,
    record: (e) => h.events.push(e),
    fence: {
      configured: opts.fenceConfigured ?? true,
      fence: async (why): Promise<FenceResult> => {
        h.fences.push(why);
        const startedAt = clock.now();
        await clock.tickAsync(opts.fenceMs ?? 30);
        const ok = opts.fenceOk?.() ?? true;
        return { ok, startedAt, ms: opts.fenceMs ?? 30, detail: ok ? 'ok' : 'exit 1' };
      },
    },
    link: {
      admit: opts.admit ?? (async (): Promise<AdmitGrant> => ({ clientId: 'host:esx-9', token: { epoch: 5, sequence: nextSeq++ }, leaseDeadline: 0, admissionSeq: nextSeq })),
      ackRevoke: (id) => h.acks.push(id),
      release: (c) => h.releases.push(c),
      report: (r) => { h.reports.push(r); },
    },
  });
  h.core = core;
  h.connect = async (clientId) => {
    const grant = await core.admit('10.0.0.9');
    assert.ok(grant, 'admitted');
    const conn = new FakeConn(clientId, clock.now(), core);
    assert.ok(core.attach(conn, { ...grant, clientId }));
    return conn;
  };
  return h;
}

/** A gate with its stream up and a lease that ends `leaseMs` from now. */
function serving(leaseMs = 3000, opts?: Parameters<typeof harness>[0]): Harness {
  const h = harness(opts);
  h.core.onWelcome(1, 250);
  h.core.onLease(h.clock.now() + leaseMs);
  return h;
}

describe('gate: drain before ack (DESIGN §4, requests not only connections)', () => {
  it('acks a revoke only once every call it had forwarded has its reply, and forwards nothing after the revoke', async () => {
    const h = serving();
    const c = await h.connect('host:esx-9');
    c.call(); c.call(); c.call();
    h.core.onRevoke({ revokeId: 'r1', clientId: 'host:esx-9', reason: 'login elsewhere', token: { epoch: 5, sequence: 1 } });
    assert.equal(c.stopped, true, 'stopped reading from the client at once');
    assert.equal(c.call(), false, 'a call read after the revoke is not forwarded');
    c.reply(); c.reply();
    assert.deepEqual(h.acks, [], 'one call still in flight: no ack');
    c.reply();
    assert.deepEqual(h.acks, ['r1']);
    const drained = h.events.find((e) => e.ev === 'drained');
    assert.deepEqual(drained && { calls: (drained as { calls: number }).calls }, { calls: 3 });
  });

  it('acks at once a revoke of a client with nothing in flight', async () => {
    const h = serving();
    await h.connect('host:esx-9');
    h.core.onRevoke({ revokeId: 'r1', clientId: 'host:esx-9', reason: 'x', token: { epoch: 5, sequence: 1 } });
    assert.deepEqual(h.acks, ['r1']);
    assert.deepEqual(h.fences, []);
  });

  it('fences the NFS server when a revoked client\'s calls are not answered within the drain timeout, then acks', async () => {
    const h = serving();
    const c = await h.connect('host:esx-9');
    c.call();
    h.core.onRevoke({ revokeId: 'r1', clientId: 'host:esx-9', reason: 'x', token: { epoch: 5, sequence: 1 } });
    await h.clock.tickAsync(1499);
    assert.deepEqual(h.fences, []);
    assert.deepEqual(h.acks, []);
    await h.clock.tickAsync(1);
    await flush();
    assert.equal(h.fences.length, 1);
    await h.clock.tickAsync(30);
    assert.deepEqual(h.acks, ['r1'], 'acked once the fence confirmed the server gone');
  });

  it('reports the calls a revoke still waits for, so the follower can tell the master it is draining', async () => {
    const h = serving();
    const c = await h.connect('host:esx-9');
    c.call(); c.call();
    h.core.onRevoke({ revokeId: 'r1.1', clientId: 'host:esx-9', reason: 'x', token: { epoch: 5, sequence: 1 } });
    await h.clock.tickAsync(1);
    const last = h.reports.at(-1)!;
    assert.deepEqual(last.draining, [{ revokeId: 'r1.1', clientId: 'host:esx-9', callsLeft: 2 }]);
    assert.equal(last.stoppedCallsInFlight, 2);
  });

  it('logs a client out only after its calls drained when it hangs up by itself', async () => {
    const h = serving();
    const c = await h.connect('host:esx-9');
    c.call();
    c.stop('client closed');
    assert.deepEqual(h.releases, []);
    c.reply();
    assert.deepEqual(h.releases, ['host:esx-9']);
  });
});

describe('gate: without a fence command, undrained revokes are held (issue 18: safe by default)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A revoke of a client with one call the NFS server never answers, on a gate with no fence command. */
  async function heldRevoke() {
    const h = serving(60_000, { fenceConfigured: false });
    const c = await h.connect('host:esx-9');
    c.call();
    h.core.onRevoke({ revokeId: 'r1', clientId: 'host:esx-9', reason: 'login elsewhere', token: { epoch: 5, sequence: 1 } });
    await h.clock.tickAsync(10 * 1500);
    await flush();
    return { h, c };
  }

  it('does not ack when the calls do not drain, keeps the client stopped and keeps reporting what is left', async () => {
    const { h, c } = await heldRevoke();
    assert.deepEqual(h.acks, [], 'no ack while a forwarded call may still execute');
    assert.equal(c.stopped, true);
    assert.equal(c.call(), false, 'nothing more forwarded');
    const last = h.reports.at(-1)!;
    assert.deepEqual(last.draining, [{ revokeId: 'r1', clientId: 'host:esx-9', callsLeft: 1 }]);
    assert.equal(last.fenceConfigured, false);
    c.reply();
    assert.deepEqual(h.acks, ['r1'], 'acked once the call got its reply');
  });

  it('acks a held revoke once the NFS server is confirmed stopped from outside', async () => {
    const { h } = await heldRevoke();
    h.core.onNfsServerFenced('operator/alice confirmed');
    assert.deepEqual(h.acks, ['r1']);
  });

  it('mutant gate-ack-undrained-without-fence brings back the old ack after the drain timeout', async () => {
    setSimulationMutants(['gate-ack-undrained-without-fence']);
    const { h } = await heldRevoke();
    assert.deepEqual(h.acks, ['r1']);
  });

  it('reports a failed fence run until one succeeds, and retries it', async () => {
    let ok = false;
    const h = serving(60_000, { fenceOk: () => ok });
    const c = await h.connect('host:esx-9');
    c.call();
    h.core.onRevoke({ revokeId: 'r1', clientId: 'host:esx-9', reason: 'x', token: { epoch: 5, sequence: 1 } });
    await h.clock.tickAsync(1500 + 30);
    await flush();
    await h.clock.tickAsync(1);
    assert.equal(h.fences.length, 1);
    assert.equal(h.reports.at(-1)!.fenceFailed, true, 'the failure is reported');
    assert.deepEqual(h.acks, []);
    ok = true;
    await h.clock.tickAsync(1500 + 30);
    await flush();
    await h.clock.tickAsync(1);
    assert.equal(h.fences.length, 2, 'retried');
    assert.deepEqual(h.acks, ['r1']);
    assert.equal(h.reports.at(-1)!.fenceFailed, false);
  });
});

describe('gate: lease stop point and fence point', () => {
  it('stops forwarding stopLead before the deadline, checked on every call even when its timer has not run', async () => {
    const h = serving(3000);
    const c = await h.connect('host:esx-9');
    // Move the clock without running timers, as a process waking from SIGSTOP
    // may handle socket I/O before its timers.
    (h.clock as unknown as { now: () => number }).now = ((base) => () => base + 2000)(h.clock.now());
    assert.equal(c.call(), false);
    assert.equal(c.stopped, true);
    assert.ok(h.events.some((e) => e.ev === 'drop'));
  });

  it('fences the NFS server at deadline − E when calls are still in flight, never earlier', async () => {
    const h = serving(3000);
    const c = await h.connect('host:esx-9');
    c.call();
    await h.clock.tickAsync(2000);
    assert.equal(c.stopped, true, 'stopped at deadline − stopLead');
    await h.clock.tickAsync(499);
    assert.deepEqual(h.fences, []);
    await h.clock.tickAsync(1);
    await flush();
    assert.equal(h.fences.length, 1);
  });

  it('runs a failed fence again at once at the fence point, until one works (the master\'s wait-out does not wait for it)', async () => {
    let runs = 0;
    const h = serving(3000, { fenceOk: () => ++runs >= 3 });
    const c = await h.connect('host:esx-9');
    c.call();
    await h.clock.tickAsync(2500);
    await flush();
    for (let i = 0; i < 6; i++) { await h.clock.tickAsync(50); await flush(); }
    assert.equal(h.fences.length, 3, 'two failures, then a run that worked, all before the deadline');
    assert.equal(c.stopped && c.inFlight, 0, 'the fence ended the call');
    const more = h.fences.length;
    await h.clock.tickAsync(1000);
    assert.equal(h.fences.length, more, 'no run after one worked');
  });

  it('with mutant fence-point-no-retry on, a failed fence at the fence point is not run again', async () => {
    setSimulationMutants(['fence-point-no-retry']);
    try {
      const h = serving(3000, { fenceOk: () => false });
      const c = await h.connect('host:esx-9');
      c.call();
      await h.clock.tickAsync(2500);
      await flush();
      for (let i = 0; i < 6; i++) { await h.clock.tickAsync(50); await flush(); }
      assert.equal(h.fences.length, 1);
    } finally {
      setSimulationMutants([]);
    }
  });

  it('does not fence at deadline − E when every call drained after the stop point', async () => {
    const h = serving(3000);
    const c = await h.connect('host:esx-9');
    c.call();
    await h.clock.tickAsync(2100);
    c.reply();
    assert.equal(h.core.quiesced(), true);
    await h.clock.tickAsync(1000);
    assert.deepEqual(h.fences, []);
    assert.equal(h.reports.at(-1)!.quiesced, true);
  });

  it('renewals move both points: a lease renewed in time neither stops nor fences', async () => {
    const h = serving(3000);
    const c = await h.connect('host:esx-9');
    c.call();
    for (let i = 0; i < 10; i++) {
      await h.clock.tickAsync(500);
      h.core.onLease(h.clock.now() + 2900);
    }
    assert.equal(c.stopped, false);
    assert.deepEqual(h.fences, []);
  });
});

describe('gate: no admission without the revoke stream', () => {
  it('admits nothing before the stream is up, after it ended, or after a fence until renewed', async () => {
    const h = harness();
    assert.equal(await h.core.admit('10.0.0.9'), undefined, 'no stream yet');
    h.core.onWelcome(1, 250);
    assert.equal(await h.core.admit('10.0.0.9'), undefined, 'stream but no lease');
    h.core.onLease(h.clock.now() + 3000);
    const c = await h.connect('host:esx-9');
    h.core.onStreamEnded('follower gone');
    assert.equal(c.stopped, true, 'every client dropped when the stream ends');
    assert.equal(await h.core.admit('10.0.0.9'), undefined, 'no admission without the stream');
    h.core.onLease(h.clock.now() + 3000);
    assert.equal(h.core.serving(), false, 'a lease renewal from no stream does not revive it');
    h.core.onWelcome(2, 250);
    h.core.onLease(h.clock.now() + 2900);
    assert.equal(h.core.serving(), true);
    h.core.onFence('session lost', 1);
    assert.equal(await h.core.admit('10.0.0.9'), undefined, 'fenced');
    assert.equal(h.reports.at(-1)?.fenceSeq ?? (await h.clock.tickAsync(1), h.reports.at(-1)!.fenceSeq), 1);
  });
});

describe('gate: a late Admit reply does not lift a follower fence (issue 18 hole a)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A gate serving a 3 s lease whose Admit replies the test sends by hand. */
  function lateAdmit() {
    let answer!: (g: AdmitGrant) => void;
    const h = serving(3000, { admit: () => new Promise<AdmitGrant>((r) => { answer = r; }) });
    const reply = (leaseDeadline: number) => answer({ clientId: 'host:esx-9', token: { epoch: 5, sequence: 1 }, leaseDeadline, admissionSeq: 1 });
    return { h, reply };
  }

  it('refuses a connection whose Admit reply, sent before the follower fenced, arrives after the fence, and stays fenced', async () => {
    const { h, reply } = lateAdmit();
    const deadline = h.core.leaseDeadline;
    const admitting = h.core.admit('10.0.0.9');
    h.core.onFence('session lost', 1);
    reply(deadline);
    assert.equal(await admitting, undefined, 'admitted a connection after the fence');
    assert.equal(h.core.serving(), false, 'the reply\'s lease deadline lifted the fence');
    // Even a reply carrying a later deadline (the follower renewed just before it fenced) lifts nothing.
    const again = lateAdmit();
    const later = again.h.core.admit('10.0.0.9');
    again.h.core.onFence('session lost', 1);
    again.reply(again.h.core.leaseDeadline + 500);
    assert.equal(await later, undefined);
    assert.equal(again.h.core.serving(), false);
  });

  it('refuses a reply from before the fence even once a renewal on the stream lifted it; a renewal alone serves again', async () => {
    const { h, reply } = lateAdmit();
    const admitting = h.core.admit('10.0.0.9');
    h.core.onFence('session lost', 1);
    h.core.onLease(h.clock.now() + 3000);
    assert.equal(h.core.serving(), true, 'a renewal on the stream after the fence serves again');
    reply(h.core.leaseDeadline);
    assert.equal(await admitting, undefined, 'the grant asked before the fence may be one the follower forgot');
    // A stream that ended and came back may have lost a revoke of the grant: the same.
    const again = lateAdmit();
    const later = again.h.core.admit('10.0.0.9');
    again.h.core.onStreamEnded('follower restarted');
    again.h.core.onWelcome(2, 250);
    again.h.core.onLease(again.h.clock.now() + 3000);
    again.reply(again.h.core.leaseDeadline);
    assert.equal(await later, undefined, 'admitted a reply asked on a stream that has since ended');
  });

  it('with mutant gate-late-admit-unfences on, the late reply lifts the fence and is served again (the fix\'s exact revert)', async () => {
    setSimulationMutants(['gate-late-admit-unfences']);
    const { h, reply } = lateAdmit();
    const deadline = h.core.leaseDeadline;
    const admitting = h.core.admit('10.0.0.9');
    h.core.onFence('session lost', 1);
    reply(deadline);
    assert.ok(await admitting, 'the old bug: admitted after the fence');
    assert.equal(h.core.serving(), true, 'the old bug: the reply lifted the fence');
  });
});

describe('gate: an Admit reply its own release covered is refused (campaign seed 488470164)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * A host with connections from two addresses: the follower numbered the
   * mgmt address's admission 1 and the storage address's 2; the reply for 1
   * is late. The storage connection closes, so the gate releases the client
   * covering admissions up to 2, and the master may grant it elsewhere.
   */
  async function releasedWhileAReplyIsLate() {
    const answers = new Map<string, (g: AdmitGrant) => void>();
    const releases: Array<{ clientId: string; upTo: number }> = [];
    const h = serving(3000, { admit: () => new Promise<AdmitGrant>((r) => { answers.set(answers.size ? 'storage' : 'mgmt', r); }) });
    (h.core as unknown as { opts: { link: { release(c: string, upTo: number): void } } }).opts.link.release = (clientId, upTo) => releases.push({ clientId, upTo });
    const grant = (admissionSeq: number): AdmitGrant => ({ clientId: 'host:esx-2', token: { epoch: 5, sequence: 6 }, leaseDeadline: h.core.leaseDeadline, admissionSeq });
    const viaMgmt = h.core.admit('10.20.0.12');
    const viaStorage = h.core.admit('10.10.0.12');
    answers.get('storage')!(grant(2));
    const g = await viaStorage;
    assert.ok(g, 'the storage address is admitted');
    const conn = new FakeConn('host:esx-2', h.clock.now(), h.core);
    assert.ok(h.core.attach(conn, g));
    conn.stop('client closed');
    assert.deepEqual(releases, [{ clientId: 'host:esx-2', upTo: 2 }], 'released, covering both admissions');
    answers.get('mgmt')!(grant(1));
    return { h, late: await viaMgmt };
  }

  it('refuses the late reply: the release covered that admission, and the client may be served elsewhere now', async () => {
    const { h, late } = await releasedWhileAReplyIsLate();
    assert.equal(late, undefined, 'the late reply was admitted after the release that covered it');
    assert.deepEqual(h.core.admittedClients(), []);
  });

  it('with mutant gate-admit-after-release on, the late reply is admitted (the fix\'s exact revert)', async () => {
    setSimulationMutants(['gate-admit-after-release']);
    const { late } = await releasedWhileAReplyIsLate();
    assert.ok(late, 'the old bug: admitted under a grant its release gave up');
  });
});

describe('gate: reports every client with calls in flight, admitted or stopped (issue 18 hole f)', () => {
  const last = (h: Harness) => h.reports[h.reports.length - 1].clientsInFlight;

  it('lists a client\'s calls owed while it is served and after a fence stopped it, until they drained', async () => {
    const h = serving();
    const c = await h.connect('host:esx-9');
    c.call(); c.call();
    await h.clock.tickAsync(250);
    assert.deepEqual(last(h), [{ clientId: 'host:esx-9', calls: 2 }]);
    h.core.onFence('session lost', 1);
    await h.clock.tickAsync(0);
    assert.equal(h.core.admittedClients().length, 0, 'stopped');
    assert.deepEqual(last(h), [{ clientId: 'host:esx-9', calls: 2 }], 'a stopped client whose calls still run is not reported');
    c.reply(); c.reply();
    await h.clock.tickAsync(250);
    assert.deepEqual(last(h), []);
  });
});
