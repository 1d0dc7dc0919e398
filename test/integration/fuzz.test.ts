import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { silentLogger } from '../../common/log';
import { nfshaGrpc, type GateClient, type SessionMasterClient } from '../../common/proto';
import { startMaster, type RunningMaster } from '../../master/master';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { freePort, waitFor } from '../support/cluster';

/** Random text: printable, unicode, empty, long, address-like. */
const text = fc.oneof(
  fc.string(), fc.string({ unit: 'grapheme', maxLength: 200 }), fc.constant(''), fc.ipV4(), fc.ipV6(),
  fc.constantFrom('192.168.33.1', '::ffff:10.0.0.1', '0.0.0.0', '255.255.255.255', '1.2.3.4.5', 'scvm-1', '../../etc/passwd'),
  fc.string({ minLength: 1000, maxLength: 5000 }),
);
const number = fc.oneof(fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(-1), fc.constant(0));

const followerMessage = fc.oneof(
  fc.record({ introduction: fc.record({ serverId: text, hostId: text, storageIp: text, mgmtIp: text, highestEpoch: fc.nat(), resumeSessionId: text, clients: fc.array(fc.record({ clientId: text, token: fc.record({ epoch: fc.nat(), sequence: fc.nat() }) }), { maxLength: 5 }) }, { requiredKeys: [] }) }),
  fc.record({ keepalive: fc.record({ seq: fc.nat() }) }),
  fc.record({ revokeAck: fc.record({ revokeId: text }) }),
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
    master = await startMaster({ listen: `127.0.0.1:${await freePort()}`, sessionTtlMs: 2000, keepaliveIntervalMs: 250, epoch: 5 }, silentLogger());
    follower = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-real', master: master.address, gateListen: `127.0.0.1:${await freePort()}` }, undefined, silentLogger());
    const gateAddress = await follower.start();
    client = new (nfshaGrpc().SessionMaster)(master.address, grpc.credentials.createInsecure()) as unknown as SessionMasterClient;
    gate = new (nfshaGrpc().Gate)(gateAddress, grpc.credentials.createInsecure()) as unknown as GateClient;
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
        for (const m of messages) stream.write(m);
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
    const r = await unary<{ clientId: string }>((cb) => gate.Admit({ clientAddress: '10.77.0.1' }, { deadline: new Date(Date.now() + 5000) }, cb));
    assert.equal((r as { clientId: string }).clientId, 'ip:10.77.0.1');
  });

  it('survives random gate API calls', async () => {
    await fc.assert(
      fc.asyncProperty(text, text, number, async (address, id, _n) => {
        await unary((cb) => gate.Admit({ clientAddress: address }, { deadline: new Date(Date.now() + 2000) }, cb));
        await unary((cb) => gate.AckRevoke({ revokeId: id }, { deadline: new Date(Date.now() + 2000) }, cb));
        await unary((cb) => gate.Release({ clientId: id }, { deadline: new Date(Date.now() + 2000) }, cb));
      }),
      { numRuns: 150, seed: 20261125 },
    );
    assert.equal(follower.lease.isLive(), true, 'the follower still holds its session');
  });
});
