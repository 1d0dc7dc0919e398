import { normalizeIp } from '../common/address';
import { InvalidArgument } from '../common/errors';

/** The private address every ESXi host uses towards its own SCVM (DESIGN §1). */
export const DEFAULT_LOCAL_CLIENT_IP = '192.168.33.1';

export interface HostRecord {
  id: string;
  storageIp?: string;
  mgmtIp?: string;
}

/**
 * Maps an NFS client's source address to its client identity: the ESXi host.
 * The same host arrives as the private local address on its own SCVM and as its
 * storage or management IP on any other; the local address is the same string
 * on every host, so it only means something together with the server it hit.
 */
export class HostRegistry {
  private readonly byIp = new Map<string, string>();
  private readonly hosts = new Map<string, HostRecord>();

  constructor(hosts: HostRecord[] = [], readonly localClientIp = DEFAULT_LOCAL_CLIENT_IP) {
    for (const h of hosts) this.upsert(h);
  }

  upsert(host: HostRecord): void {
    const old = this.hosts.get(host.id);
    if (old) for (const ip of [old.storageIp, old.mgmtIp]) if (ip) this.byIp.delete(ip);
    this.hosts.set(host.id, host);
    for (const ip of [host.storageIp, host.mgmtIp]) if (ip) this.byIp.set(normalizeIp(ip) ?? ip, host.id);
  }

  /** The other host that already owns one of `host`'s addresses, if any. */
  addressOwnerOtherThan(host: HostRecord): { ip: string; hostId: string } | undefined {
    for (const ip of [host.storageIp, host.mgmtIp]) {
      const owner = ip ? this.byIp.get(normalizeIp(ip) ?? ip) : undefined;
      if (owner && owner !== host.id) return { ip: ip!, hostId: owner };
    }
    return undefined;
  }

  list(): HostRecord[] {
    return [...this.hosts.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * @param address the client's source address as the Access Server saw it
   * @param serverHostId the host the Access Server runs on (for the local address)
   * @param serverId used when the server did not say which host it runs on
   */
  resolve(address: string, serverHostId: string, serverId: string): string {
    const ip = normalizeIp(address);
    if (!ip) throw new InvalidArgument(`client address ${JSON.stringify(address)} is not an IP address`);
    if (ip === this.localClientIp) return serverHostId ? `host:${serverHostId}` : `local:${serverId}`;
    const hostId = this.byIp.get(ip);
    return hostId ? `host:${hostId}` : `ip:${ip}`;
  }
}
