import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '../support/cluster';
import { healthCheck, listServices } from '../support/grpc-raw';
import { tlsArgs } from '../support/pki';
import { scratchDir } from '../support/scratch';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.join(ROOT, 'out');
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const BUNDLE = path.join(OUT, `nfsha-agent-${version}`);

/** Lists every file under `dir`, relative to it. */
function tree(dir: string): string[] {
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? [path.relative(dir, path.join(d, e.name)) + '/', ...walk(path.join(d, e.name))] : [path.relative(dir, path.join(d, e.name))]));
  return walk(dir).sort();
}

/** Members of an ar archive (the .vib container). */
function arMembers(file: string): Map<string, Buffer> {
  const buf = fs.readFileSync(file);
  assert.equal(buf.subarray(0, 8).toString(), '!<arch>\n');
  const members = new Map<string, Buffer>();
  for (let at = 8; at < buf.length;) {
    const header = buf.subarray(at, at + 60).toString('latin1');
    const name = header.slice(0, 16).trim().replace(/\/$/, '');
    const size = Number(header.slice(48, 58).trim());
    members.set(name, buf.subarray(at + 60, at + 60 + size));
    at += 60 + size + (size % 2);
  }
  return members;
}

/**
 * Copies executable out/<name> into an empty directory and checks, run from
 * there with nothing but /usr/bin and /bin, that it knows its version and can
 * send ICMP with the raw-socket addon from its own assets.
 */
async function runsAlone(name: string): Promise<{ exe: string; dir: string; env: NodeJS.ProcessEnv }> {
  const dir = scratchDir(`${name}-exe-`);
  const exe = path.join(dir, name);
  fs.copyFileSync(path.join(OUT, name), exe);
  fs.chmodSync(exe, 0o755);
  const env = { PATH: '/usr/bin:/bin', TMPDIR: dir };
  assert.equal((await run(exe, ['--version'], { cwd: dir, env })).stdout.trim(), version);
  assert.match((await run(exe, ['probe', '127.0.0.1'], { cwd: dir, env })).stdout, /127\.0\.0\.1\tup/, 'the ICMP raw socket (raw.node) works');
  return { exe, dir, env };
}

describe('single executable and ESXi bundle (npm run build:bundle)', function () {
  this.timeout(180_000);

  before(() => {
    execFileSync(process.execPath, [path.join(ROOT, 'build/build-agent.mjs')], { stdio: 'ignore' });
    execFileSync(process.execPath, [path.join(ROOT, 'build/build-bundle.mjs')], { stdio: 'ignore' });
  });

  it('the executable runs from a directory with no project files: version, protos (reflection, health), the raw-socket addon', async () => {
    const { exe, dir, env } = await runsAlone('nfsha');
    const port = await freePort();
    const master = spawn(exe, ['master', '--listen', `127.0.0.1:${port}`, ...tlsArgs('master', 'exe')], { cwd: dir, env, stdio: 'ignore' });
    try {
      const services = await waitFor('the executable\'s master answers', () => listServices(`127.0.0.1:${port}`).catch(() => undefined), 15_000, 100);
      assert.deepEqual(services, ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'nfsha.v1.Deployer', 'nfsha.v1.Membership', 'nfsha.v1.SessionMaster']);
      assert.equal(await healthCheck(`127.0.0.1:${port}`, 'nfsha.v1.SessionMaster'), 'SERVING');
    } finally {
      master.kill('SIGKILL');
    }
    const size = fs.statSync(exe).size;
    assert.ok(size > 10 * 2 ** 20, `executable is ${size} bytes`);
  });

  it('the ESXi agent executable runs from a directory with no project files and holds the agent alone: no master, deploy or SSH', async () => {
    const { exe, dir, env } = await runsAlone('nfsha-agent');
    const help = (await run(exe, ['--help'], { cwd: dir, env })).stdout;
    assert.match(help, /^\s+agent \[options\]/m);
    for (const other of ['master', 'follower', 'gate', 'deploy', 'init', 'status']) assert.doesNotMatch(help, new RegExp(`^\\s+${other}\\b`, 'm'), `no ${other} command`);
    const bundled = fs.readFileSync(path.join(OUT, 'nfsha-agent.cjs'), 'utf8');
    for (const absent of ['node_modules/node-forge/', 'node_modules/ssh2/', 'node_modules/etcd3/', 'dist/master/', 'dist/cli/deploy-command.js', 'node_modules/pino/', 'node_modules/zod/', 'dist/common/log.js', 'dist/common/config.js']) {
      assert.ok(!bundled.includes(`// ${absent}`), `${absent} is not in the agent executable`);
    }
    // Lean agent: zod/mini's tree-shaken functions (not all of zod) and the light logger (not pino).
    assert.ok(bundled.includes('// dist/common/light-log.js') && bundled.includes('// dist/common/config-mini.js'), 'the light logger and the zod/mini schema parts are in');
    assert.ok(bundled.length < 1.6 * 2 ** 20, `the agent bundle is ${bundled.length} bytes`);
    // Run as the init script runs it (its V8 flags, --jitless among them): the schema's checks speak English, as zod's do.
    const initFlags = /^NFSHA_NODE_OPTIONS="([^"]*)"/m.exec(fs.readFileSync(path.join(ROOT, 'build/esxi/nfsha-agent.init'), 'utf8'))![1];
    const tooFast = await run(exe, ['agent', '--host-id', 'esx-1', '--local-server-id', 'scvm-1', '--probe-interval-ms', '20', '--insecure'], { cwd: dir, env: { ...env, NODE_OPTIONS: initFlags } })
      .then(() => undefined, (e) => e as { code: number; stderr: string });
    assert.ok(tooFast, 'a probe interval under 50 ms must be refused');
    assert.equal(tooFast.code, 2);
    assert.match(tooFast.stderr, /invalid agent setting probeIntervalMs: Too small: expected number to be >=50/);
    assert.match((await run(exe, ['agent', '--help'], { cwd: dir, env: { ...env, NODE_OPTIONS: initFlags } })).stdout, /--local-probe-interval-ms <ms>\s+probe the local SCVM every this many ms[^]*?\(default: 100\)/);
    const ssh = await run(exe, ['agent', '--host-id', 'esx-1', '--local-server-id', 'scvm-1', '--backend', 'esxcli-ssh', '--ssh-host', '127.0.0.1', '--ssh-key', '/dev/null', '--insecure'], { cwd: dir, env })
      .then(() => undefined, (e) => e as { code: number; stderr: string });
    assert.ok(ssh, 'the esxcli-ssh backend must fail');
    assert.match(ssh.stderr, /esxcli-ssh backend is not in the ESXi agent executable/);
  });

  it('the bundle descriptor names the payload with its true size and sha-256, in the directory and in the .vib', () => {
    const descriptor = fs.readFileSync(path.join(BUNDLE, 'descriptor.xml'), 'utf8');
    const payload = fs.readFileSync(path.join(BUNDLE, 'payload.tgz'));
    const sha = createHash('sha256').update(payload).digest('hex');
    assert.match(descriptor, new RegExp(`<payload name="payload" type="tgz" size="${payload.length}"><checksum checksum-type="sha-256">${sha}</checksum>`));
    for (const tag of ['<acceptance-level>community</acceptance-level>', '<live-install-allowed>true</live-install-allowed>', '<live-remove-allowed>true</live-remove-allowed>', '<vendor>nfsha</vendor>', `<version>${version}-1</version>`]) {
      assert.ok(descriptor.includes(tag), `descriptor has ${tag}`);
    }
    const vib = arMembers(path.join(OUT, `nfsha-agent-${version}-1.vib`));
    assert.deepEqual([...vib.keys()], ['descriptor.xml', 'sig.pkcs7', 'payload']);
    assert.equal(vib.get('descriptor.xml')!.toString(), descriptor);
    assert.ok(vib.get('payload')!.equals(payload));
    const listing = execFileSync('tar', ['-tzf', path.join(BUNDLE, 'payload.tgz')]).toString();
    for (const f of ['opt/nfsha/bin/nfsha-agent', 'etc/init.d/nfsha-agent', 'etc/vmware/firewall/nfsha.xml', 'opt/nfsha/etc/agent.json.template']) assert.ok(listing.includes(f), `payload has ${f}`);
  });

  const shells: Array<[string, string[]]> = [['sh', ['sh']]];
  try { execFileSync('busybox', ['true']); shells.push(['busybox sh', ['busybox', 'sh']]); } catch { /* busybox not installed: test/setup.sh installs it */ }
  for (const [label, shell] of shells) {
    it(`install.sh installs, upgrades and removes cleanly in a scratch root (${label}; ESXi's watchdog.sh faked)`, async () => {
      const scratch = scratchDir('nfsha-root-');
      // The directories an ESXi host already has.
      for (const d of ['sbin', 'opt', 'etc/init.d', 'etc/vmware/firewall']) fs.mkdirSync(path.join(scratch, d), { recursive: true });
      // A fake of ESXi's watchdog.sh (it cannot run here): records how it was asked to run the agent.
      fs.writeFileSync(path.join(scratch, 'sbin/watchdog.sh'), `#!/bin/sh\necho "NODE_OPTIONS=$NODE_OPTIONS $*" >> "${scratch}/watchdog.calls"\n`, { mode: 0o755 });
      const before = tree(scratch);
      const sh = (...args: string[]) => run(shell[0], [...shell.slice(1), path.join(BUNDLE, 'install.sh'), ...args, '--root', scratch], { env: { ...process.env, NFSHA_ROOT: scratch } });

      await sh('verify');
      await sh('install');
      for (const f of ['opt/nfsha/bin/nfsha-agent', 'etc/init.d/nfsha-agent', 'etc/vmware/firewall/nfsha.xml', 'opt/nfsha/VERSION']) assert.ok(fs.existsSync(path.join(scratch, f)), `${f} installed`);
      assert.equal(fs.readFileSync(path.join(scratch, 'opt/nfsha/VERSION'), 'utf8').trim(), `${version}-1`);
      assert.ok(!fs.existsSync(path.join(scratch, 'watchdog.calls')), 'not started without a config');

      // Configure, then upgrade in place: the config stays, the agent is restarted under the watchdog.
      fs.copyFileSync(path.join(scratch, 'opt/nfsha/etc/agent.json.template'), path.join(scratch, 'opt/nfsha/etc/agent.json'));
      fs.mkdirSync(path.join(scratch, 'opt/nfsha/etc/tls'));
      fs.writeFileSync(path.join(scratch, 'opt/nfsha/etc/tls/key.pem'), 'as nfsha deploy writes it');
      await sh('install');
      assert.ok(fs.existsSync(path.join(scratch, 'opt/nfsha/etc/agent.json')), 'config kept across upgrade');
      const calls = fs.readFileSync(path.join(scratch, 'watchdog.calls'), 'utf8');
      assert.match(calls, /-k nfsha-agent/);
      assert.match(calls, /^NODE_OPTIONS=--max-semi-space-size=1 --max-old-space-size=48 --v8-pool-size=1 --jitless -s nfsha-agent .*opt\/nfsha\/bin\/nfsha-agent agent --config .*opt\/nfsha\/etc\/agent\.json/m);

      await sh('remove');
      fs.rmSync(path.join(scratch, 'watchdog.calls'), { force: true });
      assert.deepEqual(tree(scratch), before, 'remove leaves the host as it was');
    });
  }

  it('install.sh refuses a payload that does not match its descriptor, and changes nothing', async () => {
    const copy = scratchDir('nfsha-bad-');
    for (const f of fs.readdirSync(BUNDLE)) fs.copyFileSync(path.join(BUNDLE, f), path.join(copy, f));
    fs.appendFileSync(path.join(copy, 'payload.tgz'), 'tampered');
    const scratch = scratchDir('nfsha-root-');
    const r = await run('sh', [path.join(copy, 'install.sh'), 'install', '--root', scratch, '--no-start']).then(() => undefined, (e) => e as { code: number; stderr: string });
    assert.ok(r, 'install must fail');
    assert.match(r.stderr, /checksum mismatch/);
    assert.deepEqual(fs.readdirSync(scratch), []);
  });
});
