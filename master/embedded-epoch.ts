import * as fs from 'node:fs';
import { writeFileDurably } from './file-registry';

/**
 * The embedded master's epoch: its start time in wall-clock ms, so a restarted
 * master issues larger tokens than before. A wall clock stepped back would
 * give a lower epoch, which followers refuse (an outage until the clock
 * catches up); with `file` the last epoch is kept and the next is always
 * larger: max(now, last + 1), written (and synced) before it is used.
 */
export function nextEmbeddedEpoch(file: string, now: () => number = Date.now): number {
  if (!file) return now();
  let last = 0;
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (/^\d+$/.test(text)) last = Number(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const epoch = Math.max(now(), last + 1);
  writeFileDurably(file, `${epoch}\n`);
  return epoch;
}
