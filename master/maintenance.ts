/** One server's maintenance, as recorded in the registry. */
export interface MaintenanceRecord {
  serverId: string;
  /** False: the server left maintenance (a record kept so that a write, not a delete, ends it). */
  on: boolean;
  operator: string;
  reason: string;
  /** Wall-clock milliseconds when it entered, for status after a failover. */
  sinceWallMs: number;
}

/**
 * Which Access Servers an operator put in maintenance this term (loaded
 * from the registry when the term began). Pure state: the caller persists a
 * change before applying it, and pushes the membership after.
 */
export class Maintenance {
  private readonly on = new Map<string, MaintenanceRecord>();

  constructor(loaded: MaintenanceRecord[] = []) {
    for (const r of loaded) if (r.on) this.on.set(r.serverId, r);
  }

  has(serverId: string): boolean {
    return this.on.has(serverId);
  }

  /** The record a change to `enter` would write, or undefined when nothing would change. */
  change(serverId: string, enter: boolean, operator: string, reason: string, wallNow: number): MaintenanceRecord | undefined {
    if (enter === this.on.has(serverId)) return undefined;
    return { serverId, on: enter, operator, reason, sinceWallMs: wallNow };
  }

  apply(r: MaintenanceRecord): void {
    if (r.on) this.on.set(r.serverId, r);
    else this.on.delete(r.serverId);
  }

  list(): MaintenanceRecord[] {
    return [...this.on.values()].sort((a, b) => a.serverId.localeCompare(b.serverId));
  }
}

/**
 * The servers other than `serverId` that could take its hosts: live
 * members, out of maintenance and not stopping, with working NFS. Empty
 * means the server is the last healthy one, and entering maintenance leaves
 * its hosts with no server. A member stays listed for up to a second after
 * its stream closes (the membership's disconnect grace), so a server that
 * died that recently still counts.
 */
export function otherHealthyServers(members: Array<{ serverId?: string; nfsDown?: boolean; leaving?: boolean }>, serverId: string): string[] {
  return [...new Set(members.filter((m) => m.serverId !== serverId && !m.nfsDown && !m.leaving).map((m) => m.serverId!))].sort();
}
