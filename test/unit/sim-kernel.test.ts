import { strict as assert } from 'node:assert';
import { Kernel, Machine, SimProcess } from '../sim/kernel';

/** Awaits `n` times in a row: a chain of promise callbacks as long as the real code's. */
async function chain(n: number, log: string[], name: string): Promise<void> {
  for (let i = 0; i < n; i++) await null;
  log.push(name);
}

describe('simulation kernel: every promise callback an event started runs before the next event', () => {
  for (const depth of [1, 12, 40, 150]) {
    it(`a chain of ${depth} awaits started by one event ends before the next event runs`, async () => {
      const k = new Kernel(1);
      const log: string[] = [];
      k.after(10, () => { void chain(depth, log, 'chain'); });
      k.after(11, () => { log.push('next event'); });
      await k.runUntil(100, () => {});
      assert.deepEqual(log, ['chain', 'next event']);
    });
  }

  it('a chain that resolves a promise with another (an async function returning one) ends before the next event', async () => {
    const k = new Kernel(2);
    const log: string[] = [];
    const inner = async () => { for (let i = 0; i < 30; i++) await null; return 1; };
    const outer = async () => inner();
    k.after(10, () => { void outer().then(() => log.push('chain')); });
    k.after(11, () => { log.push('next event'); });
    await k.runUntil(100, () => {});
    assert.deepEqual(log, ['chain', 'next event']);
  });
});

describe('simulation kernel: a late timer stalls its process (buggify), decided when the timer comes due', () => {
  function world(lateness: (p: SimProcess) => number) {
    const k = new Kernel(3);
    const gate = new SimProcess(k, 'gate-1.1', new Machine('scvm-1', 0, 1));
    const asked: Array<[string, number]> = [];
    k.timerLateness = (p) => { asked.push([p.name, k.now]); return lateness(p); };
    return { k, gate, asked };
  }

  it('asks when the timer comes due (not when it was set), and runs it and the process\'s other events after the stall', async () => {
    const { k, gate, asked } = world(() => 300);
    const log: string[] = [];
    gate.clock.setTimeout(() => log.push(`timer at ${k.now}`), 100);
    k.schedule(150, () => log.push(`io at ${k.now}`), gate, 'io');
    await k.runUntil(1000, () => {});
    assert.deepEqual(asked, [['gate-1.1', 100]]);
    assert.deepEqual(log, ['io at 400', 'timer at 400'], 'the I/O that came due during the stall runs first, as after any pause');
  });

  it('a timer whose process may not stall now (World.mayPause said no: its sibling is frozen) runs on time', async () => {
    const { k, gate } = world(() => 0);
    const log: number[] = [];
    gate.clock.setTimeout(() => log.push(k.now), 100);
    await k.runUntil(1000, () => {});
    assert.deepEqual(log, [100]);
  });

  it('a fault that freezes a stalled process keeps it frozen past the stall, until the fault resumes it', async () => {
    const { k, gate } = world(() => 300);
    const log: number[] = [];
    gate.clock.setTimeout(() => log.push(k.now), 100);
    k.after(200, () => k.pause(gate));
    k.after(700, () => k.resume(gate));
    await k.runUntil(1000, () => {});
    assert.deepEqual(log, [700]);
  });
});
