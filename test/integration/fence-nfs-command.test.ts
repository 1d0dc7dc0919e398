import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { processAlive } from '../../cli/fence-nfs-command';
import { CLI } from '../support/cluster';
import { scratchDir } from '../support/scratch';

/**
 * A stand-in for `systemctl show -p LoadState -p MainPID -p ControlGroup UNIT`
 * and `systemctl kill --signal=SIGKILL UNIT`, logging each call to DIR/calls:
 * the unit's main pid is in DIR/mainpid (none when missing), its load state
 * in DIR/loadstate. DIR/kill says what `kill` does: "now" (SIGKILL, then
 * return), "late" (return at once, SIGKILL 300 ms later: systemctl kill
 * returning before the process is gone), "nothing" (return 0, kill nothing),
 * "fail" (exit 1, as when systemd cannot be reached).
 */
const STAND_IN_SYSTEMCTL = `#!/bin/bash
dir="$(dirname "$0")/.."
echo "$*" >> "$dir/calls"
pid="$(cat "$dir/mainpid" 2>/dev/null || echo 0)"
case "$1" in
show)
	echo "LoadState=$(cat "$dir/loadstate" 2>/dev/null || echo loaded)"
	echo "MainPID=$pid"
	echo "ControlGroup=/system.slice/nfsha-test-stand-in.service" ;;
kill)
	case "$(cat "$dir/kill")" in
	now) kill -KILL "$pid" ;;
	late) ( sleep 0.3; kill -KILL "$pid" ) >/dev/null 2>&1 & ;;
	nothing) ;;
	fail) echo "Failed to kill unit $3: Connection timed out" >&2; exit 1 ;;
	esac ;;
esac
`;

describe('nfsha fence-nfs (the installed NFS fence command)', function () {
  this.timeout(30_000);
  let dir: string;
  let children: ChildProcess[] = [];

  beforeEach(() => { dir = scratchDir('nfsha-fence-nfs-'); });
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A stand-in NFS server: `sleep 60` in its own process group, optionally SIGSTOPped; resolves with how it ended. */
  async function server(stopped = false): Promise<{ pid: number; ended: Promise<NodeJS.Signals | null> }> {
    const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    children.push(child);
    const ended = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    await new Promise((r) => child.once('spawn', r));
    if (stopped) {
      child.kill('SIGSTOP');
      for (let i = 0; i < 100 && !/\) [tT] /.test(fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
    }
    return { pid: child.pid!, ended };
  }

  /**
   * Runs the built CLI as a follower would and blocks until it returns, so
   * nothing reaps the server meanwhile: right after, its /proc stat must
   * already read gone (a zombie until this process reaps it).
   */
  function fenceNfs(args: string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> & { goneAtReturn: (pid: number) => boolean } {
    const run = spawnSync(process.execPath, [CLI, 'fence-nfs', ...args], { encoding: 'utf8', env, timeout: 20_000 });
    return Object.assign(run, { goneAtReturn: (pid: number) => !processAlive(pid) });
  }

  function standInSystemctl(kill: 'now' | 'late' | 'nothing' | 'fail', mainPid?: number): NodeJS.ProcessEnv {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'systemctl'), STAND_IN_SYSTEMCTL, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'kill'), kill);
    if (mainPid !== undefined) fs.writeFileSync(path.join(dir, 'mainpid'), String(mainPid));
    return { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` };
  }

  const calls = () => fs.readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n');

  it('--pidfile: SIGKILLs the server and returns 0 only once it is gone', async () => {
    const s = await server();
    fs.writeFileSync(path.join(dir, 'pid'), `${s.pid}\n`);
    const run = fenceNfs(['--pidfile', path.join(dir, 'pid'), '--timeout-ms', '5000']);
    const gone = run.goneAtReturn(s.pid);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(gone, `pid ${s.pid} was still alive when fence-nfs returned`);
    assert.match(run.stdout, new RegExp(`^fenced pid file .*: pid ${s.pid} gone \\d+ ms after start\\n$`));
    assert.equal(await s.ended, 'SIGKILL');
  });

  it('--pidfile: a SIGSTOPped server is killed and waited for too', async () => {
    const s = await server(true);
    fs.writeFileSync(path.join(dir, 'pid'), String(s.pid));
    const run = fenceNfs(['--pidfile', path.join(dir, 'pid'), '--timeout-ms', '5000']);
    const gone = run.goneAtReturn(s.pid);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(gone, `pid ${s.pid} was still alive when fence-nfs returned`);
    assert.equal(await s.ended, 'SIGKILL');
  });

  it('--pidfile: a missing pid file is a stopped server (0); one without a pid fails (1)', () => {
    const missing = fenceNfs(['--pidfile', path.join(dir, 'none.pid')]);
    assert.equal(missing.status, 0, missing.stderr);
    assert.match(missing.stdout, /no process was running/);
    fs.writeFileSync(path.join(dir, 'pid'), 'ganesha\n');
    const garbled = fenceNfs(['--pidfile', path.join(dir, 'pid')]);
    assert.equal(garbled.status, 1);
    assert.match(garbled.stderr, /^nfsha: pid file .* does not hold a pid/);
  });

  it('--pid: kills that process and returns once it is gone', async () => {
    const s = await server(true);
    const run = fenceNfs(['--pid', String(s.pid), '--timeout-ms', '5000']);
    const gone = run.goneAtReturn(s.pid);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(gone);
    assert.equal(await s.ended, 'SIGKILL');
  });

  it('refuses anything but exactly one of --unit, --pidfile, --pid, and a bad number (exit 2)', () => {
    for (const args of [[], ['--pid', '12', '--unit', 'x.service'], ['--pid', '1'], ['--pid', 'x'], ['--unit', 'x.service', '--timeout-ms', '-5']]) {
      const run = fenceNfs(args);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^error: /, args.join(' '));
    }
  });

  describe('--unit, with a stand-in systemctl (no systemd here)', () => {
    it('kills the unit and returns only once its main process is gone, though systemctl kill returned before that', async () => {
      const s = await server();
      const env = standInSystemctl('late', s.pid);
      const t0 = Date.now();
      const run = fenceNfs(['--unit', 'nfs-ganesha.service', '--timeout-ms', '5000'], env);
      const gone = run.goneAtReturn(s.pid);
      assert.equal(run.status, 0, run.stderr);
      assert.ok(gone, `pid ${s.pid} was still alive when fence-nfs returned`);
      assert.ok(Date.now() - t0 >= 300, 'it waited for the late SIGKILL');
      assert.deepEqual(calls(), ['show -p LoadState -p MainPID -p ControlGroup nfs-ganesha.service', 'kill --signal=SIGKILL nfs-ganesha.service']);
      assert.match(run.stdout, new RegExp(`^fenced nfs-ganesha.service: pid ${s.pid} gone`));
      assert.equal(await s.ended, 'SIGKILL');
    });

    it('kills a stopped main process through systemctl kill', async () => {
      const s = await server(true);
      const run = fenceNfs(['--unit', 'nfs-ganesha.service', '--timeout-ms', '5000'], standInSystemctl('now', s.pid));
      const gone = run.goneAtReturn(s.pid);
      assert.equal(run.status, 0, run.stderr);
      assert.ok(gone);
      assert.equal(await s.ended, 'SIGKILL');
    });

    it('fails (1) naming the pid still alive at the timeout when the kill did nothing', async () => {
      const s = await server();
      const run = fenceNfs(['--unit', 'nfs-ganesha.service', '--timeout-ms', '1500'], standInSystemctl('nothing', s.pid));
      assert.equal(run.status, 1);
      assert.match(run.stderr, new RegExp(`^nfsha: fence-nfs: nfs-ganesha.service: pid ${s.pid} still alive \\d+ ms after start\\n$`));
      assert.ok(processAlive(s.pid));
    });

    it('kills the noted pids itself when systemctl kill fails, and still returns 0 once they are gone', async () => {
      const s = await server();
      const run = fenceNfs(['--unit', 'nfs-ganesha.service', '--timeout-ms', '5000'], standInSystemctl('fail', s.pid));
      const gone = run.goneAtReturn(s.pid);
      assert.equal(run.status, 0, run.stderr);
      assert.ok(gone);
      assert.equal(await s.ended, 'SIGKILL');
    });

    it('counts a unit with no running process as fenced, and fails a unit that does not exist', () => {
      const env = standInSystemctl('fail');
      const idle = fenceNfs(['--unit', 'nfs-ganesha.service'], env);
      assert.equal(idle.status, 0, idle.stderr);
      assert.match(idle.stdout, /^fenced nfs-ganesha.service: no process was running\n$/);
      fs.writeFileSync(path.join(dir, 'loadstate'), 'not-found');
      const typo = fenceNfs(['--unit', 'nfs-ganesah.service'], env);
      assert.equal(typo.status, 1);
      assert.match(typo.stderr, /^nfsha: unit nfs-ganesah.service not found\n$/);
    });
  });
});
