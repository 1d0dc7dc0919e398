import { EventEmitter } from 'node:events';
import { mutant } from '../common/mutants';
import type { Clock, TimerHandle } from '../common/clock';
import type { CandidateKey, ElectionStore, StoreLease } from './election-store';
import type { Logger } from '../common/log';
import type { HostRecord } from './identity';
import type { LeaderInfo, Leadership, LeadershipEvents, RegistryStore, ServerRecord } from './leadership';
import type { MaintenanceRecord } from './maintenance';

export interface EtcdLeadershipOptions {
  /** etcd (Etcd3Store), or the simulation's model of it. */
  store: ElectionStore;
  self: LeaderInfo;
  /** The election lease, whole seconds (etcd's unit; the client's default of 60 s is far too long). */
  leaseTtlSeconds: number;
  /** Key prefix for the election and the registry. Default "nfsha/". */
  prefix?: string;
  clock: Clock;
  log: Logger;
  /** Jitter between campaign rounds. Default Math.random. */
  random?: () => number;
}

/**
 * Leader election through etcd: every candidate puts a key under
 * `<prefix>election/` bound to its own lease; the key with the lowest create
 * revision leads, and that revision is the leader's epoch. The leader keeps
 * its lease alive itself and counts its leadership from when it *sent* the
 * last keepalive etcd acknowledged, stepping down on its own timer before etcd
 * could let anyone else win (DESIGN §7: leadership is not exclusive in time).
 */
export class EtcdLeadership extends EventEmitter<LeadershipEvents> implements Leadership {
  readonly registry: RegistryStore;
  readonly leaseMs: number;
  private readonly prefix: string;
  private stopped = false;
  private leading = false;
  private validUntil = 0;
  private lease?: StoreLease;
  private myKey = '';
  private known?: LeaderInfo;
  private watcher?: { cancel(): Promise<void> };
  private watchSetup?: Promise<void>;
  private keepaliveTimer?: TimerHandle;
  private expiryTimer?: TimerHandle;
  private wake?: () => void;

  constructor(private readonly opts: EtcdLeadershipOptions) {
    super();
    this.prefix = opts.prefix ?? 'nfsha/';
    this.leaseMs = opts.leaseTtlSeconds * 1000;
    this.registry = new EtcdRegistry(opts.store, this.prefix, opts.log);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.opts.clock.setTimeout(resolve, ms));
  }

  /** Leadership ends 10% of the lease early, so clock drift cannot make it overlap a successor's. */
  private get safeUntil(): number {
    return this.validUntil - this.leaseMs * 0.1;
  }

  isLeader(): boolean {
    return this.leading && this.opts.clock.now() < this.safeUntil;
  }

  leader(): LeaderInfo | undefined {
    return this.leading ? this.opts.self : this.known;
  }

  /**
   * Starts campaigning and returns. etcd may have no quorum yet (every
   * service of a cluster boots at once): nothing here waits for it, and
   * the watch is set up by the campaign loop once etcd answers. (Awaiting
   * the watch here made a candidate started during an etcd outage give up
   * for good: found by the simulation's etcd-quorum-loss.)
   */
  async start(): Promise<void> {
    void this.campaignLoop();
  }

  /**
   * The watch only wakes the loop early (it polls every second anyway), so
   * it is set up beside the campaign, never in its way (a real etcd client
   * may wait for a connection rather than fail), and tried again each round.
   */
  private ensureWatch(): void {
    if (this.watcher || this.watchSetup) return;
    this.watchSetup = (async () => {
      try {
        const watcher = await this.opts.store.watch(`${this.prefix}election/`, () => this.wake?.());
        if (this.stopped) await watcher.cancel().catch(() => undefined);
        else this.watcher = watcher;
      } catch (err) {
        this.opts.log.warn({ ev: 'election.watch.failed', err: (err as Error).message }, 'could not watch the election; polling until etcd answers');
      } finally {
        this.watchSetup = undefined;
      }
    })();
  }

  private async campaignLoop(): Promise<void> {
    while (!this.stopped) {
      this.ensureWatch();
      try {
        await this.campaign();
      } catch (err) {
        this.opts.log.warn({ ev: 'election.error', err: (err as Error).message }, 'election round failed; retrying');
      }
      this.stepDown('campaign ended');
      if (!this.stopped) await this.sleep(200 + (this.opts.random ?? Math.random)() * 300);
    }
  }

  /** One term as a candidate: a fresh lease and key; returns when the lease is lost. */
  private async campaign(): Promise<void> {
    const { clock, log, self, store } = this.opts;
    const grantSent = clock.now();
    const lease = await store.grantLease(this.opts.leaseTtlSeconds);
    this.lease = lease;
    this.validUntil = grantSent + this.leaseMs;
    this.myKey = `${this.prefix}election/${lease.id}`;
    const myRevision = await store.putWithLease(this.myKey, JSON.stringify(self), lease);
    this.keepLeaseAlive(lease);
    log.info({ ev: 'election.candidate', key: this.myKey, revision: myRevision }, 'campaigning');
    // Once stepped down (the lease not renewed in time), this campaign is
    // over even if a keepalive's late answer extends the lease: leading
    // again on this key would start a second term with the same epoch, and
    // its fencing tokens would count again from 1 (found by the
    // simulation: seed 583294829, a token went back from 20.3 to 20.1).
    while (!this.stopped && clock.now() < this.safeUntil && !this.gaveUp(lease)) {
      // A failed read is no reason to give up a lease that is still valid.
      const kvs = await this.candidates().catch((err: Error) => {
        log.warn({ ev: 'election.read.failed', err: err.message }, 'could not read the candidates; retrying');
        return undefined;
      });
      // Stepped down while the read was out: this campaign is over.
      if (this.gaveUp(lease)) break;
      if (!kvs) {
        await this.sleep(100);
        continue;
      }
      const first = kvs[0];
      if (!kvs.some((kv) => kv.key === this.myKey)) throw new Error('our election key is gone (lease expired)');
      if (first.key === this.myKey) {
        if (!this.leading) this.becomeLeader(myRevision);
      } else {
        this.follow(parseLeader(first.value));
      }
      await new Promise<void>((resolve) => {
        const t = clock.setTimeout(resolve, 1000);
        this.wake = () => { clock.clearTimeout(t); resolve(); };
      });
    }
    await lease.revoke().catch(() => undefined);
  }

  /** This candidate stepped down from `lease`'s term: it must never lead on that key again. */
  private gaveUp(lease: StoreLease): boolean {
    return this.lease !== lease && !mutant('election-leads-again-on-same-key');
  }

  private candidates(): Promise<CandidateKey[]> {
    return this.opts.store.listByCreate(`${this.prefix}election/`);
  }

  private keepLeaseAlive(lease: StoreLease): void {
    const { clock } = this.opts;
    // Several tries per lease, each with its own deadline, so an etcd raft
    // election or a dead endpoint costs a try, not the leadership.
    const every = Math.max(200, this.leaseMs / 6);
    const deadlineMs = Math.max(300, this.leaseMs / 4);
    const tick = async () => {
      if (this.stopped || this.lease !== lease) return;
      // Retry within the tick: a failed try (a dead member, an etcd raft
      // election) should cost milliseconds of the lease, not a whole period.
      for (let attempt = 0; this.lease === lease && clock.now() < this.safeUntil; attempt++) {
        const sent = clock.now();
        try {
          await lease.keepaliveOnce(deadlineMs);
          if (this.gaveUp(lease)) return;
          this.validUntil = Math.max(this.validUntil, sent + this.leaseMs);
          this.armExpiry();
          break;
        } catch (err) {
          this.opts.log.warn({ ev: 'election.keepalive.failed', attempt, err: (err as Error).message, left_ms: Math.round(this.safeUntil - clock.now()) }, 'lease keepalive failed');
          await this.sleep(50);
        }
      }
      if (this.lease === lease) this.keepaliveTimer = clock.setTimeout(() => void tick(), every);
    };
    this.keepaliveTimer = clock.setTimeout(() => void tick(), every);
    this.armExpiry();
  }

  private armExpiry(): void {
    const { clock } = this.opts;
    if (this.expiryTimer) clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = clock.setTimeout(() => {
      if (clock.now() >= this.safeUntil) {
        this.stepDown('election lease not renewed in time');
        this.wake?.();
      } else {
        this.armExpiry();
      }
    }, Math.max(0, this.safeUntil - clock.now()));
  }

  private becomeLeader(epoch: number): void {
    this.leading = true;
    this.known = this.opts.self;
    this.opts.log.warn({ ev: 'election.elected', epoch, lease_ms: this.leaseMs }, 'elected leader');
    this.emit('leader', this.opts.self);
    this.emit('elected', epoch);
  }

  private follow(leader: LeaderInfo | undefined): void {
    if (this.leading) this.stepDown('another candidate holds an older key');
    if (leader?.address !== this.known?.address || leader?.id !== this.known?.id) {
      this.known = leader;
      this.opts.log.info({ ev: 'election.leader', leader: leader?.id, address: leader?.address }, 'following leader');
      this.emit('leader', leader);
    }
  }

  private stepDown(reason: string): void {
    if (this.keepaliveTimer) this.opts.clock.clearTimeout(this.keepaliveTimer);
    if (this.expiryTimer) this.opts.clock.clearTimeout(this.expiryTimer);
    this.keepaliveTimer = this.expiryTimer = undefined;
    this.lease = undefined;
    if (!this.leading) return;
    this.leading = false;
    this.known = undefined;
    this.opts.log.warn({ ev: 'election.deposed', why: reason }, 'stepped down');
    this.emit('deposed', reason);
    this.emit('leader', undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const lease = this.lease;
    this.stepDown('stopping');
    this.wake?.();
    await lease?.revoke().catch(() => undefined);
    await this.watcher?.cancel().catch(() => undefined);
    this.opts.store.close();
  }
}

function parseLeader(text: string): LeaderInfo | undefined {
  try {
    const v = JSON.parse(text) as LeaderInfo;
    return typeof v.id === 'string' && typeof v.address === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Access Servers and hosts under `<prefix>registry/`, written by the leader. */
class EtcdRegistry implements RegistryStore {
  private readonly written = new Map<string, { text: string; done: Promise<void> }>();

  constructor(private readonly store: ElectionStore, private readonly prefix: string, private readonly log: Logger) {}

  async load(): Promise<{ servers: ServerRecord[]; hosts: HostRecord[]; maintenance: MaintenanceRecord[] }> {
    const servers = await this.store.getAll(`${this.prefix}registry/servers/`);
    const hosts = await this.store.getAll(`${this.prefix}registry/hosts/`);
    const maintenance = await this.store.getAll(`${this.prefix}registry/maintenance/`);
    return {
      servers: Object.values(servers).map((v) => JSON.parse(v) as ServerRecord),
      hosts: Object.values(hosts).map((v) => JSON.parse(v) as HostRecord),
      maintenance: Object.values(maintenance).map((v) => JSON.parse(v) as MaintenanceRecord),
    };
  }

  /** Writes `value` unless this process already wrote the same; resolves once etcd has it. */
  private save(key: string, value: object): Promise<void> {
    const text = JSON.stringify(value);
    const known = this.written.get(key);
    if (known?.text === text) return known.done;
    const done = this.store.put(key, text).catch((err: Error) => {
      if (this.written.get(key)?.done === done) this.written.delete(key);
      this.log.warn({ ev: 'registry.write.failed', key, err: err.message }, 'could not write registry');
      throw err;
    });
    this.written.set(key, { text, done });
    return done;
  }

  saveServer(s: ServerRecord): Promise<void> {
    return this.save(`${this.prefix}registry/servers/${s.serverId}`, s);
  }

  saveHost(h: HostRecord): void {
    this.save(`${this.prefix}registry/hosts/${h.id}`, h).catch(() => undefined);
  }

  saveMaintenance(r: MaintenanceRecord): Promise<void> {
    return this.save(`${this.prefix}registry/maintenance/${r.serverId}`, r);
  }
}
