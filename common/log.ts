import pino from 'pino';

export type Logger = pino.Logger;

/**
 * JSON-line logger. Every line names its component (`c`) and, for decisions,
 * an event (`ev`) with the ids involved: one line per decision, never per
 * keepalive. Level from NFSHA_LOG_LEVEL (default info).
 */
export function createLogger(component: string, extra: Record<string, unknown> = {}, fd: 1 | 2 = 1): Logger {
  return pino({
    level: process.env.NFSHA_LOG_LEVEL ?? 'info',
    base: { c: component, ...extra },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, pino.destination(fd));
}

/** A logger that writes nothing, for unit tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
