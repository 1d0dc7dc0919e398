import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const made: string[] = [];
let hooked = false;

/**
 * A fresh scratch directory under the system temp dir, removed when the test
 * process exits (unless NFSHA_KEEP_TEST_DIRS=1): executables, scratch roots
 * and config files otherwise pile up by the hundred MB per run.
 */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      if (process.env.NFSHA_KEEP_TEST_DIRS === '1') return;
      for (const d of made) {
        try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* a process still writing there: leave it */ }
      }
    });
  }
  return dir;
}
