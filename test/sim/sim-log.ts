import type { Logger } from '../../common/log';
import type { Kernel } from './kernel';

/**
 * A Logger that writes the events the real code logs into the simulation's
 * trace (formatted only when a failing schedule is printed: Trace.tail), so a failure
 * reads as the components' own decisions, in virtual time.
 */
export function simLogger(kernel: Kernel, who: string): Logger {
  const write = (level: string) => (obj: Record<string, unknown> | string, msg?: string) => {
    if (typeof obj === 'string') return void kernel.trace.add(who, `${level} ${obj}`);
    if (kernel.onLogEvent && typeof obj.ev === 'string') kernel.onLogEvent(who, obj.ev, obj);
    kernel.trace.add(who, () => {
      const { ev, ...rest } = obj;
      const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      return `${ev ?? msg ?? ''} ${fields}`.trim();
    });
  };
  const log = {
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    // Not traced (too many), but faults may watch them (World.logWatchers).
    debug: (obj: Record<string, unknown> | string) => {
      if (kernel.onLogEvent && typeof obj === 'object' && typeof obj.ev === 'string') kernel.onLogEvent(who, obj.ev, obj, true);
    },
    trace: () => undefined,
    fatal: write('fatal'),
    child: () => log,
    level: 'info',
  };
  return log as unknown as Logger;
}
