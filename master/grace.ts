import type { MasterOptions } from './options';

/**
 * How long a new term waits before granting logins (DESIGN §4): a follower of
 * the old term may serve until its lease surely ran out, and the old leader
 * may have acked keepalives until its own election lease ended.
 */
export function graceMs(opts: Pick<MasterOptions, 'sessionTtlMs' | 'clockDriftBound' | 'graceMarginMs'>, oldLeaderLeaseMs: number): number {
  return Math.ceil(opts.sessionTtlMs * (1 + opts.clockDriftBound)) + opts.graceMarginMs + oldLeaderLeaseMs;
}
