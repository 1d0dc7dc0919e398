import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { nfshaGrpc, type GateClient, type SessionMasterClient } from '../../common/proto';
import type { MasterMessage__Output } from '../../gen/nfsha/v1/MasterMessage';
import { CLI, Cluster, freePort } from '../support/cluster';
import { describeSymbol, healthCheck, listServices } from '../support/grpc-raw';
import { tlsArgs, tlsOf, testClient } from '../support/pki';
import { scratchDir } from '../support/scratch';

const run = promisify(execFile);
const deadline = () => ({ deadline: new Date(Date.now() + 3000) });

function unary<Req, Res>(fn: (req: Req, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, deadline(), (e, r) => (e ? reject(e) : resolve(r!))));
}

/** Opens a Session stream with `first` as its first message; resolves with the first reply or the error status. */
function openSession(client: SessionMasterClient, first: object): Promise<{ reply?: MasterMessage__Output; error?: grpc.ServiceError; call: grpc.ClientDuplexStream<object, MasterMessage__Output> }> {
  return new Promise((resolve) => {
    const call = client.Session() as unknown as grpc.ClientDuplexStream<object, MasterMessage__Output>;
    call.on('data', (reply: MasterMessage__Output) => resolve({ reply, call }));
    call.on('error', (error: grpc.ServiceError) => resolve({ error, call }));
    call.write(first);
  });
}

/** Status without the fields that move on their own (keepalive ages). */
async function stableStatus(cluster: Cluster) {
  const s = await cluster.status();
  return { sessions: s.sessions.map((x) => ({ ...x, sinceKeepaliveMs: 0 })).sort((a, b) => a.sessionId.localeCompare(b.sessionId)), clients: s.clients };
}

describe('API: reflection, health and bad input (real processes)', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let master: SessionMasterClient;
  let gate: GateClient;
  /** A follower certificate for a server id no follower uses. */
  let master9: SessionMasterClient;

  before(async () => {
    cluster = await new Cluster({ followers: 3, hosts: { 'esx-9': '127.0.9.1' } }).start();
    master = testClient(nfshaGrpc().SessionMaster, cluster.masterAddress, tlsOf('follower', 'scvm-1'));
    master9 = testClient(nfshaGrpc().SessionMaster, cluster.masterAddress, tlsOf('follower', 'scvm-9'));
    gate = testClient(nfshaGrpc().Gate, cluster.gateSocket(1), tlsOf('gate', 'scvm-1'));
    (await cluster.connect(1, '127.0.9.1')).close();
    await cluster.connect(2, '127.0.9.1');
  });

  after(async function () {
    master.close();
    master9.close();
    gate.close();
    await cluster.stop();
  });

  it('lists every service through server reflection, as grpcurl list does', async () => {
    assert.deepEqual(await listServices(cluster.masterAddress), ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'nfsha.v1.Deployer', 'nfsha.v1.Membership', 'nfsha.v1.SessionMaster']);
    const files = await describeSymbol(cluster.masterAddress, 'nfsha.v1.SessionMaster');
    assert.ok(files.some((f) => f.toString('latin1').includes('ClusterStatus')));
    assert.deepEqual(await listServices(cluster.gateSocket(1)), ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'nfsha.v1.Gate']);
  });

  it('answers grpc.health.v1 checks for the server and each nfsha service', async () => {
    assert.equal(await healthCheck(cluster.masterAddress, ''), 'SERVING');
    assert.equal(await healthCheck(cluster.masterAddress, 'nfsha.v1.SessionMaster'), 'SERVING');
    assert.equal(await healthCheck(cluster.gateSocket(1), 'nfsha.v1.Gate'), 'SERVING');
  });

  it('refuses malformed addresses, unknown sessions, oversized messages and a second session for a live server id, changing nothing', async () => {
    const before = await stableStatus(cluster);
    const sessionOf1 = before.sessions.find((s) => s.serverId === 'scvm-1')!.sessionId;

    await assert.rejects(unary(master.Login.bind(master), { sessionId: sessionOf1, clientAddress: 'not-an-ip' }), { code: grpc.status.INVALID_ARGUMENT });
    await assert.rejects(unary(master.Login.bind(master), { sessionId: sessionOf1, clientAddress: '999.1.1.1' }), { code: grpc.status.INVALID_ARGUMENT });
    await assert.rejects(unary(master.Login.bind(master), { sessionId: 'no-such-session', clientAddress: '127.0.9.1' }), { code: grpc.status.NOT_FOUND });
    await assert.rejects(unary(master.Logout.bind(master), { sessionId: 'no-such-session', clientId: 'host:esx-9' }), { code: grpc.status.NOT_FOUND });
    await assert.rejects(unary(master.Login.bind(master), { sessionId: sessionOf1, clientAddress: 'x'.repeat(100_000) }), { code: grpc.status.RESOURCE_EXHAUSTED });

    const dup = await openSession(master, { introduction: { serverId: 'scvm-1', hostId: 'esx-1' } });
    assert.equal(dup.error?.code, grpc.status.ALREADY_EXISTS, `got ${JSON.stringify(dup.reply ?? dup.error?.details)}`);
    const badIp = await openSession(master9, { introduction: { serverId: 'scvm-9', storageIp: '10.0.0.300' } });
    assert.equal(badIp.error?.code, grpc.status.INVALID_ARGUMENT);
    const noIntro = await openSession(master, { keepalive: { seq: 1 } });
    assert.equal(noIntro.error?.code, grpc.status.INVALID_ARGUMENT);
    const stale = await openSession(master9, { introduction: { serverId: 'scvm-9', highestEpoch: Number.MAX_SAFE_INTEGER } });
    assert.equal(stale.error?.code, grpc.status.FAILED_PRECONDITION);

    await assert.rejects(unary(gate.Admit.bind(gate), { clientAddress: 'bogus' }), { code: grpc.status.INVALID_ARGUMENT });
    await assert.rejects(unary(gate.Admit.bind(gate), { clientAddress: 'y'.repeat(100_000) }), { code: grpc.status.RESOURCE_EXHAUSTED });
    await assert.rejects(unary(gate.Release.bind(gate), { clientId: '' }), { code: grpc.status.INVALID_ARGUMENT });
    assert.deepEqual(await unary(gate.AckRevoke.bind(gate), { revokeId: 'never-sent' }), { known: false });
    assert.deepEqual(await unary(gate.Release.bind(gate), { clientId: 'host:never-admitted' }), { released: false });

    const deployer = testClient<import('../../common/proto').DeployerClient>(nfshaGrpc().Deployer, cluster.masterAddress);
    for (const [inventoryJson, pattern] of [['{not json', /not valid JSON/], ['{"masters":"x:1","hosts":[]}', /invalid inventory/], [JSON.stringify({ masters: '127.0.0.1:1', hosts: [{ hostId: 'esx-1', address: '127.0.0.1', localServerId: 'scvm-1' }] }), /no bundle/]] as const) {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const call = deployer.Deploy({ inventoryJson, bundleDir: '/nonexistent' });
        call.on('data', () => undefined);
        call.on('error', resolve);
        call.on('end', () => resolve({ code: grpc.status.OK } as grpc.ServiceError));
      });
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, pattern);
    }
    deployer.close();

    assert.deepEqual(await stableStatus(cluster), before);
    assert.equal(cluster.master.child.exitCode, null, 'master still running');
  });
});

describe('CLI', function () {
  this.timeout(60_000);

  it('prints status as JSON with --json', async () => {
    const cluster = await new Cluster({ followers: 2 }).start();
    try {
      const { stdout } = await run(process.execPath, [CLI, 'status', '--json', '--master', cluster.masterAddress, ...tlsArgs('operator', 'test')]);
      const s = JSON.parse(stdout);
      assert.equal(s.sessions.length, 2);
      assert.equal(s.leader, true);
    } finally {
      await cluster.stop();
    }
  });

  it('refreshes the status with --watch until interrupted', async () => {
    const cluster = await new Cluster({ followers: 1 }).start();
    try {
      const r = await run(process.execPath, [CLI, 'status', '--watch', '200', '--master', cluster.masterAddress, ...tlsArgs('operator', 'test')], { timeout: 3000 }).catch((e) => e as { stdout: string });
      assert.ok((r.stdout.match(/every 200 ms/g) ?? []).length >= 2, r.stdout);
      assert.match(r.stdout, /scvm-1\s+\S+\s+live/);
    } finally {
      await cluster.stop();
    }
  });

  it('explains every flag with its default in --help', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'master', '--help']);
    assert.match(stdout, /--ttl-ms <ms>[\s\S]*\(default:\s+3000\)/);
    assert.match(stdout, /--tls <dir>[\s\S]*--insecure/);
    const f = await run(process.execPath, [CLI, 'follower', '--help']);
    assert.match(f.stdout, /--gate-listen/);
  });

  for (const [args, pattern, code] of [
    [['master', '--ttl-ms', 'soon'], /argument 'soon' is invalid/, 1],
    [['master', '--listen', 'nowhere'], /invalid master setting listen/, 2],
    [['master', '--keepalive-ms', '2000', '--ttl-ms', '3000'], /keepaliveIntervalMs must be at most half/, 2],
    [['follower', '--server-id', 'scvm 1'], /invalid follower setting serverId/, 2],
    [['follower', '--server-id', 'a', '--storage-ip', '10.0.0.256'], /invalid follower setting storageIp: not an IP/, 2],
    [['master', '--bogus'], /unknown option '--bogus'/, 1],
    [['master', '--max-clients-per-session', '5000'], /maxClientsPerSession: .* must fit maxMessageBytes/, 2],
    [['master', '--etcd', '10.0.0.1:2379', '--insecure'], /etcd endpoint 10\.0\.0\.1:2379: plain text is for --insecure loopback development only/, 2],
    [['status', '--master', '127.0.0.1:1', '--timeout-ms', '500', '--insecure'], /cannot reach master/, 1],
    [['status', '--master', '127.0.0.1:1', '--tls', '/nonexistent'], /TLS directory \/nonexistent: .*nfsha init/, 2],
    [['master', '--listen', '0.0.0.0:7410', '--insecure'], /--insecure .* loopback development only; listen address 0\.0\.0\.0:7410 is not a loopback address/, 2],
    [['follower', '--server-id', 'a', '--master', '10.0.0.1:7410', '--no-fence', '--insecure'], /--insecure .* target 10\.0\.0\.1:7410 is not a loopback address/, 2],
    [['follower', '--server-id', 'a', '--master', '10.0.0.1:7410', '--insecure'], /no --fence-command, and 10\.0\.0\.1:7410 is not loopback: .*--no-fence to run without one knowingly/, 2],
    [['follower', '--server-id', 'a', '--fence-command', 'true', '--no-fence'], /--fence-command and --no-fence contradict/, 2],
    [['gate', '--route', '10.0.0.5:2049=127.0.0.1:2049', '--insecure'], /no --fence-command, and 10\.0\.0\.5:2049 is not loopback/, 2],
  ] as const) {
    it(`fails with one clear line and a non-zero exit: ${args.join(' ')}`, async () => {
      const r = await run(process.execPath, [CLI, ...args]).then(() => undefined, (e) => e as { code: number; stderr: string });
      assert.ok(r, 'expected a failure');
      assert.equal(r.code, code);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, `more than one line: ${r.stderr}`);
    });
  }

  it('reports a malformed config file in one line', async () => {
    const file = path.join(scratchDir('nfsha-cfg-'), 'bad.json');
    fs.writeFileSync(file, '{"sessionTtlMs": "three seconds"}');
    const r = await run(process.execPath, [CLI, 'master', '--config', file]).then(() => undefined, (e) => e as { code: number; stderr: string });
    assert.equal(r?.code, 2);
    assert.match(r!.stderr, /invalid master setting sessionTtlMs/);
    fs.writeFileSync(file, '{not json');
    const r2 = await run(process.execPath, [CLI, 'master', '--config', file]).then(() => undefined, (e) => e as { code: number; stderr: string });
    assert.match(r2!.stderr, /is not valid JSON/);
  });
});
