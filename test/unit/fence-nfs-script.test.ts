import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FENCE_NFS, waitFor } from '../support/cluster';

/**
 * A parent that forks a child which exits at once, so the child stays a zombie
 * until the parent reaps it, which it does when the file REAP appears: the NFS
 * server's supervisor loop, with the moment it reaps under the test's control.
 */
const ZOMBIE_PARENT = `
import os, sys, time
pidfile, reap = sys.argv[1], sys.argv[2]
pid = os.fork()
if pid == 0:
    os._exit(0)
open(pidfile, 'w').write(str(pid))
while not os.path.exists(reap):
    time.sleep(0.005)
os.waitpid(pid, 0)
time.sleep(30)
`;
import { scratchDir } from '../support/scratch';

/**
 * Tools on PATH that, from their third use on (the pid file read, one look
 * at the process, then the next), first let the parent reap the
 * zombie and wait until it is gone: the supervisor reaping the server between
 * two looks the fence script takes at it, as a CI run once had it (the fence
 * failed with "process … still running" 50 ms after it started).
 */
function reapingShims(dir: string): string {
  const shims = path.join(dir, 'bin');
  fs.mkdirSync(shims);
  for (const tool of ['awk', 'cat', 'grep', 'sed', 'ps']) {
    const real = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (!real) continue;
    fs.writeFileSync(path.join(shims, tool), `#!/bin/bash
n=$(( $(/bin/cat "${dir}/uses" 2>/dev/null || echo 0) + 1 )); echo $n > "${dir}/uses"
if [ $n -ge 3 ]; then
  : > "${dir}/reap"
  pid=$(/bin/cat "${dir}/pid")
  while [ -e /proc/$pid ]; do sleep 0.005; done
fi
exec ${real} "$@"
`, { mode: 0o755 });
  }
  return shims;
}

describe('lab NFS fence command (test/lab/fence-nfs.sh)', function () {
  this.timeout(20_000);
  let dir: string;
  let parent: ChildProcess | undefined;

  beforeEach(() => { dir = scratchDir('nfsha-fence-'); });
  afterEach(() => {
    parent?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kills a stopped server and returns only once it is gone, logging the fence', async () => {
    const server = spawn('sleep', ['30']);
    await new Promise((r) => server.once('spawn', r));
    server.kill('SIGSTOP');
    fs.writeFileSync(path.join(dir, 'pid'), String(server.pid));
    const exited = new Promise((r) => server.once('exit', (_code, sig) => r(sig)));
    const run = spawnSync(FENCE_NFS, [path.join(dir, 'pid'), path.join(dir, 'log'), 'gate-1'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(await exited, 'SIGKILL');
    const [entry] = fs.readFileSync(path.join(dir, 'log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(entry.label, 'gate-1');
    assert.equal(entry.pid, String(server.pid));
    assert.ok(entry.t >= entry.started);
  });

  it('kills the pid on the first line of a pid file rewritten in place over a longer pid, and logs valid JSON', async () => {
    const server = spawn('sleep', ['30']);
    await new Promise((r) => server.once('spawn', r));
    const exited = new Promise((r) => server.once('exit', (_code, sig) => r(sig)));
    // What "1234567\n" overwritten in place by the new pid leaves behind.
    fs.writeFileSync(path.join(dir, 'pid'), `${server.pid}\n${'9'.repeat(3)}\n`);
    try {
      const run = spawnSync(FENCE_NFS, [path.join(dir, 'pid'), path.join(dir, 'log'), 'gate-1'], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      // The fence returns once the process is gone: its exit event is a moment away at most.
      const outcome = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 2 s after the fence returned'), 2000))]);
      assert.equal(outcome, 'SIGKILL', 'the server was not killed: the fence read the pid file as no pid and called it gone');
      assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'log'), 'utf8')).pid, String(server.pid));
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('fails, killing nothing, when the pid file holds something else than a pid', () => {
    fs.writeFileSync(path.join(dir, 'pid'), 'ganesha\n');
    const run = spawnSync(FENCE_NFS, [path.join(dir, 'pid'), path.join(dir, 'log'), 'gate-1'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /does not hold a pid: ganesha/);
    assert.equal(fs.existsSync(path.join(dir, 'log')), false, 'a failed fence was logged as a fence');
  });

  it('counts a server its supervisor reaps between two looks as fenced, not as "still running"', async () => {
    parent = spawn('python3', ['-c', ZOMBIE_PARENT, path.join(dir, 'pid'), path.join(dir, 'reap')], { stdio: 'ignore' });
    await waitFor('the zombie child', () => fs.existsSync(path.join(dir, 'pid')) && fs.readFileSync(path.join(dir, 'pid'), 'utf8') !== '');
    const shims = reapingShims(dir);
    const run = spawnSync(FENCE_NFS, [path.join(dir, 'pid'), path.join(dir, 'log'), 'gate-1'], {
      encoding: 'utf8', env: { ...process.env, PATH: `${shims}:${process.env.PATH}` },
    });
    assert.equal(run.status, 0, `fence-nfs.sh failed: ${run.stderr}`);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'log'), 'utf8')).pid, fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
  });
});
