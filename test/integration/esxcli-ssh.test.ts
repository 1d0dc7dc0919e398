import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOCAL } from '../../agent/decision';
import { EsxcliBackend } from '../../agent/routes/esxcli';
import { sshRunner } from '../../agent/routes/ssh-runner';
import { SshSession } from '../../common/ssh';
import { freePort, waitFor } from '../support/cluster';
import { scratchDir } from '../support/scratch';

/**
 * A fake `esxcli` (ESXi cannot run here) that answers `network ip route ipv4
 * list|add|remove` with the output format recorded from ESXi 8, keeping its
 * route table in a file.
 */
const FAKE_ESXCLI = `#!/bin/sh
table="$(dirname "$0")/routes"
[ -f "$table" ] || printf 'default       0.0.0.0          10.20.0.1   vmk0       MANUAL\\n' > "$table"
case "$5" in
  list) printf 'Network       Netmask          Gateway     Interface  Source\\n------------  ---------------  ----------  ---------  ------\\n'; cat "$table" ;;
  add) grep -q '^192.168.33.2 ' "$table" && { echo 'Unable to add route: already exists' >&2; exit 1; }
       printf '192.168.33.2  255.255.255.255  %s  vmk2       MANUAL\\n' "$7" >> "$table" ;;
  remove) grep -v "^192.168.33.2 .* $7 " "$table" > "$table.new"; mv "$table.new" "$table" ;;
  *) echo "fake esxcli: unexpected $*" >&2; exit 2 ;;
esac
`;

describe('esxcli-ssh route backend: esxcli run over SSH against a real sshd (fake esxcli; needs root, openssh-server)', function () {
  this.timeout(30_000);
  let sshd: ChildProcess;
  let dir: string;
  let port: number;

  before(async () => {
    if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('needs sshd (Debian package openssh-server; test/setup.sh installs it)');
    dir = scratchDir('nfsha-sshd-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'key')]);
    fs.copyFileSync(path.join(dir, 'key.pub'), path.join(dir, 'authorized_keys'));
    fs.writeFileSync(path.join(dir, 'esxcli'), FAKE_ESXCLI, { mode: 0o755 });
    port = await freePort();
    fs.writeFileSync(path.join(dir, 'sshd_config'), [`ListenAddress 127.0.0.1:${port}`, `HostKey ${dir}/host`, `PidFile ${dir}/pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`, 'PermitRootLogin yes', 'PasswordAuthentication no', 'StrictModes no', 'UsePAM no', ''].join('\n'));
    fs.mkdirSync('/run/sshd', { recursive: true });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: 'ignore' });
    await waitFor('sshd listening', () => SshSession.connect({ host: '127.0.0.1', port, user: 'root' }, { privateKey: fs.readFileSync(path.join(dir, 'key')) }).then((s) => { s.close(); return true; }), 10_000, 100);
  });

  after(() => sshd?.kill('SIGKILL'));

  it('reads, sets, switches and removes the host route through esxcli over SSH', async () => {
    const runner = sshRunner(() => SshSession.connect({ host: '127.0.0.1', port, user: 'root' }, { privateKey: fs.readFileSync(path.join(dir, 'key')) }));
    const backend = new EsxcliBackend(runner, path.join(dir, 'esxcli'));
    try {
    assert.deepEqual(await backend.read(), LOCAL);
    await backend.apply({ kind: 'remote', gateway: '10.10.0.21' });
    assert.deepEqual(await backend.read(), { kind: 'remote', gateway: '10.10.0.21' });
    await backend.apply({ kind: 'remote', gateway: '10.20.0.23' });
    assert.deepEqual(await backend.read(), { kind: 'remote', gateway: '10.20.0.23' });
    assert.equal(fs.readFileSync(path.join(dir, 'routes'), 'utf8').split('\n').filter((l) => l.startsWith('192.168.33.2 ')).length, 1);
    await backend.apply(LOCAL);
    assert.deepEqual(await backend.read(), LOCAL);
    } finally {
      runner.close();
    }
  });

  it('reports a host that refuses the key as an error, not a route', async () => {
    const wrong = path.join(dir, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrong]);
    const backend = new EsxcliBackend(sshRunner(() => SshSession.connect({ host: '127.0.0.1', port, user: 'root' }, { privateKey: fs.readFileSync(wrong) })), path.join(dir, 'esxcli'));
    await assert.rejects(backend.read(), /authentication/i);
  });
});
