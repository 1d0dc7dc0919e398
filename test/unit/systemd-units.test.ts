import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI } from '../support/cluster';
import { scratchDir } from '../support/scratch';

const UNITS = path.resolve(__dirname, '..', '..', '..', 'ops', 'systemd');

/** A unit file's `Key=value` lines by key (a key may repeat). */
function directives(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

describe('systemd units shipped in ops/systemd (systemd-analyze verify)', () => {
  const units = fs.readdirSync(UNITS).filter((f) => f.endsWith('.service'));

  before(() => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      throw new Error('systemd-analyze is missing: run test/setup.sh as root (it installs Debian\'s systemd package)');
    }
  });

  it('ships a unit for the master, the follower and the gate', () => {
    assert.deepEqual(units.sort(), ['nfsha-follower.service', 'nfsha-gate.service', 'nfsha-master.service']);
  });

  it('each verifies without a single warning (the executable swapped for a stub, since verify wants it to exist)', () => {
    const dir = scratchDir('nfsha-units-');
    try {
      const stub = path.join(dir, 'nfsha');
      fs.writeFileSync(stub, '#!/bin/sh\n', { mode: 0o755 });
      for (const u of units) fs.writeFileSync(path.join(dir, u), fs.readFileSync(path.join(UNITS, u), 'utf8').replaceAll('/usr/local/bin/nfsha', stub));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units.map((u) => path.join(dir, u))], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', 'systemd-analyze warned');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs each with the hardening the README promises, and only the capabilities it needs', () => {
    const caps = { 'nfsha-follower.service': 'CAP_NET_ADMIN CAP_KILL', 'nfsha-gate.service': 'CAP_KILL CAP_NET_BIND_SERVICE', 'nfsha-master.service': '' } as Record<string, string>;
    for (const u of units) {
      const d = directives(path.join(UNITS, u));
      for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['Restart', 'on-failure'], ['KillSignal', 'SIGTERM']]) {
        assert.deepEqual(d.get(key), [value], `${u}: ${key}`);
      }
      assert.deepEqual(d.get('AmbientCapabilities'), [caps[u]], `${u}: AmbientCapabilities`);
      assert.deepEqual(d.get('CapabilityBoundingSet'), [caps[u]], `${u}: CapabilityBoundingSet`);
    }
  });

  it('stops the follower before its gate and the NFS server, so its graceful stop moves the hosts while both still serve', () => {
    const follower = directives(path.join(UNITS, 'nfsha-follower.service'));
    const gate = directives(path.join(UNITS, 'nfsha-gate.service'));
    assert.match(follower.get('After')![0], /\bnfs-ganesha\.service\b.*\bnfsha-gate\.service\b/);
    assert.match(gate.get('After')![0], /\bnfs-ganesha\.service\b/);
    assert.deepEqual(gate.get('Before'), ['nfsha-follower.service']);
    // Stop runs in reverse start order: the follower's graceful stop outlasts its own limit (20 s) only within systemd's.
    assert.ok(Number(follower.get('TimeoutStopSec')![0]) > 20, 'TimeoutStopSec must exceed --graceful-stop-ms');
  });

  it('starts each with a command the CLI has, configured by a file it reads (--config, or the gate\'s flags from an environment file)', () => {
    for (const u of units) {
      const d = directives(path.join(UNITS, u));
      const [bin, command, ...args] = d.get('ExecStart')![0].split(' ');
      assert.equal(bin, '/usr/local/bin/nfsha');
      const help = execFileSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
      if (args[0] === '--config') {
        assert.match(help, /--config/, `nfsha ${command} has no --config`);
      } else {
        assert.deepEqual(args, ['$GATE_ARGS']);
        assert.deepEqual(d.get('EnvironmentFile'), ['/etc/nfsha/gate.env']);
        assert.match(help, /--follower/);
      }
    }
  });
});
