import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { silentLogger } from '../../common/log';
import { nfshaGrpc, type GateClient, type SessionMasterClient } from '../../common/proto';
import { startMaster, type RunningMaster } from '../../master/master';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { freePort, waitFor } from '../support/cluster';
import { testClient, tlsOf } from '../support/pki';

/** The follower identity the fuzzing client holds a certificate for. */
const FUZZ_ID = 'scvm-fuzz';

/** Random text: printable, unicode, empty, long, address-like. */
const text = fc.oneof(
  fc.string(), fc.string({ unit: 'grapheme', maxLength: 200 }), fc.constant(''), fc.ipV4(), fc.ipV6(),
  fc.constantFrom('192.168.33.1', '::ffff:10.0.0.1', '0.0.0.0', '255.255.255.255', '1.2.3.4.5', 'scvm-1', '../../etc/passwd'),
  // The fuzzing client's own server id, so introductions also get past the identity check.
  fc.constant(FUZZ_ID), fc.constant(FUZZ_ID),
  fc.string({ minLength: 1000, maxLength: 5000 }),
);
const number = fc.oneof(fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(-1), fc.constant(0));

const followerMessage = fc.oneof(
  fc.record({ introduction: fc.record({ serverId: text, hostId: text, storageIp: text, mgmtIp: text, highestEpoch: fc.nat(), resumeSessionId: text, clients: fc.array(fc.record({ clientId: text, token: fc.record({ epoch: fc.nat(), sequence: fc.nat() }) }), { maxLength: 5 }), protocol: fc.nat(), nfs: fc.constantFrom('NFS_HEALTH_UNSPECIFIED', 'NFS_HEALTH_UP', 'NFS_HEALTH_DOWN', 7) }, { requiredKeys: [] }) }),
  fc.record({ keepalive: fc.record({ seq: fc.nat(), nfs: fc.constantFrom('NFS_HEALTH_UP', 'NFS_HEALTH_DOWN', 99) }, { requiredKeys: [] }) }),
  fc.record({ revokeAck: fc.record({ revokeId: text }) }),
  fc.record({ revokeProgress: fc.record({ revokeId: text, callsLeft: fc.nat() }, { requiredKeys: [] }) }),
  fc.constant({}),
);

function unary<Res>(call: (cb: (e: grpc.ServiceError | null, r?: Res) => void) => void): Promise<grpc.ServiceError | Res> {
  return new Promise((resolve) => call((e, r) => resolve(e ?? r!)));
}

describe('fuzz: random and hostile messages to the master and the gate API (fast-check, fixed budget)', function () {
  this.timeout(120_000);
  let master: RunningMaster;
  let follower: Follower;
  let client: SessionMasterClient;
  let gate: GateClient;

  before(async () => {
    master = await startMaster({ listen: `127.0.0.1:${await freePort()}`, sessionTtlMs: 2000, keepaliveIntervalMs: 250, epoch: 5, tls: tlsOf('master', 'fuzz'), hosts: [{ id: 'esx-77', storageIp: '10.77.0.1' }] }, silentLogger());
    follower = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-real', master: master.address, gateListen: `127.0.0.1:${await freePort()}`, tls: tlsOf('follower', 'scvm-real') }, undefined, silentLogger());
    const gateAddress = await follower.start();
    client = testClient(nfshaGrpc().SessionMaster, master.address, tlsOf('follower', FUZZ_ID));
    gate = testClient(nfshaGrpc().Gate, gateAddress, tlsOf('gate', 'scvm-real'));
    await waitFor('real follower in session', () => master.core()?.sessions.all().some((s) => s.serverId === 'scvm-real'));
  });

  after(async () => {
    client.close();
    gate.close();
    await follower.stop();
    await master.close();
  });

  it('survives random Session streams, logins and logouts with state intact, and still serves a real follower', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(followerMessage, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(text, text), { maxLength: 4 }), async (messages, calls) => {
        const stream = client.Session();
        stream.on('error', () => undefined);
        stream.on('data', () => undefined);
        for (const m of messages) stream.write(m as never);
        for (const [sessionId, address] of calls) {
          await unary((cb) => client.Login({ sessionId, clientAddress: address }, { deadline: new Date(Date.now() + 2000) }, cb));
          await unary((cb) => client.Logout({ sessionId, clientId: address }, { deadline: new Date(Date.now() + 2000) }, cb));
        }
        stream.cancel();
      }),
      { numRuns: 150, seed: 20261125 },
    );
    const core = master.core()!;
    // No corruption: every owner is a session the master knows, tokens are unique.
    const tokens = new Set<string>();
    for (const [, o] of core.logins.ownerships()) {
      assert.ok(core.sessions.get(o.sessionId), `owner ${o.sessionId} is a known session`);
      const t = `${o.token.epoch}.${o.token.sequence}`;
      assert.ok(!tokens.has(t), `token ${t} owned twice`);
      tokens.add(t);
    }
    // The real follower kept its session through all of it and still admits.
    await waitFor('grace over', () => core.readiness.isReady(), 10_000);
    // An NFS layer admits only while it watches the revoke stream.
    const watch = gate.WatchRevokes({ watcher: 'fuzz' });
    watch.on('error', () => undefined);
    await new Promise((resolve) => watch.once('data', resolve));
    const r = await unary<{ clientId: string }>((cb) => gate.Admit({ clientAddress: '10.77.0.1' }, { deadline: new Date(Date.now() + 5000) }, cb));
    watch.cancel();
    assert.equal((r as { clientId: string }).clientId, 'host:esx-77');
  });

  it('survives random gate API calls', async () => {
    await fc.assert(
      fc.asyncProperty(text, text, number, async (address, id, _n) => {
        await unary((cb) => gate.Admit({ clientAddress: address }, { deadline: new Date(Date.now() + 2000) }, cb));
        await unary((cb) => gate.AckRevoke({ revokeId: id }, { deadline: new Date(Date.now() + 2000) }, cb));
        await unary((cb) => gate.Release({ clientId: id }, { deadline: new Date(Date.now() + 2000) }, cb));
        await unary((cb) => gate.Report({ watcherId: _n, leaseDeadlineMonotonicMs: _n, serving: true, callsInFlight: 1, draining: [{ revokeId: id, clientId: address, callsLeft: 1 }] }, { deadline: new Date(Date.now() + 2000) }, cb));
      }),
      { numRuns: 150, seed: 20261125 },
    );
    assert.equal(follower.lease.isLive(), true, 'the follower still holds its session');
  });

  it('survives mutated encodings of valid messages (bit flips, truncation, junk) on every SessionMaster and Gate method', async () => {
    const sm = nfshaGrpc().SessionMaster.service;
    const gateService = nfshaGrpc().Gate.service;
    const valid: Array<[grpc.Client, string, Buffer]> = [
      [client as unknown as grpc.Client, sm.Login.path, sm.Login.requestSerialize({ sessionId: 'abcdef0123456789', clientAddress: '10.1.2.3' })],
      [client as unknown as grpc.Client, sm.Logout.path, sm.Logout.requestSerialize({ sessionId: 'abcdef0123456789', clientId: 'ip:10.1.2.3' })],
      [gate as unknown as grpc.Client, gateService.Admit.path, gateService.Admit.requestSerialize({ clientAddress: '10.1.2.3' })],
      [gate as unknown as grpc.Client, gateService.Release.path, gateService.Release.requestSerialize({ clientId: 'ip:10.1.2.3' })],
      [gate as unknown as grpc.Client, gateService.AckRevoke.path, gateService.AckRevoke.requestSerialize({ revokeId: 'r.1' })],
      [gate as unknown as grpc.Client, gateService.Report.path, gateService.Report.requestSerialize({ watcherId: 1, leaseDeadlineMonotonicMs: 12345.5, serving: true, callsInFlight: 3, quiesced: false, fenceSeq: 2, stoppedCallsInFlight: 1, draining: [{ revokeId: 'r.1', clientId: 'ip:10.1.2.3', callsLeft: 2 }] })],
    ];
    const mutation = fc.record({
      which: fc.nat({ max: valid.length - 1 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      junk: fc.uint8Array({ maxLength: 64 }),
    });
    const identity = (b: Buffer) => b;
    await fc.assert(
      fc.asyncProperty(mutation, async ({ which, flips, cut, junk }) => {
        const [c, path, bytes] = valid[which];
        const mutated = Buffer.concat([Buffer.from(bytes), Buffer.from(junk)]);
        for (const [at, x] of flips) if (mutated.length) mutated[at % mutated.length] ^= x;
        const body = cut === null ? mutated : mutated.subarray(0, cut % (mutated.length + 1));
        await new Promise<void>((resolve) => {
          c.makeUnaryRequest(path, identity, identity, body, { deadline: new Date(Date.now() + 2000) }, () => resolve());
        });
      }),
      { numRuns: 300, seed: 20261125 },
    );
    assert.equal(follower.lease.isLive(), true, 'the follower still holds its session');
    assert.ok(master.core(), 'the master still leads');
    assert.ok(master.core()!.sessions.all().some((s) => s.serverId === 'scvm-real'), 'the real session is still there');
  });
});
