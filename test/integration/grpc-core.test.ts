import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../support/cluster';
import { foreignTlsDir, tlsDir } from '../support/pki';
import { readmeBlockOf, readmeVariables, shellWords, withoutComment } from '../support/readme';

/**
 * The README's grpcurl lines ("Diagnosing with grpcurl"), run with a client
 * that is not grpc-js: grpc-core through Debian's python3-grpcio, knowing no
 * .proto of nfsha (test/support/grpc_core_client.py finds everything through
 * server reflection). grpcurl itself is not packaged for Debian 12.
 */

/** Debian's python, not a pyenv/venv one on PATH: the apt packages below install into it. */
const PYTHON = '/usr/bin/python3';
const CLIENT = path.resolve(__dirname, '..', '..', '..', 'test', 'support', 'grpc_core_client.py');
const APT_PACKAGES = ['python3-grpcio', 'python3-grpc-tools', 'python3-protobuf', 'grpc-proto'];

/** gRPC status codes as the client exits with them: 64 + code, as grpcurl does. */
const EXIT = { PERMISSION_DENIED: 64 + 7, UNAVAILABLE: 64 + 14 };

function missingPackages(): string[] {
  return APT_PACKAGES.filter((p) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
    } catch {
      return true;
    }
  });
}

interface Run { command: string; code: number; stdout: string; stderr: string }

/**
 * Runs one grpcurl command line on the grpc-core client. The arguments are
 * grpcurl's (`-cacert F -cert F -key F -authority N [-d JSON] [-unix] ADDRESS
 * (list | describe SYMBOL | SERVICE/METHOD)`), mapped one to one onto the
 * client's (`--cacert … ADDRESS call SERVICE/METHOD --data JSON`).
 */
function grpcurl(...args: string[]): Promise<Run> {
  const flags: string[] = [];
  const rest: string[] = [];
  let data: string | undefined;
  let unix = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (['-cacert', '-cert', '-key', '-authority'].includes(a)) flags.push(`-${a}`, args[++i]);
    else if (a === '-d') data = args[++i];
    else if (a === '-unix') unix = true;
    else if (a.startsWith('-')) throw new Error(`grpcurl flag ${a} has no counterpart in grpc_core_client.py`);
    else rest.push(a);
  }
  const [address, verb, ...more] = rest;
  const target = unix ? `unix:${address}` : address;
  const command = verb === 'list' || verb === 'describe' ? [verb, ...more] : ['call', verb, ...(data === undefined ? [] : ['--data', data])];
  const argv = [CLIENT, ...flags, target, ...command];
  // The pyenv environment must not leak into Debian's python.
  const env = { ...process.env };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  return new Promise((resolve) => {
    execFile(PYTHON, argv, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ command: `${PYTHON} ${argv.join(' ')}`, code, stdout, stderr });
    });
  });
}

/** Asserts success and returns stdout; on failure the message shows what ran and what it said. */
function ok(r: Run): string {
  assert.equal(r.code, 0, `${r.command}\nexited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Asserts the call failed with `status` (and exit 64 + code); returns the details line. */
function refused(r: Run, status: keyof typeof EXIT): string {
  assert.equal(r.code, EXIT[status], `${r.command}\nexpected ${status} (exit ${EXIT[status]}), exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^${status}: `), r.stderr);
  return r.stderr;
}

/** What grpc-core says when it, the client, rejects the server's certificate. */
const CLIENT_REJECTS_SERVER = /Peer name .* is not in peer certificate|certificate verify failed/;

describe('grpc-core (python3-grpcio) runs the README grpcurl lines against real processes', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let master = '';
  /** The follower's gate API socket as grpcurl -unix takes it: a path. */
  let gateSock = '';
  /** The README's T and G: an operator TLS directory, and grpcurl's TLS flags with the master's name. */
  let T = '';
  let G: string[] = [];

  before(async function () {
    const missing = missingPackages();
    if (missing.length || !fs.existsSync(PYTHON)) {
      throw new Error(`this test needs Debian's python3 with grpc-core: missing Debian package(s) ${missing.join(', ') || 'python3'} `
        + `(apt-get install -y ${APT_PACKAGES.join(' ')}; test/setup.sh installs them)`);
    }
    T = tlsDir('operator', 'test');
    G = ['-cacert', `${T}/ca.pem`, '-cert', `${T}/cert.pem`, '-key', `${T}/key.pem`, '-authority', 'master.nfsha'];
    cluster = await new Cluster({ followers: 2, hosts: { 'esx-9': '127.0.9.1' } }).start();
    master = cluster.masterAddress;
    gateSock = cluster.gateSocket(1).replace(/^unix:/, '');
  });

  after(async () => {
    await cluster?.stop();
  });

  /** What each README grpcurl line must print (keyed by the line as printed). */
  const EXPECT: Record<string, (stdout: string) => void | Promise<void>> = {
    'grpcurl $G 10.20.0.21:7410 list': (out) => {
      const services = out.trim().split('\n');
      for (const s of ['nfsha.v1.SessionMaster', 'nfsha.v1.Membership', 'nfsha.v1.Deployer', 'grpc.health.v1.Health']) assert.ok(services.includes(s), `${s} not in ${JSON.stringify(services)}`);
      assert.ok(services.some((s) => /^grpc\.reflection\.v1(alpha)?\.ServerReflection$/.test(s)), `no grpc.reflection service in ${JSON.stringify(services)}`);
    },
    'grpcurl $G 10.20.0.21:7410 describe nfsha.v1.SessionMaster': (text) => {
      assert.match(text, /^nfsha\.v1\.SessionMaster is a service:\nservice SessionMaster \{\n/);
      for (const rpc of [
        'rpc Session ( stream .nfsha.v1.FollowerMessage ) returns ( stream .nfsha.v1.MasterMessage );',
        'rpc Login ( .nfsha.v1.LoginRequest ) returns ( .nfsha.v1.LoginReply );',
        'rpc Logout ( .nfsha.v1.LogoutRequest ) returns ( .nfsha.v1.LogoutReply );',
        'rpc ClusterStatus ( .nfsha.v1.ClusterStatusRequest ) returns ( .nfsha.v1.ClusterStatusReply );',
      ]) assert.ok(text.includes(`\n  ${rpc}\n`), `missing "${rpc}" in:\n${text}`);
    },
    'grpcurl $G 10.20.0.21:7410 nfsha.v1.SessionMaster/ClusterStatus': async (out) => {
      const status = JSON.parse(out);
      assert.equal(status.leader, true);
      assert.equal(status.leaderAddress, master);
      assert.ok(status.leaderId, 'leaderId set');
      const sessions = status.sessions.map((s: { serverId: string; state: string; connected: boolean }) => [s.serverId, s.state, s.connected]).sort();
      assert.deepEqual(sessions, [['scvm-1', 'live', true], ['scvm-2', 'live', true]]);
      // The same sessions grpc-js sees.
      const viaNode = (await cluster.status()).sessions.map((s) => s.sessionId).sort();
      assert.deepEqual(status.sessions.map((s: { sessionId: string }) => s.sessionId).sort(), viaNode);
      assert.deepEqual(status.hosts.map((h: { hostId: string; storageIp: string }) => [h.hostId, h.storageIp]), [['esx-9', '127.0.9.1']]);
    },
    'grpcurl $G 10.20.0.21:7410 nfsha.v1.Membership/ListMembers': (out) => {
      const list = JSON.parse(out);
      assert.deepEqual(list.members.map((m: { serverId: string; hostId: string; storageIp: string }) => [m.serverId, m.hostId, m.storageIp]),
        [['scvm-1', 'esx-1', '127.0.2.1'], ['scvm-2', 'esx-2', '127.0.2.2']]);
    },
    'grpcurl $G -d \'{"service":"nfsha.v1.SessionMaster"}\' 10.20.0.21:7410 grpc.health.v1.Health/Check': (out) => {
      assert.deepEqual(JSON.parse(out), { status: 'SERVING' });
    },
    'grpcurl -cacert $T/ca.pem -cert $T/cert.pem -key $T/key.pem -authority follower.nfsha -unix /run/nfsha/gate.sock nfsha.v1.Gate/Status': (out) => {
      const s = JSON.parse(out);
      assert.equal(s.serverId, 'scvm-1');
      assert.equal(s.hostId, 'esx-1');
      assert.equal(s.lease, 'live');
      assert.ok(s.sessionId, 'a session id');
      assert.equal(s.master, master);
      assert.deepEqual(s.nfsLayers.map((l: { name: string }) => l.name), ['gate-1'], 'the gate watching');
    },
  };

  /** The README's grpcurl lines, with its addresses replaced by the test cluster's. */
  const lines = readmeBlockOf('Diagnosing with grpcurl and curl', 'grpcurl');

  function readmeLine(line: string): Promise<Run> {
    const vars = readmeVariables(lines, { T });
    const words = shellWords(withoutComment(line), vars).map((w) => (w === '10.20.0.21:7410' ? master : w === '/run/nfsha/gate.sock' ? gateSock : w));
    assert.equal(words[0], 'grpcurl');
    return grpcurl(...words.slice(1));
  }

  it('has a check for every grpcurl line of the README, and every check is a README line', () => {
    const printed = lines.filter((l) => l.startsWith('grpcurl ')).map(withoutComment);
    assert.deepEqual(printed.filter((l) => !EXPECT[l]), [], 'README grpcurl lines without a check here');
    assert.deepEqual(Object.keys(EXPECT).filter((l) => !printed.includes(l)), [], 'checks for lines the README no longer prints');
  });

  for (const line of Object.keys(EXPECT)) {
    it(`runs the README line: ${line}`, async () => {
      await EXPECT[line](ok(await readmeLine(line)));
    });
  }

  it('fails the TLS handshake of a caller without a client certificate (UNAVAILABLE: the server refuses it)', async () => {
    // grpcurl -cacert $T/ca.pem -authority master.nfsha 10.20.0.21:7410 nfsha.v1.SessionMaster/ClusterStatus
    const details = refused(await grpcurl('-cacert', `${T}/ca.pem`, '-authority', 'master.nfsha', master, 'nfsha.v1.SessionMaster/ClusterStatus'), 'UNAVAILABLE');
    assert.doesNotMatch(details, CLIENT_REJECTS_SERVER, 'the client accepted the server; the server must be the one refusing');
    // Reflection and health are open to any cluster certificate, not to no certificate.
    // grpcurl -cacert $T/ca.pem -authority master.nfsha 10.20.0.21:7410 list
    refused(await grpcurl('-cacert', `${T}/ca.pem`, '-authority', 'master.nfsha', master, 'list'), 'UNAVAILABLE');
  });

  it('refuses ClusterStatus to an agent certificate with PERMISSION_DENIED', async () => {
    // T=<agent esx-1's TLS directory>; grpcurl $G 10.20.0.21:7410 nfsha.v1.SessionMaster/ClusterStatus
    const A = tlsDir('agent', 'esx-1');
    const details = refused(await grpcurl('-cacert', `${A}/ca.pem`, '-cert', `${A}/cert.pem`, '-key', `${A}/key.pem`, '-authority', 'master.nfsha', master, 'nfsha.v1.SessionMaster/ClusterStatus'), 'PERMISSION_DENIED');
    assert.match(details, /agent\/esx-1 may not call \/nfsha\.v1\.SessionMaster\/ClusterStatus/);
  });

  it('refuses a certificate from another CA, and that CA\'s holder cannot verify the master either (UNAVAILABLE)', async () => {
    const F = foreignTlsDir('operator', 'x');
    // The README line with T=<an operator directory of another cluster>: its CA does not vouch for our master.
    // grpcurl $G 10.20.0.21:7410 nfsha.v1.SessionMaster/ClusterStatus
    const own = refused(await grpcurl('-cacert', `${F}/ca.pem`, '-cert', `${F}/cert.pem`, '-key', `${F}/key.pem`, '-authority', 'master.nfsha', master, 'nfsha.v1.SessionMaster/ClusterStatus'), 'UNAVAILABLE');
    assert.match(own, /certificate verify failed/);
    // Trusting our CA does not help: the master refuses the foreign client certificate.
    // grpcurl -cacert $T/ca.pem -cert $F/cert.pem -key $F/key.pem -authority master.nfsha 10.20.0.21:7410 nfsha.v1.SessionMaster/ClusterStatus
    const server = refused(await grpcurl('-cacert', `${T}/ca.pem`, '-cert', `${F}/cert.pem`, '-key', `${F}/key.pem`, '-authority', 'master.nfsha', master, 'nfsha.v1.SessionMaster/ClusterStatus'), 'UNAVAILABLE');
    assert.doesNotMatch(server, CLIENT_REJECTS_SERVER, 'the client accepted the server; the server must be the one refusing');
  });

  it('rejects a server whose certificate does not carry the -authority name (client-side name check)', async () => {
    // grpcurl -cacert $T/ca.pem -cert $T/cert.pem -key $T/key.pem -authority gate.nfsha 10.20.0.21:7410 list
    const wrong = refused(await grpcurl('-cacert', `${T}/ca.pem`, '-cert', `${T}/cert.pem`, '-key', `${T}/key.pem`, '-authority', 'gate.nfsha', master, 'list'), 'UNAVAILABLE');
    assert.match(wrong, /Peer name gate\.nfsha is not in peer certificate/);
    // A follower is not master.nfsha.
    // grpcurl $G -unix /run/nfsha/gate.sock list
    const follower = refused(await grpcurl(...G, '-unix', gateSock, 'list'), 'UNAVAILABLE');
    assert.match(follower, /Peer name master\.nfsha is not in peer certificate/);
  });
});
