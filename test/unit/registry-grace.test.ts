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
