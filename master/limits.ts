import { z } from 'zod';
import { count } from '../common/config';

/**
 * Bounds on what callers can make the master hold. A call past a
 * bound gets RESOURCE_EXHAUSTED naming the limit, and counts in
 * nfsha_master_limit_refusals_total{limit}; nothing already granted changes.
 */
export const masterLimitsSchema = z.object({
  /** Sessions held at once (live, condemned or expiring). */
  maxSessions: count.default(1024),
  /**
   * Clients one session may own. A follower lists all of them in one
   * introduction, which must fit the message cap (checked in options.ts).
   */
  maxClientsPerSession: count.default(512),
  /** Logins in flight (waiting for the grace period or a revoke), across all sessions. */
  maxPendingLogins: count.default(2048),
  /** Logins in flight from one session: one follower cannot use up the rest. */
  maxPendingLoginsPerSession: count.default(256),
  /** Introductions per second per server id (sustained)… */
  introductionsPerSecond: z.number().positive().default(2),
  /** …and the burst allowed. */
  introductionBurst: count.default(10),
}).strict();

export type MasterLimits = z.output<typeof masterLimitsSchema>;

export const DEFAULT_MASTER_LIMITS: MasterLimits = masterLimitsSchema.parse({});

/** Names used in errors and in the metric's `limit` label. */
export const LIMIT = {
  sessions: 'sessions',
  clientsPerSession: 'clients_per_session',
  pendingLogins: 'pending_logins',
  pendingLoginsPerSession: 'pending_logins_per_session',
  introductionRate: 'introduction_rate',
} as const;
