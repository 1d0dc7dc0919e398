import { normalizeIp } from '../common/address';
import { FailedPrecondition, InvalidArgument, Unavailable } from '../common/errors';

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

  /**
   * Records a host's addresses; returns the addresses it no longer has (a
   * follower may still map them to it: the caller revokes the host's holds).
   */
  upsert(host: HostRecord): string[] {
    const old = this.hosts.get(host.id);
    const norm = (ip?: string) => (ip ? normalizeIp(ip) ?? ip : undefined);
    const now = new Set([norm(host.storageIp), norm(host.mgmtIp)].filter((x): x is string => !!x));
    const gone: string[] = [];
    if (old) {
      for (const ip of [norm(old.storageIp), norm(old.mgmtIp)]) {
        if (!ip) continue;
        if (this.byIp.get(ip) === host.id) this.byIp.delete(ip);
        if (!now.has(ip)) gone.push(ip);
      }
    }
    this.hosts.set(host.id, host);
    for (const ip of now) this.byIp.set(ip, host.id);
    return gone;
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
   * A client's identity is its host, learned only from the registry (agent
   * registrations, --host, the persisted registry): an address no host owns
   * is refused rather than made a client of its own, which would let one host
   * be two clients (`ip:X` here, `host:H` elsewhere) served by two servers.
   * @param address the client's source address as the Access Server saw it
   * @param serverHostId the host the Access Server runs on (for the local address)
   * @param serverId for the error when the server did not say which host it runs on
   */
  resolve(address: string, serverHostId: string, serverId: string): string {
    const ip = normalizeIp(address);
    if (!ip) throw new InvalidArgument(`client address ${JSON.stringify(address)} is not an IP address`);
    if (ip === this.localClientIp) {
      if (!serverHostId) throw new FailedPrecondition(`server ${serverId} did not say which host it runs on (--host-id): its local clients (${ip}) cannot be identified`);
      return `host:${serverHostId}`;
    }
    const hostId = this.byIp.get(ip);
    if (!hostId) throw new Unavailable(`client address ${ip} belongs to no registered host (yet): a host is known once its agent registers it, or from --host`);
    return `host:${hostId}`;
  }
}
