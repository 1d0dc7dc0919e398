import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, freePort, waitFor } from '../support/cluster';
import { scratchDir } from '../support/scratch';

const ROOT = path.resolve(__dirname, '../../..');

/** Processes whose command line names `dir` (every process of one `nfsha dev` cluster does). */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** Runs `cmd` until its stdout matches `ready`; returns the child and its output so far. */
function startUntil(cmd: string, args: string[], ready: RegExp, timeoutMs: number): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')}: no ${ready} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    child.stdout!.on('data', () => {
      if (!ready.test(out)) return;
      clearTimeout(timer);
      resolve({ child, out: () => out });
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${sig ?? code}) before ${ready}:\n${out}`));
    });
  });
}

describe('nfsha dev / npm start: the demo cluster on loopback', function () {
  this.timeout(180_000);
  const dirs: string[] = [];
  const newDir = () => {
    const d = scratchDir('nfsha-devtest-');
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) {
      for (const pid of processesOf(d)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('moves a host by killing its follower (lease waited out) and back (revoke, drain), and shows IO resume both times', async () => {
    const dir = newDir();
    const port = await freePort();
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => execFile(process.execPath, [CLI, 'dev', '--once', '--port', String(port), '--dir', dir],
      { timeout: 150_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve({ stdout }))));
    // Act 1: the follower dies; its gate drops the host, the master waits the silent holder out, then grants.
    assert.match(stdout, /Act 1: the Access Server serving esx-1 fails \(kill -9 of follower scvm-1\)/);
    assert.match(stdout, /master +waits out scvm-1's lease: \d+ ms/);
    assert.match(stdout, /master +grant host:esx-1 → scvm-2, fencing token \S+ \(taken from 1 holder\)/);
    // Act 2: back to scvm-1 while scvm-2 has calls in flight: revoke, drain, ack, grant.
    // At least one call is in flight (the act keeps the connection busy); "1 call" is singular.
    assert.match(stdout, /gate-2 +revoked host:esx-1: cut off, [1-9]\d* calls? in flight to drain before the ack/);
    assert.match(stdout, /gate-2 +drained [1-9]\d* calls? of host:esx-1 in \d+ ms: acks the revoke/);
    assert.match(stdout, /master +grant host:esx-1 → scvm-1/);
    const act1 = /Act 1: .*: IO resumed after (\d+) ms; old holder scvm-1 silent: its lease waited out \((\d+) ms\)/.exec(stdout);
    const act2 = /Act 2: .*: IO resumed after (\d+) ms; old holder scvm-2 revoked and acked in \d+ ms, (\d+) calls drained first/.exec(stdout);
    assert.ok(act1 && act2, stdout);
    // The wait-out is the pause of act 1; a cooperative holder makes act 2's pause far shorter.
    assert.ok(Number(act1[1]) >= Number(act1[2]), stdout);
    assert.ok(Number(act2[1]) < Number(act1[2]), stdout);
    assert.match(stdout, /sessions 3 live \/ 3/);
    for (const s of ['scvm-1', 'scvm-2', 'scvm-3']) assert.match(stdout, new RegExp(`${s}\\s+\\S+\\s+live`));
    assert.deepEqual(processesOf(dir), [], 'no process of the cluster outlives --once');
  });

  it('npm start (the README command): SIGTERM to npm\'s own pid stops nfsha dev and every process it started', async () => {
    const dir = newDir();
    const port = await freePort();
    const { child, out } = await startUntil('npm', ['start', '--', '--quiet', '--port', String(port), '--dir', dir], /Act 2: .*IO resumed/, 170_000);
    const before = processesOf(dir);
    // master, 3 followers, 3 gates and nfsha dev itself.
    assert.ok(before.length >= 8, `${before.length} processes: ${out()}`);
    child.kill('SIGTERM');
    await waitFor('end of every process of the cluster', () => processesOf(dir).length === 0, 20_000, 100)
      .catch((err: Error) => assert.fail(`${err.message}; still running: ${processesOf(dir).map((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')).join('\n')}`));
  });

  it('SIGKILL of nfsha dev itself leaves no process behind: each child notices its supervisor is gone', async () => {
    const dir = newDir();
    const port = await freePort();
    const { child } = await startUntil(process.execPath, [CLI, 'dev', '--quiet', '--port', String(port), '--dir', dir], /Act 2: .*IO resumed/, 150_000);
    assert.ok(processesOf(dir).length >= 7);
    child.kill('SIGKILL');
    await waitFor('end of every process of the cluster', () => processesOf(dir).length === 0, 20_000, 100);
  });

  it('refuses --followers 1 with one clear line: a host needs another Access Server to move to', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => execFile(process.execPath, [CLI, 'dev', '--once', '--followers', '1', '--dir', newDir()],
      (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr.trim(), /^[^\n]*--followers must be at least 2[^\n]*$/);
  });
});
