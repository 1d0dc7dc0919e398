import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, freePort } from '../support/cluster';
import { foreignTlsDir, TEST_PKI_DIR, tlsDir } from '../support/pki';
import { readmeBlockOf, withoutComment } from '../support/readme';
import { scratchDir } from '../support/scratch';

/**
 * The README's curl lines ("Diagnosing with grpcurl and curl"), run as
 * printed with real curl (and jq) against real processes, only the
 * addresses replaced; every JSON answer checked against proto3's canonical
 * JSON as Debian's python3-protobuf (json_format) prints the same message.
 */

const PYTHON = '/usr/bin/python3';
const GRPC_CORE_CLIENT = path.resolve(__dirname, '..', '..', '..', 'test', 'support', 'grpc_core_client.py');

interface Run { code: number; stdout: string; stderr: string }

function sh(script: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', `set -euo pipefail\n${script}`], { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function requireTools(): void {
  const missing = ['curl', 'jq'].filter((t) => { try { execFileSync('which', [t], { stdio: 'ignore' }); return false; } catch { return true; } });
  if (!fs.existsSync(PYTHON)) missing.push('python3');
  if (missing.length) throw new Error(`this test needs ${missing.join(', ')} (apt-get install -y ${missing.join(' ')}; test/setup.sh installs them)`);
}

describe('HTTPS JSON API: the README curl lines against a real master and follower', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let masterHttp = 0;
  let followerHttp = 0;
  let T = '';
  const lines = readmeBlockOf('Diagnosing with grpcurl and curl', 'curl');
  const curlLines = lines.filter((l) => /^(curl|jq) /.test(l)).map(withoutComment);
  const work = scratchDir('nfsha-http-');

  /** The README's variable lines, then `line` with the example addresses swapped for the test's. */
  function script(line: string): string {
    const assignments = lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => (l.startsWith('T=') ? `T=${T}` : l));
    const local = line
      .replace(/master\.nfsha:7443:10\.20\.0\.21:7443/g, `master.nfsha:${masterHttp}:127.0.0.1:${masterHttp}`)
      .replace(/master\.nfsha:7443/g, `master.nfsha:${masterHttp}`)
      .replace(/follower\.nfsha:7443:10\.20\.0\.31:7443/g, `follower.nfsha:${followerHttp}:127.0.0.1:${followerHttp}`)
      .replace(/follower\.nfsha:7443/g, `follower.nfsha:${followerHttp}`);
    return [...assignments, `cd ${work}`, `${local} -sS --fail-with-body`].join('\n');
  }

  /** `message` as json_format prints it after parsing `json` strictly (unknown fields and wrong types fail). */
  async function canonical(message: string, json: string): Promise<unknown[]> {
    const r = await new Promise<Run>((resolve) => {
      const child = execFile(PYTHON, [GRPC_CORE_CLIENT, '--cacert', `${T}/ca.pem`, '--cert', `${T}/cert.pem`, '--key', `${T}/key.pem`, '--authority', 'master.nfsha', cluster.masterAddress, 'canonical', message],
        { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
      child.stdin!.end(json);
    });
    assert.equal(r.code, 0, `json_format refused the API's ${message} JSON:\n${r.stderr}\n${json}`);
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }

  /** Parses JSON lines and asserts each is exactly what json_format makes of it. */
  async function assertCanonical(message: string, stdout: string): Promise<Array<Record<string, unknown>>> {
    const ours = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(ours, await canonical(message, stdout), `the ${message} JSON is not canonical proto3 JSON`);
    return ours;
  }

  before(async () => {
    requireTools();
    T = tlsDir('operator', 'test');
    // The master's Deploy finds the cluster CA under its deploy state dir, and a bundle.
    const state = path.join(work, 'deploy-state');
    fs.mkdirSync(state);
    fs.symlinkSync(TEST_PKI_DIR, path.join(state, 'pki'));
    const bundle = path.join(work, 'bundle');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'descriptor.xml'), '<vib><version>0.0.0-test</version></vib>');
    cluster = await new Cluster({ followers: 2, http: true, hosts: { 'esx-9': '127.0.9.1' }, masterArgs: ['--deploy-state-dir', state, '--bundle-dir', bundle] }).start();
    masterHttp = cluster.httpPorts.get('master-1')!;
    followerHttp = cluster.httpPorts.get('follower-1')!;
    await cluster.connect(1, '127.0.9.1');
    // The README's deploy line reads these: an inventory whose one host has no sshd (port closed).
    const closed = await freePort();
    fs.writeFileSync(path.join(work, 'hosts.json'), JSON.stringify({ masters: cluster.masterAddress, hosts: [{ hostId: 'esx-7', address: '127.0.0.1', port: closed, localServerId: 'scvm-7' }] }));
    fs.writeFileSync(path.join(work, 'operator_key'), 'not a key\n');
  });

  after(async () => {
    await cluster?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const EXPECT: Record<string, (stdout: string) => Promise<void>> = {
    'curl $C --connect-to master.nfsha:7443:10.20.0.21:7443 https://master.nfsha:7443/v1/status': async (out) => {
      const [s] = await assertCanonical('nfsha.v1.ClusterStatusReply', out);
      assert.equal(s.leader, true);
      assert.equal(s.leaderAddress, cluster.masterAddress);
      assert.equal(typeof s.epoch, 'string', 'uint64 is a JSON string');
      assert.deepEqual((s.sessions as Array<{ serverId: string; state: string }>).map((x) => [x.serverId, x.state]).sort(), [['scvm-1', 'live'], ['scvm-2', 'live']]);
      const client = (s.clients as Array<{ clientId: string; serverId: string; token: { sequence: string } }>)[0];
      assert.deepEqual([client.clientId, client.serverId, typeof client.token.sequence], ['host:esx-9', 'scvm-1', 'string']);
      // The same answer gRPC gives (the session ids; timings differ between the two calls).
      assert.deepEqual((s.sessions as Array<{ sessionId: string }>).map((x) => x.sessionId).sort(), (await cluster.status()).sessions.map((x) => x.sessionId).sort());
    },
    'curl $C --connect-to master.nfsha:7443:10.20.0.21:7443 https://master.nfsha:7443/v1/members': async (out) => {
      const [m] = await assertCanonical('nfsha.v1.MemberList', out);
      assert.deepEqual((m.members as Array<{ serverId: string }>).map((x) => x.serverId), ['scvm-1', 'scvm-2']);
    },
    'curl $C --connect-to master.nfsha:7443:10.20.0.21:7443 \'https://master.nfsha:7443/healthz?service=nfsha.v1.SessionMaster\'': async (out) => {
      assert.deepEqual(JSON.parse(out), { status: 'SERVING' });
    },
    'curl $C --connect-to master.nfsha:7443:10.20.0.21:7443 --json \'{"serverId":"scvm-2","enter":true,"reason":"upgrade"}\' https://master.nfsha:7443/v1/maintenance': async (out) => {
      const [r] = await assertCanonical('nfsha.v1.SetMaintenanceReply', out);
      assert.deepEqual([r.changed, r.inMaintenance], [true, true]);
      const s = await cluster.status();
      assert.deepEqual(s.maintenance.map((m) => [m.serverId, m.operator, m.reason]), [['scvm-2', 'operator/test', 'upgrade']]);
    },
    'curl $C --connect-to follower.nfsha:7443:10.20.0.31:7443 https://follower.nfsha:7443/v1/status': async (out) => {
      const [s] = await assertCanonical('nfsha.v1.FollowerStatusReply', out);
      assert.deepEqual([s.serverId, s.hostId, s.lease], ['scvm-1', 'esx-1', 'live']);
      assert.deepEqual((s.clients as Array<{ clientId: string }>).map((c) => c.clientId), ['host:esx-9']);
      assert.deepEqual((s.nfsLayers as Array<{ name: string }>).map((l) => l.name), ['gate-1']);
    },
    'curl $C --connect-to follower.nfsha:7443:10.20.0.31:7443 https://follower.nfsha:7443/healthz': async (out) => {
      assert.deepEqual(JSON.parse(out), { status: 'SERVING' });
    },
    'jq -n --rawfile inventory hosts.json --rawfile key operator_key \'{inventory_json: $inventory, operator_private_key: $key}\' | curl $C --connect-to master.nfsha:7443:10.20.0.21:7443 --json @- https://master.nfsha:7443/v1/deploy': async (out) => {
      // The same deployment as Deployer/Deploy: progress lines, then one report per host (this one cannot be reached).
      const events = await assertCanonical('nfsha.v1.DeployEvent', out);
      assert.ok(events.some((e) => (e.progress as { hostId?: string } | undefined)?.hostId === 'esx-7'), out);
      const reports = events.filter((e) => e.report).map((e) => e.report as { hostId: string; error: string });
      assert.equal(reports.length, 1, out);
      assert.equal(reports[0].hostId, 'esx-7');
      assert.match(reports[0].error, /ECONNREFUSED|connect|key/i);
    },
  };

  it('has a check for every curl line of the README, and every check is a README line', () => {
    assert.deepEqual(curlLines.filter((l) => !EXPECT[l]), [], 'README curl lines without a check here');
    assert.deepEqual(Object.keys(EXPECT).filter((l) => !curlLines.includes(l)), [], 'checks for lines the README no longer prints');
  });

  for (const line of Object.keys(EXPECT)) {
    it(`runs the README line: ${line.slice(0, 110)}`, async () => {
      const r = await sh(script(line));
      assert.equal(r.code, 0, `${script(line)}\nexited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      await EXPECT[line](r.stdout);
    });
  }

  const C = () => ['--cacert', `${T}/ca.pem`, '--cert', `${T}/cert.pem`, '--key', `${T}/key.pem`];
  async function curl(args: string[]): Promise<{ status: number; body: string }> {
    const r = await new Promise<Run>((resolve) => execFile('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', ...args], { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })));
    assert.equal(r.code, 0, r.stderr);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  }
  const url = (p: string) => `https://127.0.0.1:${masterHttp}${p}`;

  it('refuses callers without a certificate, from another CA, or in the wrong role, as gRPC does, and nothing changes', async () => {
    const before = JSON.stringify((await cluster.status()).clients);
    const none = await curl(['--cacert', `${T}/ca.pem`, url('/v1/status')]);
    assert.equal(none.status, 401);
    assert.deepEqual(JSON.parse(none.body), { code: 16, message: 'a client certificate from the cluster CA is required (curl --cert … --key …)', details: [] });
    const F = foreignTlsDir('operator', 'x');
    const foreign = await curl(['--cacert', `${T}/ca.pem`, '--cert', `${F}/cert.pem`, '--key', `${F}/key.pem`, url('/v1/status')]);
    assert.equal(foreign.status, 401);
    assert.match(JSON.parse(foreign.body).message, /not issued by the cluster CA/);
    const A = tlsDir('agent', 'esx-1');
    const agent = await curl(['--cacert', `${T}/ca.pem`, '--cert', `${A}/cert.pem`, '--key', `${A}/key.pem`, url('/v1/status')]);
    assert.equal(agent.status, 403);
    assert.match(JSON.parse(agent.body).message, /agent\/esx-1 may not call \/nfsha\.v1\.SessionMaster\/ClusterStatus/);
    const deployByAgent = await curl(['--cacert', `${T}/ca.pem`, '--cert', `${A}/cert.pem`, '--key', `${A}/key.pem`, '--json', '{}', url('/v1/deploy')]);
    assert.equal(deployByAgent.status, 403);
    // A gate certificate may read only its own follower's status.
    const G2 = tlsDir('gate', 'scvm-2');
    const otherGate = await curl(['--cacert', `${T}/ca.pem`, '--cert', `${G2}/cert.pem`, '--key', `${G2}/key.pem`, `https://127.0.0.1:${followerHttp}/v1/status`]);
    assert.equal(otherGate.status, 403);
    // The server verifies curl too: a client that trusts another CA refuses the master.
    const r = await sh(`curl -sS --cacert ${F}/ca.pem --cert ${T}/cert.pem --key ${T}/key.pem ${url('/v1/status')}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /certificate/i);
    assert.equal(JSON.stringify((await cluster.status()).clients), before);
  });

  it('answers bad input with a clear error and keeps serving: unknown field, wrong type, not JSON, oversized, unknown path, wrong method', async () => {
    const post = (body: string) => curl([...C(), '-H', 'content-type: application/json', '--data-binary', body, url('/v1/deploy')]);
    const unknown = await post('{"inventory_json": "{}", "bogus": 1}');
    assert.equal(unknown.status, 400);
    assert.equal(JSON.parse(unknown.body).message, 'DeployRequest has no field "bogus"');
    const wrongType = await post('{"register_timeout_ms": "soon"}');
    assert.equal(wrongType.status, 400);
    assert.match(JSON.parse(wrongType.body).message, /registerTimeoutMs: integer expected/);
    const notJson = await post('{"inventory_json": ');
    assert.equal(notJson.status, 400);
    assert.match(JSON.parse(notJson.body).message, /not JSON/);
    const badInventory = await post('{"inventoryJson": "{\\"hosts\\": []}"}');
    assert.equal(badInventory.status, 400);
    assert.match(JSON.parse(badInventory.body).message, /invalid inventory setting/);
    const hugeFile = path.join(work, 'huge.json');
    fs.writeFileSync(hugeFile, `{"inventory_json": "${'x'.repeat(200_000)}"}`);
    const huge = await curl([...C(), '-H', 'content-type: application/json', '--data-binary', `@${hugeFile}`, url('/v1/deploy')]);
    assert.equal(huge.status, 413);
    assert.match(JSON.parse(huge.body).message, /larger than 65536 bytes/);
    const missing = await curl([...C(), url('/v2/nothing')]);
    assert.equal(missing.status, 404);
    const wrongMethod = await curl([...C(), '-X', 'DELETE', url('/v1/status')]);
    assert.equal(wrongMethod.status, 405);
    // Still serving, and the answer still says the same.
    const after = await curl([...C(), url('/v1/status')]);
    assert.equal(after.status, 200);
    assert.equal(JSON.parse(after.body).leader, true);
  });

  it('/healthz: 200 and SERVING for the server as a whole, 404 for a service it does not know', async () => {
    const unknown = await curl([...C(), url('/healthz?service=nfsha.v1.Nothing')]);
    assert.equal(unknown.status, 404);
    const whole = await curl([...C(), url('/healthz')]);
    assert.deepEqual([whole.status, JSON.parse(whole.body)], [200, { status: 'SERVING' }]);
  });
});
