/**
 * Bounds on what callers can make the master hold. A call past a
 * bound gets RESOURCE_EXHAUSTED naming the limit, and counts in
 * nfsha_master_limit_refusals_total{limit}; nothing already granted changes.
 */
export interface MasterLimits {
  /** Sessions held at once (live, condemned or expiring). */
  maxSessions: number;
  /**
   * Clients one session may own. A follower lists all of them in one
   * introduction, which must fit the message cap (checked in config.ts).
   */
  maxClientsPerSession: number;
  /** Logins in flight (waiting for the grace period or a revoke), across all sessions. */
  maxPendingLogins: number;
  /** Logins in flight from one session: one follower cannot use up the rest. */
  maxPendingLoginsPerSession: number;
  /** Introductions per second per server id (sustained), and the burst allowed. */
  introductionsPerSecond: number;
  introductionBurst: number;
}

export const DEFAULT_MASTER_LIMITS: MasterLimits = {
  maxSessions: 1024,
  maxClientsPerSession: 512,
  maxPendingLogins: 2048,
  maxPendingLoginsPerSession: 256,
  introductionsPerSecond: 2,
  introductionBurst: 10,
};

/** Names used in errors and in the metric's `limit` label. */
export const LIMIT = {
  sessions: 'sessions',
  clientsPerSession: 'clients_per_session',
  pendingLogins: 'pending_logins',
  pendingLoginsPerSession: 'pending_logins_per_session',
  introductionRate: 'introduction_rate',
} as const;
