import * as fs from 'node:fs';
import * as path from 'node:path';

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
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, `${epoch}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return epoch;
}
