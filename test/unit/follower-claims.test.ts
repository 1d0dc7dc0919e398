import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { setSimulationMutants } from '../../common/mutants';
import { silentLogger } from '../../common/log';
import type { SessionMasterClient } from '../../common/proto';
import type { Token } from '../../common/token';
import { Follower, type NfsFence } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import type { FollowerMessage } from '../../gen/nfsha/v1/FollowerMessage';
import type { GateReport__Output } from '../../gen/nfsha/v1/GateReport';
import { fakeClock, flush } from '../support/fake-clock';

type Claim = { clientId: string; token: Token };
/** What an introduction says: the clients claimed with their grants' tokens, and those with calls in flight but no grant. */
type Intro = { claims: string[]; tokens: Claim[]; inFlight: string[]; unaccounted: boolean };

/**
 * A follower talking to a master the test plays over a fake Session stream
 * (every introduction it sends is kept, with what it claims), one NFS layer
 * watching (the revokes sent to it are kept), and a fence of its NFS server
 * that succeeds, fails, or is not configured.
 */
function follower(opts: { fence?: 'ok' | 'fails' | 'none' } = {}) {
  const clock = fakeClock();
  const intros: Intro[] = [];
  let stream: EventEmitter | undefined;
  const connect = () => ({
    Session: () => {
      const s = Object.assign(new EventEmitter(), {
        write: (m: FollowerMessage) => {
          if (m.introduction) {
            const tokens = (m.introduction.clients ?? []).map((c) => ({ clientId: c.clientId!, token: { epoch: Number(c.token?.epoch ?? -1), sequence: Number(c.token?.sequence ?? -1) } }));
            intros.push({ claims: tokens.map((c) => c.clientId).sort(), tokens, inFlight: [...(m.introduction.clientsInFlight ?? [])].sort(), unaccounted: m.introduction.nfsUnaccounted === true });
          }
          return true;
        },
        cancel: () => undefined,
      });
      stream = s;
      return s;
    },
    close: () => undefined,
  }) as unknown as SessionMasterClient;
  const kind = opts.fence ?? 'ok';
  const fenceRuns: string[] = [];
  let fenceOk = kind === 'ok';
  const fence: NfsFence = {
    configured: kind !== 'none',
    timeoutMs: 1000,
    fence: async (why) => {
      fenceRuns.push(why);
      return { ok: fenceOk, startedAt: clock.now(), ms: 1, detail: fenceOk ? 'ok' : 'exit 1' };
    },
  };
  const f = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-3', hostId: 'esx-3', master: '127.0.0.1:1', noFence: kind === 'none' }, clock, silentLogger(), {
    connect, fence,
    // Reconnects wait half their backoff ceiling: with Math.random, a new
    // session's lease could end within a few ms of the one before, and its
    // own fence point then fell inside a window a test looks at (1 run in 20).
    random: () => 0.5,
  });
  const acks: string[] = [];
  f.session.sendRevokeAck = (id: string) => { acks.push(id); };
  f.session.sendRevokeProgress = () => true;
  const toLayer: Array<{ revokeId: string; clientId: string }> = [];
  const call = Object.assign(new EventEmitter(), {
    request: { watcher: 'gate-3' },
    write: (cmd: { revoke?: { revokeId: string; clientId: string } }) => { if (cmd.revoke) toLayer.push(cmd.revoke); return true; },
    end: () => undefined,
  });
  const watcherId = f.hub.add(call as never, { lease: { remainingMs: 3000 } });
  const t = {
    clock, f, intros, fenceRuns, acks, toLayer, call, watcherId,
    set fenceOk(ok: boolean) { fenceOk = ok; },
    /** The master answers the introduction in flight. */
    async grant(sessionId: string, epoch: number, adopted: string[], resumed = false) {
      stream!.emit('data', { kind: 'granted', granted: { sessionId, ttlMs: 3000, keepaliveIntervalMs: 500, epoch, resumed, adoptedClients: adopted, protocol: 2, waitOutSlackMs: 0 } });
      await flush();
    },
    /** The stream breaks (UNAVAILABLE: a master restart, a new leader; ABORTED: condemned); returns what the next introduction says. */
    async reintroduce(code = grpc.status.UNAVAILABLE): Promise<Intro> {
      const n = intros.length;
      stream!.emit('error', Object.assign(new Error('stream broke'), { code, details: code === grpc.status.ABORTED ? 'session condemned' : 'master gone' }));
      await clock.tickAsync(600);
      assert.equal(intros.length, n + 1, 'introduced itself again');
      return intros[n];
    },
    /** The NFS layer's report: `draining` revokes, and clients with calls in flight on its connections. */
    report(r: Partial<GateReport__Output>) {
      assert.ok(f.hub.report({
        watcherId, leaseDeadlineMonotonicMs: f.lease.deadlineMs, serving: false, callsInFlight: 0, quiesced: false, draining: [], fenceSeq: 0, stoppedCallsInFlight: 0,
        fenceConfigured: true, fenceTimeoutMs: 1000, fenceFailed: false, clientsInFlight: [], final: false, ...r,
      } as GateReport__Output));
    },
  };
  return t;
}


/**
 * scvm-3 serves host:esx-9 in session s1; a new master (s2) does not adopt
 * it (a grant made since outranks the claim, or the session's client limit),
 * so the follower revokes it locally while its NFS layer drains it.
 */
async function notAdopted(opts: Parameters<typeof follower>[0] = {}) {
  const t = follower(opts);
  t.f.session.start();
  await t.grant('s1', 5, []);
  t.f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 5, sequence: 1 });
  assert.deepEqual((await t.reintroduce()).claims, ['host:esx-9']);
  await t.grant('s2', 6, []);
  assert.deepEqual(t.toLayer.map((r) => r.clientId), ['host:esx-9'], 'revoked locally at the NFS layer');
  assert.equal(t.f.admissions.tokenOf('host:esx-9'), undefined);
  return t;
}

describe('follower: clients a new session did not adopt are claimed while they drain (issue 18 hole c)', () => {
  afterEach(() => setSimulationMutants([]));

  it('claims the client in an introduction made during its drain, shows it draining, and forgets it once drained', async () => {
    const t = await notAdopted();
    assert.deepEqual((await t.reintroduce()).claims, ['host:esx-9'], 'an introduction during the drain omitted host:esx-9: a new master could end its grace and grant it elsewhere while its calls still run here');
    assert.deepEqual(t.f.status().draining, ['host:esx-9'], 'status does not show the drain');
    await t.grant('s2', 6, ['host:esx-9'], true);
    assert.equal(t.f.hub.ack(t.toLayer[0].revokeId), true);
    await flush();
    assert.deepEqual(t.f.status().draining, []);
    assert.deepEqual((await t.reintroduce()).claims, [], 'still claimed after its drain ended');
  });

  it('with mutant follower-replaced-not-draining on, the introduction during the drain omits it (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-replaced-not-draining']);
    const t = await notAdopted();
    assert.deepEqual((await t.reintroduce()).claims, []);
    assert.deepEqual(t.f.status().draining, []);
  });
});

describe('follower: a local revoke of a client not adopted fences like a master\'s revoke (issue 18 hole e)', () => {
  // A layer that leaves also triggers the follower's eager fence (its own
  // test below); it is held off here so these count the local revoke's run.
  const lazy = () => setSimulationMutants(['follower-lazy-fence-on-lost-layer']);
  beforeEach(lazy);
  afterEach(() => setSimulationMutants([]));

  it('fences the NFS server when the NFS layer left before acking, and ends the drain once fenced', async () => {
    const t = await notAdopted({ fence: 'ok' });
    t.call.emit('close');
    await flush();
    assert.equal(t.fenceRuns.length, 1, 'no fence of the NFS server after an NFS layer left with host:esx-9\'s calls unknown');
    assert.equal(t.f.hub.dirty, false);
    assert.deepEqual(t.f.status().draining, []);
  });

  it('fences the NFS server when an NFS layer that left earlier made the hub dirty, though the layer watching now acked', async () => {
    const t = await notAdopted({ fence: 'ok' });
    // A second layer that reported calls in flight dies: the hub is dirty.
    const other = Object.assign(new EventEmitter(), { request: { watcher: 'gate-3b' }, write: () => true, end: () => undefined });
    const otherId = t.f.hub.add(other as never, { lease: { remainingMs: 3000 } });
    t.f.hub.report({ watcherId: otherId, leaseDeadlineMonotonicMs: 0, serving: true, callsInFlight: 2, quiesced: false, draining: [], fenceSeq: 0, stoppedCallsInFlight: 0, fenceConfigured: true, fenceTimeoutMs: 1000, fenceFailed: false, clientsInFlight: [], final: false, reportSeq: 0 } as GateReport__Output);
    other.emit('close');
    assert.equal(t.f.hub.dirty, true);
    t.f.hub.ack(t.toLayer[0].revokeId);
    await flush();
    assert.equal(t.fenceRuns.length, 1, 'no fence of the NFS server while an NFS layer that left may still have calls in it');
    assert.equal(t.f.hub.dirty, false);
  });

  it('when no fence succeeds, keeps the client claimed and draining until an operator confirms a fence', async () => {
    const t = await notAdopted({ fence: 'none' });
    t.call.emit('close');
    await flush();
    assert.deepEqual(t.f.status().draining, ['host:esx-9'], 'a client whose calls nothing proved stopped is no longer shown as draining');
    assert.deepEqual((await t.reintroduce()).claims, ['host:esx-9'], 'a client whose calls nothing proved stopped is no longer claimed');
    await t.grant('s2', 6, ['host:esx-9'], true);
    t.f.session.emit('fenceConfirmed', { operator: 'alice', reason: 'checked nfs-3 is down' });
    await flush();
    assert.deepEqual(t.f.status().draining, []);
    assert.deepEqual((await t.reintroduce()).claims, []);
  });

  it('holds when the fence fails, and a fence that succeeds later (a master\'s revoke of the client tries again) ends the hold', async () => {
    const t = await notAdopted({ fence: 'fails' });
    t.call.emit('close');
    await flush();
    assert.equal(t.fenceRuns.length, 1, 'no fence of the NFS server after an NFS layer left with host:esx-9\'s calls unknown');
    assert.deepEqual(t.f.status().draining, ['host:esx-9'], 'a client whose calls nothing proved stopped is no longer shown as draining');
    // The master (s2 held the claim and revokes it) asks for it too; the fence works by now.
    t.fenceOk = true;
    t.f.session.emit('revoke', { revokeId: 'm1', clientId: 'host:esx-9', epoch: 6, reason: 'stale claim', token: { epoch: 5, sequence: 1 } });
    await flush();
    assert.equal(t.fenceRuns.length, 2);
    assert.deepEqual(t.acks, ['m1']);
    assert.deepEqual(t.f.status().draining, []);
    const next = await t.reintroduce();
    assert.deepEqual([next.claims, next.inFlight], [[], []], 'the held local revoke outlived the revoke that proved its client stopped');
  });

  it('retries the fence while a revoke is held, and a run that works ends the hold with no revoke from anyone (found by the liveness phase)', async () => {
    const t = await notAdopted({ fence: 'fails' });
    t.call.emit('close');
    await flush();
    assert.deepEqual(t.f.status().draining, ['host:esx-9']);
    t.fenceOk = true;
    await t.clock.tickAsync(200);
    await flush();
    assert.equal(t.fenceRuns.length, 2, 'tried again');
    assert.deepEqual(t.f.status().draining, [], 'the fence that worked started after the hold: the calls are stopped');
  });

  it('with mutant follower-held-revoke-never-refenced on, the hold outlives any fence (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-lazy-fence-on-lost-layer', 'follower-held-revoke-never-refenced']);
    const t = await notAdopted({ fence: 'fails' });
    t.call.emit('close');
    await flush();
    t.fenceOk = true;
    await t.clock.tickAsync(1000);
    await flush();
    assert.equal(t.fenceRuns.length, 1);
    assert.deepEqual(t.f.status().draining, ['host:esx-9']);
  });

  it('with mutant follower-replaced-no-fence on, nothing is fenced and the drain ends unproven (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-replaced-no-fence', 'follower-lazy-fence-on-lost-layer']);
    const t = await notAdopted({ fence: 'ok' });
    t.call.emit('close');
    await flush();
    assert.equal(t.fenceRuns.length, 0);
    assert.equal(t.f.hub.dirty, true);
    assert.deepEqual(t.f.status().draining, []);
  });
});

describe('follower: an introduction lists every client with calls in flight at an NFS layer, whatever the follower forgot (issue 18 hole f)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * Simulation seed 612946: scvm-3's master revokes host:esx-2 while 3 of
   * its calls sit in a hung NFS server; the follower is condemned, fences
   * itself (forgetting the drain) and opens session s2; the master restarts.
   */
  async function condemnedWhileDraining() {
    const t = follower({ fence: 'none' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.f.admissions.grant('10.0.0.2', 'host:esx-2', { epoch: 5, sequence: 1 });
    t.f.admissions.grant('10.0.0.3', 'host:esx-3', { epoch: 5, sequence: 2 });
    t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-2', epoch: 5, reason: 'login on scvm-2', token: { epoch: 5, sequence: 1 } });
    await flush();
    t.report({ serving: true, callsInFlight: 3, draining: [{ revokeId: t.toLayer[0].revokeId, clientId: 'host:esx-2', callsLeft: 3 }] });
    const afterFence = await t.reintroduce(grpc.status.ABORTED);
    assert.equal(t.f.lease.isLive(), false, 'fenced');
    await t.grant('s2', 5, []);
    t.f.admissions.grant('10.0.0.3', 'host:esx-3', { epoch: 5, sequence: 3 });
    t.report({ fenceSeq: 1, stoppedCallsInFlight: 3, draining: [{ revokeId: t.toLayer[0].revokeId, clientId: 'host:esx-2', callsLeft: 3 }] });
    const afterRestart = await t.reintroduce();
    return { t, afterFence, afterRestart };
  }

  it('lists a client an NFS layer still drains after the follower fenced and forgot it (sim seed 612946)', async () => {
    const { afterFence, afterRestart } = await condemnedWhileDraining();
    assert.deepEqual(afterRestart.inFlight, ['host:esx-2'], 're-introduction omitted host:esx-2, which still has 3 calls in flight at gate-3: the new master may end its grace and grant it to scvm-2');
    assert.deepEqual(afterRestart.claims, ['host:esx-3'], 'claimed with a grant it no longer holds');
    // Right after the fence the layer has not read it yet: host:esx-3, which
    // it dropped, may still be served there (seed 488438426's rule, below).
    assert.deepEqual(afterFence.inFlight, ['host:esx-2', 'host:esx-3']);
    assert.deepEqual(afterFence.claims, []);
  });

  it('lists a client whose stopped connections an NFS layer reports with calls in flight (no revoke), until they drained', async () => {
    const t = follower();
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.report({ stoppedCallsInFlight: 2, clientsInFlight: [{ clientId: 'host:esx-7', calls: 2 }] });
    assert.deepEqual((await t.reintroduce()).inFlight, ['host:esx-7'], 'omitted a client with calls in flight at its NFS layer');
    await t.grant('s1', 5, [], true);
    t.report({ clientsInFlight: [] });
    assert.deepEqual((await t.reintroduce()).inFlight, []);
  });

  it('lists a client whose revoke is held (an NFS layer left, no fence) after the follower fenced, until an operator confirms a fence', async () => {
    const t = follower({ fence: 'none' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.f.admissions.grant('10.0.0.2', 'host:esx-2', { epoch: 5, sequence: 1 });
    t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-2', epoch: 5, reason: 'login on scvm-2', token: { epoch: 5, sequence: 1 } });
    await flush();
    t.call.emit('close');
    await flush();
    assert.deepEqual(t.acks, [], 'held, not acked');
    const afterFence = await t.reintroduce(grpc.status.ABORTED);
    assert.deepEqual(afterFence.inFlight, ['host:esx-2'], 'omitted a client whose calls a departed NFS layer may have left in the NFS server');
    await t.grant('s2', 5, []);
    t.f.session.emit('fenceConfirmed', { operator: 'alice', reason: 'checked nfs-3 is down' });
    await flush();
    assert.deepEqual((await t.reintroduce()).inFlight, []);
  });

  it('with mutant follower-claims-omit-inflight on, the re-introduction omits it (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-claims-omit-inflight']);
    const { afterRestart } = await condemnedWhileDraining();
    assert.deepEqual(afterRestart.inFlight, []);
    assert.deepEqual(afterRestart.claims, ['host:esx-3']);
  });
});

describe('follower: clients a fence dropped are listed until every NFS layer read the fence (campaign seed 488438426)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * scvm-3 serves host:esx-2 (idle: its layer reports nothing in flight)
   * when the master condemns the session; the follower fences, opens s2,
   * and then the leader changes. Its layer sleeps and has not read the
   * fence: it still serves host:esx-2 on the leases sent before it.
   */
  async function fencedWhileTheLayerSleeps() {
    const t = follower({ fence: 'ok' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.f.admissions.grant('10.0.0.2', 'host:esx-2', { epoch: 5, sequence: 1 });
    t.report({ serving: true });
    const ended = t.f.lease.deadlineMs;
    const afterFence = await t.reintroduce(grpc.status.ABORTED);
    await t.grant('s2', 5, []);
    const afterFailover = await t.reintroduce();
    return { t, ended, afterFence, afterFailover };
  }

  it('lists the dropped client as in flight, to the same master and to a new leader, while the layer has not read the fence', async () => {
    const { afterFence, afterFailover } = await fencedWhileTheLayerSleeps();
    assert.deepEqual(afterFence.inFlight, ['host:esx-2']);
    assert.deepEqual(afterFailover.inFlight, ['host:esx-2'], 'the new leader\'s introduction omitted host:esx-2, which the sleeping layer still serves on the lease the fence ended: the leader may grant it elsewhere');
    assert.deepEqual(afterFailover.claims, [], 'listed with no grant: held and revoked here, not served again');
  });

  it('stops listing it once the layer reports the fence, or once the lease the fence ended is over', async () => {
    const { t } = await fencedWhileTheLayerSleeps();
    t.report({ fenceSeq: t.f.hub.currentFenceSeq });
    await t.grant('s2', 5, [], true);
    assert.deepEqual((await t.reintroduce()).inFlight, [], 'still listed after the layer read the fence');
    const late = await fencedWhileTheLayerSleeps();
    await late.t.grant('s2', 5, [], true);
    await late.t.clock.tickAsync(late.ended - late.t.clock.now() + 1);
    assert.deepEqual((await late.t.reintroduce()).inFlight, [], 'still listed after the ended lease was over');
  });

  it('with mutant follower-intro-omits-fence-dropped on, the introductions omit it (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-intro-omits-fence-dropped']);
    const { afterFence, afterFailover } = await fencedWhileTheLayerSleeps();
    assert.deepEqual([afterFence.inFlight, afterFailover.inFlight], [[], []]);
  });
});

describe('follower: an NFS layer that leaves with calls unknown gets the NFS server fenced at once', () => {
  afterEach(() => setSimulationMutants([]));

  it('fences when the layer leaves (no revoke, no fence point needed), and again after a failed run until one works', async () => {
    const t = follower({ fence: 'fails' });
    t.call.emit('close');
    await t.clock.tickAsync(10);
    await flush();
    assert.equal(t.fenceRuns.length, 1, 'a frozen or waited-out follower may never reach a revoke or fence point');
    assert.equal(t.f.hub.dirty, true);
    t.fenceOk = true;
    await t.clock.tickAsync(250);
    await flush();
    assert.equal(t.fenceRuns.length, 2, 'a failed run is tried again while the hub is dirty');
    assert.equal(t.f.hub.dirty, false);
    await t.clock.tickAsync(1000);
    assert.equal(t.fenceRuns.length, 2, 'none after one worked');
  });

  it('with mutant follower-lazy-fence-on-lost-layer on, nothing is fenced until a revoke (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-lazy-fence-on-lost-layer']);
    const t = follower({});
    t.call.emit('close');
    await t.clock.tickAsync(1000);
    await flush();
    assert.equal(t.fenceRuns.length, 0);
  });
});

describe('follower: an introduction says when an NFS layer left with calls unknown and nothing fenced since', () => {
  afterEach(() => setSimulationMutants([]));

  it('sets nfs_unaccounted while the hub is dirty without a fence, so a new leader\'s grace does not end on its word', async () => {
    const t = follower({ fence: 'none' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.call.emit('close');
    await flush();
    assert.equal(t.f.hub.dirty, true);
    assert.equal((await t.reintroduce()).unaccounted, true);
  });

  it('with mutant follower-intro-hides-unaccounted on, the introduction claims to be complete (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-intro-hides-unaccounted']);
    const t = follower({ fence: 'none' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    t.call.emit('close');
    await flush();
    assert.equal((await t.reintroduce()).unaccounted, false);
  });
});

describe('follower: a start fence that failed (simulation seed 352024172)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * A new follower whose predecessor and its gate died with calls in a hung
   * NFS server; its start fence fails. It takes over host:esx-9 from the
   * old session (same server), and the master then revokes it for a login
   * elsewhere: its own NFS layer drained, but nothing proves the dead
   * gate's calls stopped.
   */
  async function startFenceFailed() {
    const t = follower({ fence: 'fails' });
    await t.f.run();
    t.report({});
    await t.grant('s2', 5, []);
    t.f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 5, sequence: 1 });
    t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-9', epoch: 5, reason: 'login elsewhere', token: { epoch: 5, sequence: 1 } });
    await flush();
    if (t.toLayer.length) assert.equal(t.f.hub.ack(t.toLayer[0].revokeId), true);
    await t.clock.tickAsync(100);
    return t;
  }

  it('is unproven like a layer that left with calls unknown: introductions say so, a revoke is not acked while fences fail, and the fence is tried again until it works', async () => {
    const t = await startFenceFailed();
    assert.equal(t.f.hub.dirty, true);
    assert.equal(t.f.fencing().fencing, 'FENCING_FAILED', 'the master must hold what earlier sessions of this server held');
    assert.deepEqual(t.acks, [], 'acked though the dead gate\'s calls may still run');
    await t.clock.tickAsync(1000);
    assert.ok(t.fenceRuns.length >= 3, `tried again (${t.fenceRuns.length} runs)`);
    assert.equal((await t.reintroduce()).unaccounted, true);
    t.fenceOk = true;
    await t.clock.tickAsync(1000);
    await flush();
    assert.equal(t.f.hub.dirty, false);
    t.report({});
    assert.equal(t.f.fencing().fencing, 'FENCING_READY');
    assert.deepEqual(t.acks, ['r1'], 'acked once a fence worked');
    const runs = t.fenceRuns.length;
    await t.clock.tickAsync(5000);
    assert.equal(t.fenceRuns.length, runs, 'no more runs once one worked');
  });

  it('with mutant follower-start-fence-failure-forgotten on, the revoke is acked at once (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-start-fence-failure-forgotten']);
    const t = await startFenceFailed();
    assert.deepEqual(t.acks, ['r1']);
  });
});

describe('follower: the master says an earlier follower of this server left calls unproven (recipe follower-and-gate-die-no-fence)', () => {
  it('counts them unaccounted: a drained revoke is held, not acked, until an operator confirms a fence', async () => {
    const t = follower({ fence: 'none' });
    t.f.session.start();
    t.report({});
    t.f.session.emit('granted', { sessionId: 's1', epoch: 5, resumed: false, predecessorUnproven: true });
    assert.equal(t.f.hub.dirty, true);
    t.f.admissions.grant('10.0.0.9', 'host:esx-9', { epoch: 5, sequence: 1 });
    t.f.session.emit('revoke', { revokeId: 'r1', clientId: 'host:esx-9', epoch: 5, reason: 'login elsewhere', token: { epoch: 5, sequence: 1 } });
    await flush();
    if (t.toLayer.length) assert.equal(t.f.hub.ack(t.toLayer[0].revokeId), true);
    await t.clock.tickAsync(1000);
    assert.deepEqual(t.acks, [], 'acked though the predecessor\'s calls may still run');
    t.f.session.emit('fenceConfirmed', { operator: 'operator/alice', reason: 'checked' });
    await flush();
    assert.equal(t.f.hub.dirty, false);
    assert.deepEqual(t.acks, ['r1']);
  });
});

describe('follower: a lease a fence ended keeps its fence point when a new session renews the NFS layers', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * Simulation seed 86850814: scvm-3's follower was condemned while its
   * gate slept; the fence stopped the gate's calls at a hung NFS server, and
   * the new session's renewals moved the fence point away, while the master
   * waited out the old session's lease and then granted the client elsewhere.
   */
  async function condemnedWithCallsStopped(stoppedCallsInFlight: number) {
    const t = follower({ fence: 'ok' });
    t.f.session.start();
    await t.grant('s1', 5, []);
    const ended = t.f.lease.deadlineMs;
    await t.reintroduce(grpc.status.ABORTED);
    const seq = t.f.hub.currentFenceSeq;
    assert.ok(seq > 0, 'the condemned follower fenced its NFS layers');
    await t.grant('s2', 5, []);
    assert.ok(t.f.lease.deadlineMs > ended, 'the new session\'s lease');
    // The layer carried the fence out and serves again under the new lease.
    t.report({ fenceSeq: seq, serving: true, leaseDeadlineMonotonicMs: t.f.lease.deadlineMs, stoppedCallsInFlight, callsInFlight: stoppedCallsInFlight });
    const runs = t.fenceRuns.length;
    await t.clock.tickAsync(ended - DEFAULT_FOLLOWER_OPTIONS.fenceLeadMs - t.clock.now() + 5);
    await flush();
    return { t, runs };
  }

  it('fences at the ended lease\'s deadline − E while calls the fence stopped are still owed', async () => {
    const { t, runs } = await condemnedWithCallsStopped(2);
    assert.equal(t.fenceRuns.length, runs + 1, 'the master waits out the ended lease, not the new one: its fence point must stay');
  });

  it('does not fence there when every call the fence stopped drained (the new session\'s own calls are not the old lease\'s)', async () => {
    const { t, runs } = await condemnedWithCallsStopped(0);
    assert.equal(t.fenceRuns.length, runs);
  });

  it('with mutant follower-ended-lease-fence-point-dropped on, the new lease takes the fence point away (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-ended-lease-fence-point-dropped']);
    const { t, runs } = await condemnedWithCallsStopped(2);
    assert.equal(t.fenceRuns.length, runs);
  });
});
