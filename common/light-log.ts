import * as fs from 'node:fs';
import type { Logger } from './log';

/**
 * The ESXi agent's logger: the same JSON lines as common/log.ts (pino's
 * `level` label, ISO `time`, the component `c` and its fields, then the
 * event's fields and `msg`), written synchronously, one line per decision.
 * The agent executable loads this instead of pino (build/build-agent.mjs):
 * an agent logs a few lines a minute, and pino's resident cost (about
 * 3 MiB) is a twentieth of the agent's whole footprint (issue 20: lean agent).
 * Only pino's level methods, child(), level and isLevelEnabled are here:
 * the agent's code calls the level methods alone.
 */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
type LevelName = keyof typeof LEVELS;
type Method = Exclude<LevelName, 'silent'>;

function levelOf(name: string | undefined): number {
  return name && name in LEVELS ? LEVELS[name as LevelName] : LEVELS.info;
}

/** pino's shape for an Error among the fields. */
function plain(value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
}

class LightLogger {
  constructor(private readonly threshold: number, private readonly bindings: Record<string, unknown>, private readonly fd: number) {}

  get level(): string {
    return (Object.keys(LEVELS) as LevelName[]).find((k) => LEVELS[k] === this.threshold) ?? 'info';
  }

  isLevelEnabled(name: string): boolean {
    return levelOf(name) >= this.threshold;
  }

  child(bindings: Record<string, unknown>): LightLogger {
    return new LightLogger(this.threshold, { ...this.bindings, ...bindings }, this.fd);
  }

  trace(a?: unknown, b?: string): void { this.write('trace', a, b); }
  debug(a?: unknown, b?: string): void { this.write('debug', a, b); }
  info(a?: unknown, b?: string): void { this.write('info', a, b); }
  warn(a?: unknown, b?: string): void { this.write('warn', a, b); }
  error(a?: unknown, b?: string): void { this.write('error', a, b); }
  fatal(a?: unknown, b?: string): void { this.write('fatal', a, b); }

  /** log.info(fields, msg), log.info(msg) or log.info(error, msg), as pino takes them. */
  private write(method: Method, a: unknown, b: string | undefined): void {
    if (LEVELS[method] < this.threshold) return;
    const line: Record<string, unknown> = { level: method, time: new Date().toISOString(), ...this.bindings };
    if (typeof a === 'string') {
      line.msg = a;
    } else {
      if (a instanceof Error) line.err = plain(a);
      else if (a && typeof a === 'object') for (const [k, v] of Object.entries(a)) line[k] = plain(v);
      if (b !== undefined) line.msg = b;
    }
    try {
      fs.writeSync(this.fd, `${JSON.stringify(line)}\n`);
    } catch {
      // A closed stdout (the init script sends it to /dev/null) must not stop the agent.
    }
  }
}

/** Same signature and lines as common/log.ts createLogger. */
export function createLogger(component: string, extra: Record<string, unknown> = {}, fd: 1 | 2 = 1): Logger {
  return new LightLogger(levelOf(process.env.NFSHA_LOG_LEVEL), { c: component, ...extra }, fd) as unknown as Logger;
}

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return new LightLogger(LEVELS.silent, {}, 1) as unknown as Logger;
}
