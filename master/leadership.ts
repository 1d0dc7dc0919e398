import type { Fencing } from '../gen/nfsha/v1/Fencing';
import { EventEmitter } from 'node:events';
import type { HostRecord } from './identity';
import type { MaintenanceRecord } from './maintenance';

export interface LeaderInfo {
  id: string;
  /** The leader's gRPC address, for redirects. */
  address: string;
}

export interface ServerRecord {
  serverId: string;
  hostId: string;
  storageIp: string;
  mgmtIp: string;
  /**
   * Whether it could fence its NFS server when last heard of ('FENCING_READY'),
   * or not. A new leader's grace ends by time only for servers that could: one
   * that cannot may still have calls in its NFS server. Absent (older records):
   * not known to be able to.
   */
  fencing?: Fencing;
}

/** The durable registry of Access Servers and hosts: a new leader knows whom to expect. */
export interface RegistryStore {
  load(): Promise<{ servers: ServerRecord[]; hosts: HostRecord[]; maintenance?: MaintenanceRecord[] }>;
  /**
   * Records an Access Server before its session is granted: a new leader's
   * grace waits for every recorded server, so one granted a session without
   * being recorded could hold clients the next leader hands away.
   */
  saveServer(s: ServerRecord): Promise<void>;
  /** Best effort: a host a new leader does not know is refused, not misidentified, until its agent registers again. */
  saveHost(h: HostRecord): void;
  /**
   * Records a server entering or leaving maintenance before the membership
   * says so, so that the next leader keeps it. A store without it (the
   * simulation's) keeps maintenance for the term only.
   */
  saveMaintenance?(r: MaintenanceRecord): Promise<void>;
}

export interface LeadershipEvents {
  /** This master leads from now on, with this epoch. */
  elected: [epoch: number];
  /** This master no longer leads (lease ran out on its own timer, or resigned). */
  deposed: [reason: string];
  /** Who leads now, as far as this candidate knows (undefined during an election). */
  leader: [leader: LeaderInfo | undefined];
}

/**
 * Who may act as master. `isLeader()` is computed from this process's own
 * monotonic clock on every call, never only from an event: a leader that was
 * paused must not act on its way to noticing.
 */
export interface Leadership extends EventEmitter<LeadershipEvents> {
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
  leader(): LeaderInfo | undefined;
  /** The old leader's lease, added to a new leader's grace period. */
  readonly leaseMs: number;
  readonly registry?: RegistryStore;
}

/** The embedded single master: always the leader, no external dependency. */
export class EmbeddedLeadership extends EventEmitter<LeadershipEvents> implements Leadership {
  readonly leaseMs = 0;

  constructor(private readonly self: LeaderInfo, private readonly epoch: number, readonly registry?: RegistryStore) {
    super();
  }

  async start(): Promise<void> {
    this.emit('leader', this.self);
    this.emit('elected', this.epoch);
  }

  async stop(): Promise<void> {
    this.emit('deposed', 'stopping');
  }

  isLeader(): boolean {
    return true;
  }

  leader(): LeaderInfo {
    return this.self;
  }
}
