import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { silentLogger } from '../../common/log';
import { setSimulationMutants } from '../../common/mutants';
import { createMasterCore } from '../../master/core';
import type { RegistryStore, ServerRecord } from '../../master/leadership';
import { DEFAULT_MASTER_OPTIONS } from '../../master/options';
import { sessionMasterHandlers } from '../../master/service';
import { fakeClock, flush } from '../support/fake-clock';

/** A Session stream as the handler sees it: what it writes, and the status it ends with. */
function sessionCall() {
  const call = Object.assign(new EventEmitter(), {
    written: [] as Array<Record<string, unknown>>,
    status: undefined as { code: number; details: string } | undefined,
    write(m: Record<string, unknown>) { this.written.push(m); return true; },
    end() { /* the follower's half */ },
  });
  call.on('error', (e: { code: number; details: string }) => { call.status = e; });
  return call;
}

function core(store: RegistryStore) {
  const clock = fakeClock();
  return createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, clock, silentLogger(), {
    epoch: 4, mayAct: () => true, expectedServers: [], graceMs: 0, store, leader: () => undefined,
  });
}

const intro = { introduction: { serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 1, nfs: 'NFS_HEALTH_UNSPECIFIED' }, kind: 'introduction' };

describe('a new leader\'s grace waits for every server that could hold clients (race 5)', () => {
  it('grants a session only once the server is durably in the registry', async () => {
    let save!: () => void;
    const saved: ServerRecord[] = [];
    const c = core({
      load: async () => ({ servers: [], hosts: [] }),
      saveServer: (s) => new Promise<void>((resolve) => { saved.push(s); save = resolve; }),
      saveHost: () => undefined,
    });
    const call = sessionCall();
    sessionMasterHandlers(c).Session(call as never);
    call.emit('data', intro);
    await flush();
    assert.deepEqual(saved.map((s) => s.serverId), ['scvm-1']);
    assert.equal(call.written.length, 0, 'granted before the registry had the server');
    assert.equal(c.sessions.all().length, 0);
    save();
    await flush();
    assert.equal(call.written.length, 1);
    assert.ok(call.written[0].granted);
  });

  it('with mutant master-registers-after-grant on, grants the session before the registry has the server (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-registers-after-grant']);
    try {
      const c = core({
        load: async () => ({ servers: [], hosts: [] }),
        saveServer: () => new Promise<void>(() => undefined),
        saveHost: () => undefined,
      });
      const call = sessionCall();
      sessionMasterHandlers(c).Session(call as never);
      call.emit('data', intro);
      await flush();
      assert.ok(call.written[0]?.granted, 'granted with the registry write still out');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('refuses the introduction, creating no session, when the registry cannot be written', async () => {
    const c = core({
      load: async () => ({ servers: [], hosts: [] }),
      saveServer: async () => { throw new Error('etcdserver: request timed out'); },
      saveHost: () => undefined,
    });
    const call = sessionCall();
    sessionMasterHandlers(c).Session(call as never);
    call.emit('data', intro);
    await flush();
    assert.equal(call.status?.code, 14, 'UNAVAILABLE: the follower retries');
    assert.match(call.status!.details, /could not record server scvm-1/);
    assert.equal(c.sessions.all().length, 0);
  });
});

describe('a new leader\'s grace over a server that came back with calls unknown (Introduction.nfs_unaccounted)', () => {
  it('fences that server with the fence agent, though the registry this term loaded did not list it, then grants', async () => {
    const clock = fakeClock();
    const fenced: string[] = [];
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, clock, silentLogger(), {
      epoch: 4, mayAct: () => true, expectedServers: [], graceMs: 1000, leader: () => undefined,
      fenceRun: async (s, why) => { fenced.push(`${s.serverId}: ${why}`); return { ok: true, startedAt: clock.now(), ms: 1, detail: 'ok' }; },
    });
    const call = sessionCall();
    sessionMasterHandlers(c).Session(call as never);
    call.emit('data', { ...intro, introduction: { ...intro.introduction, protocol: 2, fencing: 'FENCING_NONE', nfsUnaccounted: true } });
    await flush();
    assert.ok(call.written[0]?.granted, 'the session is granted');
    assert.equal(c.readiness.isReady(), false);
    await clock.tickAsync(1000);
    await flush();
    assert.equal(fenced.length, 1, 'a server missing from the loaded registry was never fenced, so the grace never ended');
    assert.match(fenced[0], /^scvm-1: /);
    await flush();
    assert.equal(c.readiness.isReady(), true);
  });
});

describe('a new leader\'s grace over a server its fence agent already killed this term', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * scvm-1 introduces itself unaccounted, falls silent, and a login leaving
   * it runs the fence agent (which kills the whole SCVM); the grace (5 s)
   * then ends by time with scvm-1 still awaited. `reintroduceAfterRun`: a
   * new follower of it opens a session after that run, then falls silent
   * too. Simulation seeds 398880001, 398903709 and 398911437: the grace
   * killed the SCVM a second time as it came back up healthy.
   */
  async function killedThenGraceEnds(reintroduceAfterRun = false) {
    const clock = fakeClock();
    const fenced: string[] = [];
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, clock, silentLogger(), {
      epoch: 4, mayAct: () => true, expectedServers: [], graceMs: 5000, leader: () => undefined,
      fenceRun: async (s, why) => { fenced.push(`${s.serverId}: ${why}`); return { ok: true, startedAt: clock.now(), ms: 1, detail: 'ok' }; },
    });
    const call = sessionCall();
    sessionMasterHandlers(c).Session(call as never);
    call.emit('data', { ...intro, introduction: { ...intro.introduction, protocol: 2, fencing: 'FENCING_NONE', nfsUnaccounted: true } });
    await flush();
    await clock.tickAsync(3100);
    assert.equal(await c.fenceAgent.fence(c.sessions.all()[0], 'host:esx-9 moves away from silent holder scvm-1'), true);
    if (reintroduceAfterRun) {
      await clock.tickAsync(50);
      c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', resumeSessionId: '' });
    }
    assert.equal(c.readiness.isReady(), false, 'scvm-1 is still awaited');
    await clock.tickAsync(2000);
    await flush();
    return { c, fenced };
  }

  it('does not fence it again at the grace\'s end, and grants', async () => {
    const { c, fenced } = await killedThenGraceEnds();
    assert.equal(fenced.length, 1, 'the grace killed the SCVM a second time');
    assert.equal(c.readiness.isReady(), true);
  });

  it('still fences it when a session of it opened after that run', async () => {
    const { c, fenced } = await killedThenGraceEnds(true);
    assert.equal(fenced.length, 2);
    assert.match(fenced[1], /^scvm-1: did not re-introduce itself/);
    assert.equal(c.readiness.isReady(), true);
  });

  it('with mutant master-grace-refences-agent-fenced-server on, fences it again (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-grace-refences-agent-fenced-server']);
    const { fenced } = await killedThenGraceEnds();
    assert.equal(fenced.length, 2);
  });
});

describe('a server that introduced itself unaccounted, then fenced (Keepalive.nfs_unaccounted, protocol 3)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A fresh master (nothing registered), grace 1 s: scvm-1 introduces itself unaccounted (its start fence timed out), scvm-2 clean. */
  async function unaccountedThenFenced() {
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, fakeClock(), silentLogger(), {
      epoch: 4, mayAct: () => true, expectedServers: [], graceMs: 1000, leader: () => undefined,
    });
    const one = sessionCall();
    sessionMasterHandlers(c).Session(one as never);
    one.emit('data', { ...intro, introduction: { ...intro.introduction, protocol: 3, fencing: 'FENCING_FAILED', fencingDetail: 'timed out after 1000 ms', nfsUnaccounted: true } });
    const two = sessionCall();
    sessionMasterHandlers(c).Session(two as never);
    two.emit('data', { ...intro, introduction: { ...intro.introduction, serverId: 'scvm-2', hostId: 'esx-2', storageIp: '10.0.0.22', protocol: 3, fencing: 'FENCING_READY' } });
    await flush();
    await (c.clock as ReturnType<typeof fakeClock>).tickAsync(1000);
    assert.deepEqual(c.readiness.heldBy('scvm-2'), ['scvm-1'], 'held while scvm-1 is unaccounted with no working fence');
    // Its fence retry works: the next keepalive says so.
    one.emit('data', { kind: 'keepalive', keepalive: { seq: 1, nfs: 'NFS_HEALTH_UNSPECIFIED', fencing: 'FENCING_READY', fencingDetail: '', nfsUnaccounted: false } });
    await flush();
    return c;
  }

  it('stops holding other servers\' logins once its keepalive says a fence made it whole', async () => {
    const c = await unaccountedThenFenced();
    assert.deepEqual(c.readiness.heldBy('scvm-2'), []);
    await c.readiness.ready('scvm-2');
    assert.equal(c.readiness.isReady(), true);
  });

  it('with mutant master-unaccounted-never-cleared on, the hold lasts until an operator confirms a fence (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-unaccounted-never-cleared']);
    const c = await unaccountedThenFenced();
    await assert.rejects(c.readiness.ready('scvm-2'), /scvm-1 could not fence/);
  });
});

describe('a registered server that could not fence when last heard of, back as a new follower process that fenced at start', () => {
  afterEach(() => setSimulationMutants([]));

  async function restartedFenced() {
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, fakeClock(), silentLogger(), {
      epoch: 4, mayAct: () => true, graceMs: 1000, leader: () => undefined,
      expectedServers: [
        { serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', fencing: 'FENCING_FAILED' },
        { serverId: 'scvm-2', hostId: 'esx-2', storageIp: '10.0.0.22', mgmtIp: '', fencing: 'FENCING_READY' },
      ],
    });
    const one = sessionCall();
    sessionMasterHandlers(c).Session(one as never);
    one.emit('data', { ...intro, introduction: { ...intro.introduction, protocol: 3, fencing: 'FENCING_READY', nfsFencedAtStart: true } });
    const two = sessionCall();
    sessionMasterHandlers(c).Session(two as never);
    two.emit('data', { ...intro, introduction: { ...intro.introduction, serverId: 'scvm-2', hostId: 'esx-2', storageIp: '10.0.0.22', protocol: 3, fencing: 'FENCING_READY', resumeSessionId: 'earlier' } });
    await flush();
    assert.equal(c.readiness.isReady(), false, 'a new follower process ended the grace early');
    await (c.clock as ReturnType<typeof fakeClock>).tickAsync(1000);
    await flush();
    return c;
  }

  it('no longer holds other servers\' logins once the grace has run its time', async () => {
    const c = await restartedFenced();
    await c.readiness.ready('scvm-2');
    assert.equal(c.readiness.isReady(), true);
  });

  it('with mutant master-fenced-restart-still-unfenced on, holds them until an operator confirms a fence (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-fenced-restart-still-unfenced']);
    const c = await restartedFenced();
    await assert.rejects(c.readiness.ready('scvm-2'), /scvm-1 could not fence/);
  });
});
