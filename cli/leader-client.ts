import { fetchStatus } from '../common/status-client';
import { masterClient } from '../common/master-endpoints';
import { nfshaGrpc, type SessionMasterClient } from '../common/proto';
import type { TlsSettings } from '../common/tls';

/** A SessionMaster client of the leader, found among the candidates `masters` (for operator calls only the leader answers). */
export async function leaderClient(masters: string, timeoutMs: number, tls: TlsSettings): Promise<SessionMasterClient> {
  const status = await fetchStatus(masters, timeoutMs, tls);
  if (!status.leader) throw new Error(`no leader: ${status.masterId} is not the leader and names none; retry when one is elected`);
  const address = status.leaderAddress || masters.split(',')[0].trim();
  return masterClient<SessionMasterClient>(nfshaGrpc().SessionMaster, address, tls);
}
