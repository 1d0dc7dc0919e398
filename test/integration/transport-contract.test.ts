import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { nfshaGrpc, type GateClient, type SessionMasterClient } from '../../common/proto';
import { freePort } from '../support/cluster';
import { FaultProxy } from '../support/fault-proxy';
import { Kernel, Machine, SimProcess } from '../sim/kernel';
import { SimNetwork, type ServiceDefinition } from '../sim/transport';

/**
 * The simulation's transport must behave as grpc-js does where nfsha relies
 * on it: the same scenarios run against grpc-js on real loopback sockets and
 * against test/sim/transport.ts on virtual time.
 */

type Handlers = Record<string, (call: never, cb?: never) => void>;

interface Harness {
  serve(gate: Handlers, master: Handlers): Promise<void>;
  gate(): GateClient;
  master(): SessionMasterClient;
  /** Lets time pass (real or virtual) until `done` holds; false after `ms`. */
  until(done: () => boolean, ms: number): Promise<boolean>;
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

async function realHarness(): Promise<Harness> {
  // Clients reach the server through a TCP proxy, so "the server goes away"
  // can be what a dead process is to its peers: its connections reset.
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  let server: grpc.Server | undefined;
  let proxy: FaultProxy | undefined;
  const clients: grpc.Client[] = [];
  const client = <C>(Ctor: grpc.ServiceClientConstructor) => {
    const c = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 200 });
    clients.push(c);
    return c as unknown as C;
  };
  return {
    serve: async (gate, master) => {
      server = new grpc.Server();
      server.addService(nfshaGrpc().Gate.service, gate as grpc.UntypedServiceImplementation);
      server.addService(nfshaGrpc().SessionMaster.service, master as grpc.UntypedServiceImplementation);
      const backend = await new Promise<number>((resolve, reject) => server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      proxy = new FaultProxy('127.0.0.1', backend);
      await proxy.start(port);
    },
    gate: () => client<GateClient>(nfshaGrpc().Gate),
    master: () => client<SessionMasterClient>(nfshaGrpc().SessionMaster),
    until: async (done, ms) => {
      const end = Date.now() + ms;
      while (!done()) {
        if (Date.now() > end) return false;
        await new Promise((r) => setTimeout(r, 5));
      }
      return true;
    },
    stopServer: async () => { await proxy?.stop(); proxy = undefined; server?.forceShutdown(); server = undefined; },
    close: async () => { for (const c of clients) c.close(); await proxy?.stop(); server?.forceShutdown(); },
  };
}

async function simHarness(): Promise<Harness> {
  const kernel = new Kernel(7);
  const net = new SimNetwork(kernel, { latency: () => kernel.rng.between(0.1, 2) });
  const machine = new Machine('m', 0, 1);
  const serverProc = new SimProcess(kernel, 'server', machine);
  const clientProc = new SimProcess(kernel, 'client', new Machine('c', 0, 1));
  const address = 'server:1';
  const defs = {
    gate: nfshaGrpc().Gate.service as unknown as ServiceDefinition,
    master: nfshaGrpc().SessionMaster.service as unknown as ServiceDefinition,
  };
  return {
    serve: async (gate, master) => { net.listen(address, serverProc, [[defs.gate, gate], [defs.master, master]]); },
    gate: () => net.client<GateClient>(clientProc, address, defs.gate),
    master: () => net.client<SessionMasterClient>(clientProc, address, defs.master),
    until: async (done, ms) => {
      const end = kernel.now + ms;
      while (!done()) {
        if (kernel.now >= end) return false;
        await kernel.runUntil(Math.min(end, kernel.now + 5), () => undefined);
      }
      return true;
    },
    stopServer: async () => { kernel.kill(serverProc); net.breakAll(serverProc); net.unlisten(address); },
    close: async () => undefined,
  };
}

const noop = () => undefined;
const statusOf = (e: unknown) => (e as grpc.ServiceError).code;

for (const [name, make] of [['grpc-js on loopback', realHarness], ['the simulation', simHarness]] as const) {
  describe(`transport contract: ${name}`, function () {
    this.timeout(20_000);
    let h: Harness;
    beforeEach(async () => { h = await make(); });
    afterEach(async () => { await h.close(); });

    it('an error a server emits on a stream reaches the client with its code and details, before any end', async () => {
      await h.serve({}, {
        Session: ((call: grpc.ServerDuplexStream<unknown, unknown>) => {
          call.on('data', () => call.emit('error', { code: grpc.status.ABORTED, details: 'session condemned' }));
        }) as never,
      });
      const s = h.master().Session();
      let err: grpc.ServiceError | undefined;
      const order: string[] = [];
      s.on('error', (e: grpc.ServiceError) => { err = e; order.push('error'); });
      s.on('end', () => order.push('end'));
      s.on('data', noop);
      s.write({ introduction: { serverId: 'scvm-1' } });
      assert.ok(await h.until(() => err !== undefined, 5000));
      assert.equal(err!.code, grpc.status.ABORTED);
      assert.equal(err!.details, 'session condemned');
      // Whoever listens to both (StreamLoop) sees the error first: ABORTED is what ends a session.
      assert.equal(order[0], 'error');
    });

    it('messages a server writes before ending arrive in order, then the stream ends without error', async () => {
      await h.serve({
        WatchRevokes: ((call: grpc.ServerWritableStream<unknown, unknown>) => {
          for (let i = 1; i <= 5; i++) call.write({ lease: { remainingMs: i } });
          call.end();
        }) as never,
      }, {});
      const s = h.gate().WatchRevokes({ watcher: 'w' });
      const got: number[] = [];
      let ended = false;
      let err: unknown;
      s.on('data', (m: { lease: { remainingMs: number }; kind: string }) => got.push(m.lease.remainingMs));
      s.on('end', () => { ended = true; });
      s.on('error', (e) => { err = e; });
      assert.ok(await h.until(() => ended, 5000));
      assert.deepEqual(got, [1, 2, 3, 4, 5]);
      assert.equal(err, undefined);
    });

    it('a client cancel errors the client with CANCELLED and tells the server its call was cancelled', async () => {
      let serverCancelled = false;
      await h.serve({
        WatchRevokes: ((call: grpc.ServerWritableStream<unknown, unknown>) => {
          call.on('cancelled', () => { serverCancelled = true; });
          call.write({ welcome: { watcherId: 1 } });
        }) as never,
      }, {});
      const s = h.gate().WatchRevokes({ watcher: 'w' });
      let first = false;
      let err: grpc.ServiceError | undefined;
      s.on('data', () => { first = true; });
      s.on('error', (e: grpc.ServiceError) => { err = e; });
      assert.ok(await h.until(() => first, 5000));
      s.cancel();
      assert.ok(await h.until(() => serverCancelled && err !== undefined, 5000));
      assert.equal(err!.code, grpc.status.CANCELLED);
    });

    it('a unary error keeps its code and trailing metadata (the "not leader" redirect)', async () => {
      await h.serve({}, {
        Login: ((_call: unknown, cb: (e: Partial<grpc.ServiceError>) => void) => {
          const metadata = new grpc.Metadata();
          metadata.set('nfsha-leader', '10.0.0.2:7410');
          cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not leader', metadata });
        }) as never,
      });
      let err: grpc.ServiceError | undefined;
      h.master().Login({ sessionId: 's', clientAddress: '10.0.0.9' }, { deadline: new Date(Date.now() + 5000) }, (e) => { err = e ?? undefined; });
      assert.ok(await h.until(() => err !== undefined, 5000));
      assert.equal(err!.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(err!.metadata.get('nfsha-leader')[0], '10.0.0.2:7410');
    });

    it('a unary call past its deadline fails DEADLINE_EXCEEDED and the server call is cancelled', async () => {
      let serverCancelled = false;
      await h.serve({}, {
        Login: ((call: grpc.ServerUnaryCall<unknown, unknown>) => { call.on('cancelled', () => { serverCancelled = true; }); }) as never,
      });
      let err: grpc.ServiceError | undefined;
      h.master().Login({ sessionId: 's', clientAddress: '10.0.0.9' }, { deadline: new Date(Date.now() + 200) }, (e) => { err = e ?? undefined; });
      assert.ok(await h.until(() => err !== undefined && serverCancelled, 5000));
      assert.equal(err!.code, grpc.status.DEADLINE_EXCEEDED);
    });

    it('with waitForReady a call made before the server listens succeeds once it does; without, it fails UNAVAILABLE', async () => {
      let plain: grpc.ServiceError | undefined;
      let ready: { clientId: string } | undefined;
      const g = h.gate();
      g.Admit({ clientAddress: '10.0.0.9' }, { deadline: new Date(Date.now() + 5000) }, (e) => { plain = e ?? undefined; });
      g.Admit({ clientAddress: '10.0.0.9' }, new grpc.Metadata({ waitForReady: true }), { deadline: new Date(Date.now() + 10_000) }, (e, r) => { if (!e) ready = r as { clientId: string }; });
      assert.ok(await h.until(() => plain !== undefined, 5000));
      assert.equal(plain!.code, grpc.status.UNAVAILABLE);
      await h.serve({ Admit: ((_c: unknown, cb: (e: null, r: unknown) => void) => cb(null, { clientId: 'host:esx-9' })) as never }, {});
      assert.ok(await h.until(() => ready !== undefined, 8000), 'the waiting call went through once the server listened');
      assert.equal(ready!.clientId, 'host:esx-9');
    });

    it('when the server goes away an open stream fails UNAVAILABLE', async () => {
      await h.serve({}, {
        Session: ((call: grpc.ServerDuplexStream<unknown, unknown>) => { call.on('data', () => call.write({ keepaliveAck: { seq: 1 } })); }) as never,
      });
      const s = h.master().Session();
      let acked = false;
      let err: grpc.ServiceError | undefined;
      s.on('data', () => { acked = true; });
      s.on('error', (e: grpc.ServiceError) => { err = e; });
      s.write({ introduction: { serverId: 'scvm-1' } });
      assert.ok(await h.until(() => acked, 5000));
      await h.stopServer();
      assert.ok(await h.until(() => err !== undefined, 5000));
      assert.equal(statusOf(err), grpc.status.UNAVAILABLE);
    });

    it('messages decode as the handlers expect: defaults filled, oneof named, enums as strings', async () => {
      let seen: Record<string, unknown> | undefined;
      await h.serve({}, {
        Session: ((call: grpc.ServerDuplexStream<unknown, unknown>) => { call.on('data', (m: Record<string, unknown>) => { seen = m; }); }) as never,
      });
      const s = h.master().Session();
      s.on('error', noop);
      s.write({ keepalive: { seq: 3 } });
      assert.ok(await h.until(() => seen !== undefined, 5000));
      assert.equal(seen!.kind, 'keepalive');
      assert.deepEqual(seen!.keepalive, { seq: 3, nfs: 'NFS_HEALTH_UNSPECIFIED', fencing: 'FENCING_UNSPECIFIED', fencingDetail: '', leaving: false, nfsUnaccounted: false });
      s.cancel();
    });
  });
}
