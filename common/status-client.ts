import { deadlineIn } from './grpc-client';
import { masterClient, parseMasterList } from './master-endpoints';
import { nfshaGrpc, type SessionMasterClient } from './proto';
import type { ClusterStatusReply__Output } from '../gen/nfsha/v1/ClusterStatusReply';
import type { TlsSettings } from './tls';

/** One master candidate's own status answer (it may say it is not the leader). */
export function statusOf(master: string, timeoutMs: number, tls: TlsSettings): Promise<ClusterStatusReply__Output> {
  const client = masterClient<SessionMasterClient>(nfshaGrpc().SessionMaster, master, tls);
  return new Promise((resolve, reject) => {
    client.ClusterStatus({}, { deadline: deadlineIn(timeoutMs) }, (err, reply) => {
      client.close();
      if (err) reject(new Error(`cannot reach master at ${master}: ${err.details || err.message}`));
      else resolve(reply!);
    });
  });
}

/**
 * The leader's status, given one master address or several candidates: a
 * candidate that is not the leader names it, and the leader is asked.
 */
export async function fetchStatus(masters: string, timeoutMs: number, tls: TlsSettings): Promise<ClusterStatusReply__Output> {
  const candidates = parseMasterList(masters);
  let fallback: ClusterStatusReply__Output | undefined;
  let lastErr: Error | undefined;
  for (const address of candidates) {
    try {
      const s = await statusOf(address, timeoutMs, tls);
      if (s.leader) return s;
      fallback ??= s;
      if (s.leaderAddress) {
        const l = await statusOf(s.leaderAddress, timeoutMs, tls).catch(() => undefined);
        if (l?.leader) return l;
      }
    } catch (err) {
      lastErr = err as Error;
    }
  }
  if (fallback) return fallback;
  throw lastErr ?? new Error('no master address given');
}

