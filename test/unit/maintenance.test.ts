import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../common/log';
import { createMasterCore } from '../../master/core';
import { FileRegistry } from '../../master/file-registry';
import type { RegistryStore } from '../../master/leadership';
import type { MaintenanceRecord } from '../../master/maintenance';
import { DEFAULT_MASTER_OPTIONS } from '../../master/options';
import { clusterStatus, sessionMasterHandlers } from '../../master/service';
import type { SetMaintenanceReply } from '../../gen/nfsha/v1/SetMaintenanceReply';
import { fakeClock } from '../support/fake-clock';
import { scratchDir } from '../support/scratch';

function core(store: RegistryStore | undefined, maintenance: MaintenanceRecord[] = []) {
  return createMasterCore({ ...DEFAULT_MASTER_OPTIONS, tls: { insecure: true } }, fakeClock(), silentLogger(), {
    epoch: 4, mayAct: () => true, graceMs: 0, store, leader: () => undefined, maintenance,
    expectedServers: [{ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', fencing: 'FENCING_READY' }],
  });
}

function memoryStore(saved: MaintenanceRecord[], fail = false): RegistryStore {
  return {
    load: async () => ({ servers: [], hosts: [], maintenance: saved }),
    saveServer: async () => undefined,
    saveHost: () => undefined,
    saveMaintenance: async (r) => {
      if (fail) throw new Error('etcdserver: request timed out');
      saved.push(r);
    },
  };
}

/** Calls SetMaintenance as an operator on plain-text loopback would. */
function setMaintenance(c: ReturnType<typeof core>, serverId: string, enter: boolean, reason = 'upgrade', force = false): Promise<SetMaintenanceReply> {
  return new Promise((resolve, reject) => {
    const call = { request: { serverId, enter, reason, force }, getAuthContext: () => ({}) };
    sessionMasterHandlers(c).SetMaintenance(call as never, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

/** A second live server with working NFS, so that scvm-1 is not the last one. */
function introduceOther(c: ReturnType<typeof core>): void {
  c.sessions.introduce({ serverId: 'scvm-2', hostId: 'esx-2', storageIp: '10.0.0.22', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2 } as never);
}

describe('maintenance mode on the master (SetMaintenance)', () => {
  it('two enters at once cannot both pass the last-healthy check: the second waits for the first and is refused', async () => {
    const saved: MaintenanceRecord[] = [];
    const store = memoryStore(saved);
    const slowSave = store.saveMaintenance!;
    store.saveMaintenance = async (r) => { await new Promise((x) => setImmediate(x)); await slowSave(r); };
    const c = core(store);
    c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2 } as never);
    introduceOther(c);
    const [one, two] = await Promise.allSettled([setMaintenance(c, 'scvm-1', true), setMaintenance(c, 'scvm-2', true)]);
    assert.equal(one.status, 'fulfilled');
    assert.ok(two.status === 'rejected' && (two.reason as grpc.ServiceError).code === grpc.status.FAILED_PRECONDITION, 'the second enter was not refused');
    assert.deepEqual(saved.map((r) => r.serverId), ['scvm-1']);
  });

  it('a server that is itself not healthy (NFS down) enters without --force even when no other server is healthy', async () => {
    const c = core(memoryStore([]));
    c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2, nfs: 'NFS_HEALTH_DOWN' } as never);
    const r = await setMaintenance(c, 'scvm-1', true);
    assert.deepEqual([r.changed, r.inMaintenance, r.unservedClients], [true, true, []]);
  });

  it('refuses the last live server with working NFS (FAILED_PRECONDITION, nothing recorded) unless forced', async () => {
    const saved: MaintenanceRecord[] = [];
    const c = core(memoryStore(saved));
    c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2 } as never);
    const down = c.sessions.introduce({ serverId: 'scvm-2', hostId: 'esx-2', storageIp: '10.0.0.22', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2, nfs: 'NFS_HEALTH_DOWN' } as never);
    assert.ok(down, 'scvm-2 introduced');
    await assert.rejects(setMaintenance(c, 'scvm-1', true), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION
      && /scvm-1 is the last live Access Server with working NFS out of maintenance: entering would leave every host that fails over later with no server; nothing changed/.test(e.details));
    assert.deepEqual([saved.length, c.maintenance.has('scvm-1')], [0, false]);
    // Forced: it enters; it serves no client here, so none is named (the integration test names one).
    const forced = await setMaintenance(c, 'scvm-1', true, 'upgrade', true);
    assert.deepEqual([forced.changed, forced.inMaintenance, forced.unservedClients], [true, true, []]);
    // Entering again changes nothing and needs no force; leaving needs none either.
    assert.equal((await setMaintenance(c, 'scvm-1', true)).changed, false);
    assert.equal((await setMaintenance(c, 'scvm-1', false)).changed, true);
  });

  it('marks the server leaving in the membership, records it before saying so, and entering twice changes nothing', async () => {
    const saved: MaintenanceRecord[] = [];
    const c = core(memoryStore(saved));
    c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2 } as never);
    introduceOther(c);
    assert.equal(c.membership.members().find((m) => m.serverId === 'scvm-1')?.leaving, false);
    const first = await setMaintenance(c, 'scvm-1', true);
    assert.deepEqual({ changed: first.changed, inMaintenance: first.inMaintenance }, { changed: true, inMaintenance: true });
    assert.equal(c.membership.members().find((m) => m.serverId === 'scvm-1')?.leaving, true);
    assert.deepEqual(saved.map((r) => [r.serverId, r.on, r.operator, r.reason]), [['scvm-1', true, 'insecure (plain-text loopback)', 'upgrade']]);
    const second = await setMaintenance(c, 'scvm-1', true);
    assert.equal(second.changed, false);
    assert.equal(saved.length, 1, 'a second enter wrote again');
    assert.deepEqual(clusterStatus(c).maintenance?.map((m) => m.serverId), ['scvm-1']);
    const exit = await setMaintenance(c, 'scvm-1', false);
    assert.equal(exit.changed, true);
    assert.equal(c.membership.members().find((m) => m.serverId === 'scvm-1')?.leaving, false);
    assert.deepEqual(clusterStatus(c).maintenance, []);
  });

  it('a new leader keeps what the registry recorded: the server is still listed leaving after a failover', () => {
    const c = core(memoryStore([]), [{ serverId: 'scvm-1', on: true, operator: 'operator/alice', reason: 'upgrade', sinceWallMs: Date.now() - 60_000 }]);
    c.sessions.introduce({ serverId: 'scvm-1', hostId: 'esx-1', storageIp: '10.0.0.21', mgmtIp: '', clients: [], highestEpoch: 0, resumeSessionId: '', protocol: 2 } as never);
    assert.equal(c.membership.members()[0].leaving, true);
    const m = clusterStatus(c).maintenance![0];
    assert.equal(m.operator, 'operator/alice');
    assert.ok(Number(m.sinceMs) >= 60_000);
  });

  it('changes nothing when the registry write fails (UNAVAILABLE), and refuses a server it does not know (NOT_FOUND)', async () => {
    const c = core(memoryStore([], true));
    introduceOther(c);
    await assert.rejects(setMaintenance(c, 'scvm-1', true), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE && /nothing changed/.test(e.details));
    assert.equal(c.maintenance.has('scvm-1'), false);
    await assert.rejects(setMaintenance(c, 'scvm-7', true), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /scvm-7/.test(e.details));
    await assert.rejects(setMaintenance(c, '', true), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  });

  it('the embedded master\'s registry file keeps maintenance across a restart', async () => {
    const file = path.join(scratchDir('nfsha-maint-'), 'registry.json');
    try {
      await new FileRegistry(file).saveMaintenance({ serverId: 'scvm-2', on: true, operator: 'operator/bob', reason: 'patching', sinceWallMs: 1 });
      const loaded = await new FileRegistry(file).load();
      assert.deepEqual(loaded.maintenance.map((r) => [r.serverId, r.on]), [['scvm-2', true]]);
      await new FileRegistry(file).saveMaintenance({ serverId: 'scvm-2', on: false, operator: 'operator/bob', reason: 'done', sinceWallMs: 2 });
      assert.deepEqual((await new FileRegistry(file).load()).maintenance.map((r) => [r.serverId, r.on]), [['scvm-2', false]]);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });
});
