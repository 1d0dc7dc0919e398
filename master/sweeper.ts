import * as grpc from '@grpc/grpc-js';
import { setIntervalOn } from '../common/clock';
import type { MasterCore } from './core';
import { SessionState } from './sessions';

/**
 * Every 100 ms of the master's clock: logs a session's expiry once (and ends
 * its stream), refreshes the membership, and forgets sessions whose followers
 * have surely stopped serving (and that the fence agent lets go of).
 */
export function startSweeper(core: MasterCore): { stop(): void } {
  const reported = new Set<string>();
  return setIntervalOn(core.clock, 100, () => {
    for (const s of core.sessions.all()) {
      const st = core.sessions.state(s);
      if (st === SessionState.Expired && !reported.has(s.id)) {
        reported.add(s.id);
        core.log.warn({ ev: 'session.expired', server: s.serverId, session: s.id, clients: core.logins.clientsOf(s.id).length }, 'session expired');
        s.sink?.end(grpc.status.NOT_FOUND, `session ${s.id} expired`);
      }
    }
    core.membership.refresh();
    const gone = core.sessions.sweep((s) => core.logins.mayForget(s));
    if (gone.length) {
      for (const s of gone) reported.delete(s.id);
      core.logins.forgetSessions(new Set(gone.map((s) => s.id)));
    }
  });
}
