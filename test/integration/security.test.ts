import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fetchStatus } from '../../common/status-client';
import * as grpc from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS } from '../../common/grpc-client';
import pino from 'pino';
import { silentLogger } from '../../common/log';
import { nfshaGrpc } from '../../common/proto';
import { Follower } from '../../follower/follower';
import { DEFAULT_FOLLOWER_OPTIONS } from '../../follower/options';
import { startMaster } from '../../master/master';
import { CLI, Cluster, freePort, waitFor } from '../support/cluster';
import { foreignTlsDir, testClient, tlsDir, tlsOf, TEST_PKI_DIR } from '../support/pki';
import { sample, scrape } from '../support/scrape';
import { EtcdCluster, etcdClientOptions } from '../support/etcd';
import { etcdConnection } from '../../master/etcd-client';
import { Etcd3, type IOptions } from 'etcd3';
import { noop } from 'cockatiel';
import type { Role } from '../../common/pki';
import { scratchDir } from '../support/scratch';

const run = promisify(execFile);

type Caller = { name: string; credentials: () => grpc.ChannelCredentials };

const pem = (dir: string, f: string) => fs.readFileSync(path.join(dir, f));
const anyServer = { checkServerIdentity: () => undefined };

/** Callers the servers must refuse before any handler runs. */
const strangers: Caller[] = [
  { name: 'plain text (no TLS)', credentials: () => grpc.credentials.createInsecure() },
  { name: 'TLS without a client certificate', credentials: () => grpc.credentials.createSsl(pem(path.join(TEST_PKI_DIR, 'ca'), 'ca.pem'), null, null, anyServer) },
  {
    // It trusts our CA (so the refusal is the server's), but its own certificate comes from another CA.
    name: 'a certificate from another CA',
    credentials: () => {
      const foreign = foreignTlsDir('operator', 'intruder');
      return grpc.credentials.createSsl(pem(path.join(TEST_PKI_DIR, 'ca'), 'ca.pem'), pem(foreign, 'key.pem'), pem(foreign, 'cert.pem'), anyServer);
    },
  },
];

const as = (role: Role, id: string): Caller => ({
  name: `${role}/${id}`,
  credentials: () => grpc.credentials.createSsl(pem(tlsDir(role, id), 'ca.pem'), pem(tlsDir(role, id), 'key.pem'), pem(tlsDir(role, id), 'cert.pem'), anyServer),
});

type Kind = 'unary' | 'server' | 'bidi';

/** Calls any method with one request; resolves with the status code of the first answer (OK on a first message). */
function call(address: string, caller: Caller, def: grpc.MethodDefinition<object, object>, kind: Kind, request: object): Promise<{ code: grpc.status; details: string }> {
  const client = new grpc.Client(address, caller.credentials(), { ...CLIENT_CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': 'nfsha' });
  const done = (code: grpc.status, details = '') => { client.close(); return { code, details }; };
  const opts = { deadline: new Date(Date.now() + 5000) };
  return new Promise((resolve) => {
    if (kind === 'unary') {
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, opts, (err) => resolve(done(err?.code ?? grpc.status.OK, err?.details)));
      return;
    }
    const stream = kind === 'server'
      ? client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, request, opts)
      : client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, opts);
    stream.on('data', () => { stream.cancel(); resolve(done(grpc.status.OK)); });
    stream.on('error', (err: grpc.ServiceError) => resolve(done(err.code, err.details)));
    stream.on('end', () => resolve(done(grpc.status.OK)));
    if (kind === 'bidi') (stream as grpc.ClientDuplexStream<object, object>).write(request);
  });
}

interface Method {
  name: string;
  server: 'master' | 'gate';
  kind: Kind;
  request: () => object;
  /** Authenticated callers that hold the wrong role, or act for someone else. */
  wrong: Caller[];
}

describe('security: mTLS identities on every service (real processes)', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let sessionOf1 = '';

  const M = () => nfshaGrpc().SessionMaster.service;
  const B = () => nfshaGrpc().Membership.service;
  const D = () => nfshaGrpc().Deployer.service;
  const G = () => nfshaGrpc().Gate.service;
  const methods: Array<Method & { def: () => grpc.MethodDefinition<object, object> }> = [
    { name: 'SessionMaster/Session', server: 'master', kind: 'bidi', def: () => M().Session, request: () => ({ introduction: { serverId: 'scvm-1', hostId: 'esx-1' } }), wrong: [as('agent', 'esx-1'), as('operator', 'test'), as('follower', 'scvm-2')] },
    { name: 'SessionMaster/Login', server: 'master', kind: 'unary', def: () => M().Login, request: () => ({ sessionId: sessionOf1, clientAddress: '127.0.9.1' }), wrong: [as('gate', 'scvm-1'), as('operator', 'test'), as('follower', 'scvm-2')] },
    { name: 'SessionMaster/Logout', server: 'master', kind: 'unary', def: () => M().Logout, request: () => ({ sessionId: sessionOf1, clientId: 'host:esx-9' }), wrong: [as('agent', 'esx-1'), as('follower', 'scvm-2')] },
    { name: 'SessionMaster/ClusterStatus', server: 'master', kind: 'unary', def: () => M().ClusterStatus, request: () => ({}), wrong: [as('follower', 'scvm-1'), as('agent', 'esx-1'), as('gate', 'scvm-1')] },
    { name: 'SessionMaster/ConfirmFence', server: 'master', kind: 'unary', def: () => M().ConfirmFence, request: () => ({ serverId: 'scvm-9', reason: 'intruder' }), wrong: [as('follower', 'scvm-1'), as('agent', 'esx-1'), as('gate', 'scvm-1'), as('master', 'm1')] },
    { name: 'SessionMaster/SetMaintenance', server: 'master', kind: 'unary', def: () => M().SetMaintenance, request: () => ({ serverId: 'scvm-1', enter: true, reason: 'intruder' }), wrong: [as('follower', 'scvm-1'), as('agent', 'esx-1'), as('gate', 'scvm-1'), as('master', 'm1')] },
    { name: 'Membership/WatchMembers', server: 'master', kind: 'server', def: () => B().WatchMembers, request: () => ({ hostId: 'esx-1', storageIp: '127.0.1.1' }), wrong: [as('follower', 'scvm-1'), as('operator', 'test'), as('agent', 'esx-2')] },
    { name: 'Membership/ListMembers', server: 'master', kind: 'unary', def: () => B().ListMembers, request: () => ({}), wrong: [as('follower', 'scvm-1'), as('gate', 'scvm-1')] },
    { name: 'Membership/ReportRoute', server: 'master', kind: 'unary', def: () => B().ReportRoute, request: () => ({ hostId: 'esx-1', route: 'remote', gateway: '127.0.2.2' }), wrong: [as('operator', 'test'), as('agent', 'esx-2')] },
    { name: 'Deployer/Deploy', server: 'master', kind: 'server', def: () => D().Deploy, request: () => ({ inventoryJson: '{}', bundleDir: '/nonexistent' }), wrong: [as('follower', 'scvm-1'), as('agent', 'esx-1'), as('master', 'm9')] },
    { name: 'Gate/Admit', server: 'gate', kind: 'unary', def: () => G().Admit, request: () => ({ clientAddress: '127.0.9.1' }), wrong: [as('follower', 'scvm-1'), as('gate', 'scvm-2'), as('operator', 'test')] },
    { name: 'Gate/WatchRevokes', server: 'gate', kind: 'server', def: () => G().WatchRevokes, request: () => ({ watcher: 'intruder' }), wrong: [as('master', 'm1'), as('gate', 'scvm-2')] },
    { name: 'Gate/AckRevoke', server: 'gate', kind: 'unary', def: () => G().AckRevoke, request: () => ({ revokeId: 'r.1' }), wrong: [as('agent', 'esx-1'), as('gate', 'scvm-2')] },
    { name: 'Gate/Status', server: 'gate', kind: 'unary', def: () => G().Status, request: () => ({}), wrong: [as('agent', 'esx-1'), as('follower', 'scvm-1'), as('gate', 'scvm-2')] },
    { name: 'Gate/Release', server: 'gate', kind: 'unary', def: () => G().Release, request: () => ({ clientId: 'host:esx-9' }), wrong: [as('follower', 'scvm-1'), as('gate', 'scvm-2')] },
  ];

  /** What refused calls could have changed: sessions, owners, hosts and routes, the gate's clients. */
  async function snapshot() {
    const s = await cluster.status();
    return {
      sessions: s.sessions.map((x) => [x.serverId, x.sessionId, x.state, x.clients]).sort(),
      clients: s.clients.map((c) => [c.clientId, c.serverId, c.token?.sequence]),
      hosts: s.hosts.map((h) => [h.hostId, h.storageIp, h.route, h.agentConnected]),
      maintenance: s.maintenance.map((m) => m.serverId),
      gateEvents: cluster.events().length,
    };
  }

  before(async () => {
    cluster = await new Cluster({ followers: 2, metrics: true, hosts: { 'esx-9': '127.0.9.1' } }).start();
    await cluster.connect(1, '127.0.9.1');
    sessionOf1 = (await cluster.status()).sessions.find((s) => s.serverId === 'scvm-1')!.sessionId;
  });

  after(async () => {
    await cluster?.stop();
  });

  it('the right identities get through (the refusals below are about identity, not the calls)', async () => {
    const target = (m: Method) => (m.server === 'master' ? cluster.masterAddress : cluster.gateSocket(1));
    const ok = async (name: string, caller: Caller) => {
      const m = methods.find((x) => x.name === name)!;
      return (await call(target(m), caller, m.def(), m.kind, m.request())).code;
    };
    assert.equal(await ok('SessionMaster/ClusterStatus', as('operator', 'test')), grpc.status.OK);
    assert.equal(await ok('Membership/ListMembers', as('agent', 'esx-1')), grpc.status.OK);
    assert.equal(await ok('Gate/AckRevoke', as('gate', 'scvm-1')), grpc.status.OK);
  });

  it('refuses unauthenticated, wrong-CA and wrong-identity callers on every method, and nothing changes', async () => {
    const before = await snapshot();
    const failures: string[] = [];
    for (const m of methods) {
      const address = m.server === 'master' ? cluster.masterAddress : cluster.gateSocket(1);
      for (const caller of strangers) {
        const r = await call(address, caller, m.def(), m.kind, m.request());
        if (r.code !== grpc.status.UNAVAILABLE) failures.push(`${m.name} as ${caller.name}: ${grpc.status[r.code]} ${r.details}`);
      }
      for (const caller of m.wrong) {
        const r = await call(address, caller, m.def(), m.kind, m.request());
        if (r.code !== grpc.status.PERMISSION_DENIED) failures.push(`${m.name} as ${caller.name}: ${grpc.status[r.code]} ${r.details}`);
      }
    }
    // An agent registering its own host with another host's address (a client identity).
    const squat = await call(cluster.masterAddress, as('agent', 'esx-2'), B().WatchMembers, 'server', { hostId: 'esx-2', storageIp: '127.0.9.1' });
    if (squat.code !== grpc.status.PERMISSION_DENIED || !/belongs to host esx-9/.test(squat.details)) failures.push(`address squatting: ${grpc.status[squat.code]} ${squat.details}`);
    assert.deepEqual(failures, []);
    assert.deepEqual(await snapshot(), before);
    for (const p of [cluster.master, ...cluster.followers]) assert.equal(p.child.exitCode, null, `${p.name} still running`);
    const master = await scrape(cluster.metricsPorts.get('master-1')!);
    assert.ok((sample(master, 'nfsha_master_refused_calls_total', { method: '/nfsha.v1.SessionMaster/Session', code: 'PERMISSION_DENIED' }) ?? 0) >= 3);
    assert.ok((sample(master, 'nfsha_master_refused_calls_total', { method: '/nfsha.v1.Deployer/Deploy', code: 'PERMISSION_DENIED' }) ?? 0) >= 3);
    const follower = await scrape(cluster.metricsPorts.get('follower-1')!);
    assert.ok((sample(follower, 'nfsha_follower_refused_calls_total', { method: '/nfsha.v1.Gate/Admit', code: 'PERMISSION_DENIED' }) ?? 0) >= 3);
  });
});

describe('security: components accept only the servers they expect', function () {
  this.timeout(60_000);

  it('a follower will not take sessions (or revokes) from a server that is not a master of the cluster CA', async () => {
    // Two impostors: a master certificate from another CA, and a cluster certificate for another role.
    const foreignMaster = scratchDir('nfsha-impostor-');
    const foreign = foreignTlsDir('master', 'impostor');
    fs.copyFileSync(path.join(TEST_PKI_DIR, 'ca', 'ca.pem'), path.join(foreignMaster, 'ca.pem'));
    for (const f of ['cert.pem', 'key.pem']) fs.copyFileSync(path.join(foreign, f), path.join(foreignMaster, f));
    const impostors = [
      await startMaster({ listen: `127.0.0.1:${await freePort()}`, tls: { dir: foreignMaster }, epoch: 9 }, silentLogger()),
    ];
    // The second impostor runs the real master code with an operator's certificate (startMaster itself refuses that).
    await assert.rejects(startMaster({ listen: `127.0.0.1:${await freePort()}`, tls: tlsOf('operator', 'test') }), /needs a master certificate/);
    for (const impostor of impostors) {
      const lines: string[] = [];
      const logFile = path.join(scratchDir('nfsha-f-'), 'follower.log');
      const follower = new Follower({ ...DEFAULT_FOLLOWER_OPTIONS, serverId: 'scvm-1', master: impostor.address, gateListen: `127.0.0.1:${await freePort()}`, tls: tlsOf('follower', 'scvm-1') },
        undefined, pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true })));
      await follower.start();
      try {
        await waitFor('three refused attempts', () => {
          lines.splice(0, lines.length, ...fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"session.stream.closed"') && l.includes('"granted":false')));
          return lines.length >= 3;
        }, 20_000, 50);
        assert.equal(follower.lease.isLive(), false, 'no session with an impostor');
        assert.equal(impostor.core()?.sessions.all().length ?? 0, 0, 'the impostor saw no introduction');
      } finally {
        await follower.stop();
        await impostor.close();
      }
    }
  });
});

describe('security: limits under a flood from a misbehaving follower (real processes)', function () {
  this.timeout(120_000);

  it('holds every limit with a clear status and a metric, while well-behaved followers keep their sessions', async () => {
    // Every client the flood logs in is a registered host (an unknown address is refused before any limit).
    const hostsFile = path.join(scratchDir('nfsha-flood-'), 'master.json');
    fs.writeFileSync(hostsFile, JSON.stringify({ hosts: [{ id: 'esx-9', storageIp: '127.0.9.1' }, ...Array.from({ length: 600 }, (_, k) => ({ id: `flood-${k}`, storageIp: `10.66.${k >> 8}.${k & 255}` }))] }));
    const cluster = await new Cluster({
      followers: 2, metrics: true, ttlMs: 2000, keepaliveMs: 250,
      masterArgs: ['--config', hostsFile, '--max-clients-per-session', '50', '--max-pending-logins-per-session', '8', '--introductions-per-second', '2', '--introduction-burst', '4', '--max-sessions', '6'],
    }).start();
    const bad = testClient<import('../../common/proto').SessionMasterClient>(nfshaGrpc().SessionMaster, cluster.masterAddress, tlsOf('follower', 'scvm-bad'));
    try {
      const before = (await cluster.status()).sessions.filter((s) => s.serverId !== 'scvm-bad').map((s) => [s.serverId, s.sessionId]).sort();
      await waitFor('grace over', async () => (await cluster.status()).ready, 20_000, 100);
      const held = await cluster.connect(1, '127.0.9.1');

      // The misbehaving follower opens a session, then floods.
      const stream = bad.Session();
      const granted = await new Promise<string>((resolve, reject) => {
        stream.on('data', (m: { granted?: { sessionId: string }; revoke?: unknown }) => { if (m.granted) resolve(m.granted.sessionId); });
        stream.on('error', reject);
        stream.write({ introduction: { serverId: 'scvm-bad', hostId: 'esx-bad', protocol: 2, fencing: 'FENCING_READY' } });
      });
      // It claims a working fence, so an unanswered revoke condemns it as before (this test is about limits).
      const keepalive = setInterval(() => stream.write({ keepalive: { seq: 1, fencing: 'FENCING_READY' } }), 250);
      const codes = new Map<string, number>();
      const count = (what: string, code: grpc.status) => codes.set(`${what} ${grpc.status[code]}`, (codes.get(`${what} ${grpc.status[code]}`) ?? 0) + 1);
      const unary = (fn: (cb: (e: grpc.ServiceError | null) => void) => void, what: string) => new Promise<void>((resolve) => fn((e) => { count(what, e?.code ?? grpc.status.OK); resolve(); }));
      const deadline = () => ({ deadline: new Date(Date.now() + 10_000) });

      // 1. A hundred logins at once of a client a good follower serves: they queue behind its revoke.
      await Promise.all(Array.from({ length: 100 }, () => unary((cb) => bad.Login({ sessionId: granted, clientAddress: '127.0.9.1' }, deadline(), cb), 'steal')));
      await Promise.all([
        // 2. Logins for 600 distinct clients, 150 at a time.
        ...Array.from({ length: 150 }, (_, w) => (async () => {
          for (let k = w; k < 600; k += 150) {
            await unary((cb) => bad.Login({ sessionId: granted, clientAddress: `10.66.${k >> 8}.${k & 255}` }, deadline(), cb), 'login');
          }
        })()),
        // 3. Re-introductions and new sessions under its own name, and impersonation of a good follower.
        ...Array.from({ length: 40 }, (_, k) => new Promise<void>((resolve) => {
          const s = bad.Session();
          s.on('data', () => { count('intro', grpc.status.OK); s.cancel(); resolve(); });
          s.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) count('intro', e.code); resolve(); });
          s.write({ introduction: { serverId: k % 4 === 0 ? 'scvm-1' : 'scvm-bad' } });
        })),
        // 4. Oversized messages.
        ...Array.from({ length: 40 }, () => unary((cb) => bad.Login({ sessionId: granted, clientAddress: 'x'.repeat(100_000) }, deadline(), cb), 'oversized')),
      ]);
      clearInterval(keepalive);

      const limited = (what: string) => codes.get(`${what} RESOURCE_EXHAUSTED`) ?? 0;
      assert.ok(limited('login') > 0, `logins limited: ${JSON.stringify([...codes])}`);
      assert.ok(limited('steal') > 0 && (codes.get('steal OK') ?? 0) > 0, `logins in flight limited: ${JSON.stringify([...codes])}`);
      await waitFor('the stolen client revoked on gate 1', () => held.closed);
      assert.ok((codes.get('login OK') ?? 0) <= 50, 'no more than 50 clients granted');
      assert.ok(limited('intro') > 0, `introductions limited: ${JSON.stringify([...codes])}`);
      assert.equal(codes.get('intro PERMISSION_DENIED'), 10, 'impersonations refused');
      assert.equal(limited('oversized'), 40);

      const status = await cluster.status();
      assert.ok(status.clients.filter((c) => c.serverId === 'scvm-bad').length <= 50);
      // The good followers kept the very sessions they had, live, and still admit clients.
      assert.deepEqual(status.sessions.filter((s) => s.serverId !== 'scvm-bad').map((s) => [s.serverId, s.sessionId]).sort(), before);
      assert.ok(status.sessions.filter((s) => s.serverId !== 'scvm-bad').every((s) => s.state === 'live' && s.connected));
      (await cluster.connect(2, '127.0.9.1')).close();
      for (const i of [1, 2]) {
        const f = await scrape(cluster.metricsPorts.get(`follower-${i}`)!);
        assert.equal(sample(f, 'nfsha_follower_fences_total'), 0, `follower-${i} never fenced`);
      }
      const m = await scrape(cluster.metricsPorts.get('master-1')!);
      for (const limit of ['clients_per_session', 'pending_logins_per_session', 'introduction_rate']) {
        assert.ok((sample(m, 'nfsha_master_limit_refusals_total', { limit }) ?? 0) > 0, `metric for ${limit}`);
      }
      assert.equal(cluster.master.child.exitCode, null, 'master still running');
      stream.cancel();
    } finally {
      bad.close();
      await cluster.stop();
    }
  });
});

describe('security: key rotation without restarts (real processes, nfsha init)', function () {
  this.timeout(120_000);

  /** The serial number of the certificate a server presents to a new connection. */
  function servedSerial(address: string, operatorDir: string): Promise<string> {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host, port, servername: 'nfsha', ALPNProtocols: ['h2'], ca: pem(operatorDir, 'ca.pem'), cert: pem(operatorDir, 'cert.pem'), key: pem(operatorDir, 'key.pem'), checkServerIdentity: () => undefined }, () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.destroy();
        resolve(serial);
      });
      s.on('error', reject);
    });
  }

  it('renewed certificates and a new CA take effect on new connections while the session goes on', async () => {
    const dir = scratchDir('nfsha-rotate-');
    const init = (...args: string[]) => run(process.execPath, [CLI, 'init', '--dir', dir, ...args]);
    const first = await init('--master', 'm1', '--follower', 'scvm-1', '--operator', 'op');
    assert.match(first.stdout, /CA created/);
    assert.match(first.stdout, /follower\/scvm-1\s+created/);
    assert.match(first.stdout, /gate\/scvm-1\s+created/);
    const oldOperator = scratchDir('nfsha-old-op-');
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) fs.copyFileSync(path.join(dir, 'operator-op', f), path.join(oldOperator, f));

    const cluster = new Cluster({ followers: 0 });
    const master = `127.0.0.1:${await freePort()}`;
    const refresh = ['--tls-refresh-ms', '200'];
    cluster.spawn('master', ['master', '--listen', master, '--tls', path.join(dir, 'master-m1'), ...refresh]);
    cluster.spawn('follower', ['follower', '--server-id', 'scvm-1', '--master', master, '--gate-listen', `unix:${path.join(dir, 'gate.sock')}`, '--tls', path.join(dir, 'follower-scvm-1'), ...refresh]);
    const status = (opDir = path.join(dir, 'operator-op')) => fetchStatus(master, 2000, { dir: opDir });
    try {
      const session = await waitFor('scvm-1 in session', async () => (await status().catch(() => undefined))?.sessions.find((s) => s.state === 'live')?.sessionId);
      const operator = path.join(dir, 'operator-op');

      // A renewed master certificate is served to new connections, without a restart.
      const before = await servedSerial(master, operator);
      await init('--master', 'm1', '--renew');
      await waitFor('the renewed certificate served', async () => (await servedSerial(master, operator)) !== before, 10_000, 100);

      // CA rotation: a new CA; every directory renewed trusts both; then only the new one.
      assert.match((await init('--new-ca', '--renew')).stdout, /CA replaced/);
      await waitFor('status with a new-CA operator certificate', async () => (await status().catch(() => undefined))?.leader, 10_000, 100);
      await init('--drop-old-ca', '--renew');
      await waitFor('old-CA operator refused', async () => (await status(oldOperator).then(() => false, () => true)), 10_000, 100);
      const s = await status();
      assert.equal(s.sessions.find((x) => x.state === 'live')?.sessionId, session, 'the follower kept its session through both rotations');
      assert.equal(cluster.procs.every((p) => p.child.exitCode === null), true, 'nothing restarted');
    } finally {
      await cluster.stop();
    }
  });
});

describe('security: the masters\' etcd hop is mTLS too (real etcd)', function () {
  this.timeout(60_000);

  it('etcd serves masters only, under nfsha/: no certificate, another CA, or another role is refused', async () => {
    const etcd = await new EtcdCluster(1).start();
    const as = (role: Role, id: string) => new Etcd3({ ...etcdConnection(etcd.endpoints, tlsOf(role, id)), dialTimeout: 1000, faultHandling: { global: noop, host: () => noop } });
    try {
      const master = as('master', 'm1');
      await master.put('nfsha/k').value('v');
      await assert.rejects(master.put('elsewhere/k').value('v').exec(), /permission denied/, 'a master only under nfsha/');
      master.close();
      for (const [role, id] of [['agent', 'esx-1'], ['follower', 'scvm-1'], ['master', 'm9']] as const) {
        const c = as(role, id);
        await assert.rejects(c.put('nfsha/k').value(`${role}/${id}`).exec(), /permission denied|user name not found|authentication failed/i, `${role}/${id} must be refused`);
        c.close();
      }
      const foreign = foreignTlsDir('master', 'intruder');
      const attempts: Array<[string, IOptions]> = [
        ['plain text', { hosts: etcd.endpoints.map((e) => `http://${e}`) }],
        ['TLS without a client certificate', { ...etcdClientOptions(etcd.endpoints), credentials: { rootCertificate: pem(path.join(TEST_PKI_DIR, 'ca'), 'ca.pem') } }],
        ['a certificate from another CA', { ...etcdClientOptions(etcd.endpoints), credentials: { rootCertificate: pem(path.join(TEST_PKI_DIR, 'ca'), 'ca.pem'), certChain: pem(foreign, 'cert.pem'), privateKey: pem(foreign, 'key.pem') } }],
      ];
      for (const [name, options] of attempts) {
        const c = new Etcd3({ ...options, dialTimeout: 1000, faultHandling: { global: noop, host: () => noop } });
        await assert.rejects(c.put('nfsha/k').value(name).exec(), Error, `${name} must be refused`);
        c.close();
      }
      const check = new Etcd3(etcdClientOptions(etcd.endpoints));
      assert.equal(await check.get('nfsha/k').string(), 'v', 'nothing written by the refused clients');
      check.close();
    } finally {
      await etcd.stop();
    }
  });
});
