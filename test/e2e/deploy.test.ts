import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CLI, readPid, waitFor } from '../support/cluster';
import { Lab, mgmtIpOfHost, storageIpOfHost } from '../support/lab';
import { LabSshd } from '../support/lab-sshd';
import { tlsArgs } from '../support/pki';
import { X509Certificate } from 'node:crypto';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const BUNDLE = path.join(ROOT, 'out', `nfsha-agent-${version}`);

describe('nfsha deploy to lab hosts running real sshd (needs root, openssh-server)', function () {
  this.timeout(300_000);
  const lab = new Lab({ hosts: 4, prefix: 'nfsha-dep', agents: false });
  const sshd = new LabSshd(lab);

  before(async () => {
    if (!fs.existsSync(path.join(BUNDLE, 'descriptor.xml'))) {
      execFileSync(process.execPath, [path.join(ROOT, 'build/build-agent.mjs')], { stdio: 'ignore' });
      execFileSync(process.execPath, [path.join(ROOT, 'build/build-bundle.mjs')], { stdio: 'ignore' });
    }
    await lab.up();
    // The operator's one-time credentials work on hosts 1-3; host 4 refuses them.
    sshd.start([1, 2, 3]);
  });
  after(async () => {
    for (let i = 1; i <= 4; i++) {
      const pid = path.join(sshd.installRoot(i), 'sbin', 'nfsha-agent.pid');
      if (fs.existsSync(pid)) try { process.kill(readPid(pid)); } catch { /* gone */ }
    }
    await lab.down();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(lab.dump(), sshd.procs.map((p) => p.log()).join('\n'));
  });

  function inventory(hosts: number[]): string {
    const file = path.join(lab.dir, `inventory-${hosts.join('')}.json`);
    fs.writeFileSync(file, JSON.stringify({
      masters: lab.masterAddress,
      hosts: hosts.map((i) => ({
        hostId: `esx-${i}`, address: mgmtIpOfHost(i), localServerId: `scvm-${i}`, storageIp: storageIpOfHost(i), mgmtIp: mgmtIpOfHost(i),
        installRoot: sshd.installRoot(i), authorizedKeys: sshd.authorizedKeys(i),
      })),
      agent: { backend: 'iproute2', privateInterface: 'priv', probeIntervalMs: 500, holdDownMs: 3000 },
    }));
    return file;
  }

  /** Runs `nfsha deploy` from the master's namespace ("any node"); returns its JSON report and exit code. */
  async function deploy(hosts: number[], viaMaster = false) {
    const r = await run('ip', ['netns', 'exec', lab.ns('m'), process.execPath, CLI, 'deploy', '--inventory', inventory(hosts), '--bundle', BUNDLE,
      '--state-dir', path.join(lab.dir, 'deploy-state'), '--identity', sshd.operatorKey, '--register-timeout-ms', '30000', '--json', ...tlsArgs('operator', 'test'),
      ...(viaMaster ? ['--via-master', lab.masterAddress] : [])])
      .then((x) => ({ ...x, code: 0 }), (e) => e as { stdout: string; stderr: string; code: number });
    return { code: r.code, reports: JSON.parse(r.stdout) as Array<Record<string, unknown>>, stderr: r.stderr };
  }

  it('installs and starts agents that register; a host with wrong credentials is reported and the rest succeed', async () => {
    const { code, reports } = await deploy([1, 2, 3, 4]);
    assert.equal(code, 1, 'a failed host makes the run fail');
    const byHost = new Map(reports.map((r) => [r.hostId as string, r]));
    for (const i of [1, 2, 3]) {
      const r = byHost.get(`esx-${i}`)!;
      assert.equal(r.error, undefined, `esx-${i}: ${r.error}`);
      assert.deepEqual([r.key, r.bundle, r.config, r.agent, r.registered], ['changed', 'changed', 'changed', 'changed', true]);
    }
    assert.match(String(byHost.get('esx-4')!.error), /authentication|ssh/i);
    for (const i of [1, 2, 3]) {
      // Deploy minted each agent's certificate for its own host, from the cluster CA.
      const cert = new X509Certificate(fs.readFileSync(path.join(sshd.installRoot(i), 'opt/nfsha/etc/tls/cert.pem')));
      assert.match(cert.subjectAltName ?? '', new RegExp(`URI:spiffe://nfsha/agent/esx-${i}$`));
      assert.equal((fs.statSync(path.join(sshd.installRoot(i), 'opt/nfsha/etc/tls/key.pem')).mode & 0o777), 0o600);
    }
    const s = await lab.status();
    assert.deepEqual(s.hosts.filter((h) => h.agentConnected).map((h) => h.hostId).sort(), ['esx-1', 'esx-2', 'esx-3']);
  });

  it('running deploy again changes nothing, from the CLI and through the master\'s Deployer API', async () => {
    for (const viaMaster of [false, true]) {
      const { code, reports } = await deploy([1, 2, 3], viaMaster);
      assert.equal(code, 0);
      assert.equal(reports.length, 3);
      for (const r of reports) assert.deepEqual([r.key, r.bundle, r.config, r.agent, r.registered], ['unchanged', 'unchanged', 'unchanged', 'unchanged', true], JSON.stringify(r));
    }
  });

  it('the deployed agents take part in a reroute', async () => {
    await lab.scvmLinks(2, 'down');
    const gw = await lab.waitRerouted(2, 15_000);
    assert.equal(await lab.connect(2), `scvm-${Number(gw.split('.')[3]) - 20}`);
    await lab.scvmLinks(2, 'up');
    await waitFor('host 2 back on its own SCVM', async () => (await lab.route(2)) === 'local', 30_000, 200);
  });
});
