import type { Clock } from '../common/clock';
import type { Logger } from '../common/log';
import { mutant } from '../common/mutants';
import type { GateCore } from './gate-core';

export interface GracefulStopOutcome {
  /** Calls still owed by the NFS server when the gate gave up waiting (0: drained). */
  callsLeft: number;
  /** The follower took the final report (it will not count this layer dirty). */
  finalReported: boolean;
  /** A final report was sent at all. */
  finalReportSent: boolean;
}

/**
 * A gate's graceful stop (SIGTERM), apart from sockets, so that the TCP
 * gate and the simulation run the same steps in the same order: stop
 * serving and wait for what was forwarded to drain (issue 18 hole b), send
 * the final report (hole g), then end the revoke stream.
 */
export async function stopGateGracefully(core: GateCore, link: { stop(): void }, o: { drainTimeoutMs: number; clock: Clock; log: Logger }): Promise<GracefulStopOutcome> {
  let callsLeft = core.callsInFlight();
  if (!mutant('follower-release-while-dirty')) {
    // Calls already forwarded still run in the NFS server after we exit.
    // Stop serving, and keep the stream (the follower sees our reports, and
    // revokes still reach us) until they drained.
    const started = o.clock.now();
    const callsOwed = callsLeft;
    callsLeft = await core.stopAndDrain(o.drainTimeoutMs);
    const ms = Math.round(o.clock.now() - started);
    if (callsLeft > 0) o.log.warn({ ev: 'gate.stop.undrained', calls_left: callsLeft, ms }, 'stopping with calls still in the NFS server: the follower fences it before moving their clients');
    else if (callsOwed > 0) o.log.info({ ev: 'gate.stop.drained', calls: callsOwed, ms }, 'calls in flight drained before stopping');
  }
  // The follower must hear that we stopped before our stream closes, or it
  // last heard us serving and counts us dirty (a needless NFS fence).
  const finalReportSent = !mutant('gate-stop-without-final-report');
  const finalReported = finalReportSent ? await core.finalReport() : false;
  if (!finalReported && callsLeft === 0) o.log.warn({ ev: 'gate.stop.final_report_failed' }, 'the follower did not take our final report: it will count this layer dirty and fence its NFS server');
  link.stop();
  core.dispose();
  return { callsLeft, finalReported, finalReportSent };
}
