import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cgroupPids, parsePids, parseProperties, processAlive, statAlive, waitUntilGone, type WaitClock } from '../../cli/fence-nfs-command';
import { scratchDir } from '../support/scratch';

/** A /proc/PID/stat line of a process named `comm` in `state`. */
const stat = (comm: string, state: string) => `4242 (${comm}) ${state} 1 4242 4242 0 -1 4194560 109 0 0 0 0 0 0 0 20 0 1 0 77 8192 1 0\n`;

describe('nfsha fence-nfs: is the process gone (one /proc/PID/stat read, as test/lab/fence-nfs.sh)', () => {
  it('counts a running, sleeping, stopped, traced or disk-waiting process as alive', () => {
    for (const state of ['R', 'S', 'T', 't', 'D', 'I']) assert.equal(statAlive(stat('ganesha.nfsd', state)), true, state);
  });

  it('counts a missing stat (reaped), a zombie (Z) and a dead process (X) as gone', () => {
    assert.equal(statAlive(undefined), false);
    assert.equal(statAlive(stat('ganesha.nfsd', 'Z')), false);
    assert.equal(statAlive(stat('ganesha.nfsd', 'X')), false);
    assert.equal(statAlive(''), false, 'an empty read: the lab script\'s read fails, so gone');
  });

  it('takes the state after the last ") ", so a name with spaces and parentheses cannot fake it', () => {
    assert.equal(statAlive(stat('evil) Z 1', 'S')), true);
    assert.equal(statAlive(stat('a (b) c', 'Z')), false);
  });

  it('counts a text whose state cannot be found as alive (a fence fails rather than passes)', () => {
    assert.equal(statAlive('4242 (ganesha'), true);
  });

  it('reads a real /proc/PID/stat: this process is alive, a pid that cannot exist is gone', () => {
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(2 ** 30), false);
  });

  it('parses cgroup.procs and systemctl show output', () => {
    assert.deepEqual(parsePids('12\n345\n\n0\nx\n'), [12, 345]);
    assert.deepEqual(parsePids('0'), [], 'MainPID=0: no main process');
    const props = parseProperties('MainPID=812\nControlGroup=/system.slice/nfs-ganesha.service\nLoadState=loaded\n');
    assert.equal(props.get('MainPID'), '812');
    assert.equal(props.get('ControlGroup'), '/system.slice/nfs-ganesha.service');
    assert.equal(parseProperties('ControlGroup=\n').get('ControlGroup'), '');
  });

  it('notes every pid in the unit\'s cgroup and those below it, under the first root that has it', () => {
    const dir = scratchDir('nfsha-cg-');
    try {
      const v1 = path.join(dir, 'systemd');
      const unit = path.join(v1, 'system.slice', 'nfs-ganesha.service');
      fs.mkdirSync(path.join(unit, 'sub', 'deeper'), { recursive: true });
      fs.writeFileSync(path.join(unit, 'cgroup.procs'), '100\n101\n');
      fs.writeFileSync(path.join(unit, 'sub', 'cgroup.procs'), '');
      fs.writeFileSync(path.join(unit, 'sub', 'deeper', 'cgroup.procs'), '102\n');
      const roots = [path.join(dir, 'unified'), v1];
      assert.deepEqual(cgroupPids('/system.slice/nfs-ganesha.service', roots).sort(), [100, 101, 102]);
      assert.deepEqual(cgroupPids('/system.slice/other.service', roots), []);
      assert.deepEqual(cgroupPids('', roots), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('nfsha fence-nfs: the wait until every noted process is gone', () => {
  /** A clock that moves only when slept on, and processes that die at set times. */
  function world(deaths: Record<number, number>) {
    let t = 0;
    const looks: Array<[number, number]> = [];
    const sleeps: number[] = [];
    const clock: WaitClock = { now: () => t, sleep: (ms) => { sleeps.push(ms); t += ms; } };
    const alive = (pid: number) => { looks.push([t, pid]); return t < deaths[pid]; };
    return { clock, alive, looks, sleeps, now: () => t };
  }

  it('looks every 10 ms and returns once the last one is gone, not looking again at one already gone', () => {
    const w = world({ 7: 25, 8: 5 });
    assert.deepEqual(waitUntilGone([7, 8], w.alive, w.clock, 900), []);
    assert.equal(w.now(), 30);
    assert.deepEqual(w.sleeps, [10, 10, 10]);
    assert.deepEqual(w.looks, [[0, 7], [0, 8], [10, 7], [10, 8], [20, 7], [30, 7]]);
  });

  it('returns the pids still alive at the deadline, sleeping no further than it', () => {
    const w = world({ 7: Infinity, 8: 15 });
    assert.deepEqual(waitUntilGone([7, 8, 7], w.alive, w.clock, 95), [7]);
    assert.equal(w.now(), 95);
    assert.equal(w.sleeps.at(-1), 5);
  });

  it('looks once even when the deadline has passed (a slow start-up), and never sleeps then', () => {
    const gone = world({ 7: 0 });
    gone.clock.sleep(1000);
    assert.deepEqual(waitUntilGone([7], gone.alive, gone.clock, 900), []);
    const stuck = world({ 7: Infinity });
    stuck.clock.sleep(1000);
    assert.deepEqual(waitUntilGone([7], stuck.alive, stuck.clock, 900), [7]);
    assert.equal(stuck.looks.length, 1);
    assert.equal(stuck.sleeps.length, 1, 'only the start-up sleep');
  });

  it('with nothing to wait for returns at once', () => {
    const w = world({});
    assert.deepEqual(waitUntilGone([], w.alive, w.clock, 900), []);
    assert.deepEqual(w.looks, []);
  });
});
