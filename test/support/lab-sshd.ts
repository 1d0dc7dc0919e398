import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Proc } from './cluster';
import { mgmtIpOfHost, type Lab } from './lab';

/**
 * A real sshd (Debian openssh-server) in each lab host namespace, standing in
 * for ESXi's, with a per-host install root (the hosts share one filesystem).
 * `watchdog.sh` in each root is a lab stand-in for ESXi's (which cannot run
 * here): it starts the agent in the background and tracks its pid.
 */
export class LabSshd {
  readonly procs: Proc[] = [];
  readonly operatorKey: string;

  constructor(private readonly lab: Lab) {
    this.operatorKey = path.join(lab.dir, 'operator_ed25519');
  }

  hostDir(i: number): string {
    return path.join(this.lab.dir, 'hosts', `h${i}`);
  }

  installRoot(i: number): string {
    return path.join(this.hostDir(i), 'root');
  }

  authorizedKeys(i: number): string {
    return path.join(this.hostDir(i), 'authorized_keys');
  }

  /** Starts sshd on every host; the operator's key is authorized on `operatorOn` hosts only. */
  start(operatorOn: number[]): void {
    if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('the deploy test needs sshd (Debian package openssh-server; test/setup.sh installs it)');
    fs.mkdirSync('/run/sshd', { recursive: true });
    const hostKey = path.join(this.lab.dir, 'ssh_host_ed25519');
    if (!fs.existsSync(hostKey)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    if (!fs.existsSync(this.operatorKey)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'operator', '-f', this.operatorKey]);
    const operatorPub = fs.readFileSync(`${this.operatorKey}.pub`, 'utf8');
    for (let i = 1; i <= this.lab.opts.hosts; i++) {
      const root = this.installRoot(i);
      for (const d of ['sbin', 'opt', 'etc/init.d', 'etc/vmware/firewall']) fs.mkdirSync(path.join(root, d), { recursive: true });
      fs.writeFileSync(path.join(root, 'sbin/watchdog.sh'), WATCHDOG_STAND_IN, { mode: 0o755 });
      fs.writeFileSync(this.authorizedKeys(i), operatorOn.includes(i) ? operatorPub : '');
      const conf = path.join(this.hostDir(i), 'sshd_config');
      fs.writeFileSync(conf, [
        `ListenAddress ${mgmtIpOfHost(i)}:22`, `HostKey ${hostKey}`, `PidFile ${path.join(this.hostDir(i), 'sshd.pid')}`,
        `AuthorizedKeysFile ${this.authorizedKeys(i)}`, 'PermitRootLogin yes', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
        'StrictModes no', 'UsePAM no', 'Subsystem sftp internal-sftp', '',
      ].join('\n'));
      this.procs.push(this.lab.spawnCommandIn(this.lab.ns(`h${i}`), `sshd-${i}`, '/usr/sbin/sshd', ['-D', '-e', '-f', conf]));
    }
  }
}

const WATCHDOG_STAND_IN = `#!/bin/sh
# Lab stand-in for ESXi's /sbin/watchdog.sh: -s TAG [-q N -t N] CMD… starts CMD
# detached, -k TAG stops it, -r TAG tells whether it runs.
dir=$(dirname "$0")
case "$1" in
  -s) tag=$2; shift 2
      while [ "\${1#-}" != "$1" ]; do shift 2; done
      setsid nohup "$@" >> "$dir/$tag.log" 2>&1 < /dev/null &
      echo $! > "$dir/$tag.pid" ;;
  -k) [ -f "$dir/$2.pid" ] && kill "$(cat "$dir/$2.pid")" 2>/dev/null; rm -f "$dir/$2.pid" ;;
  -r) [ -f "$dir/$2.pid" ] && kill -0 "$(cat "$dir/$2.pid")" 2>/dev/null ;;
esac
`;
