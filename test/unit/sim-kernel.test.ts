import { strict as assert } from 'node:assert';
import { Kernel } from '../sim/kernel';

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
