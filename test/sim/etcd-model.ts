import type { CandidateKey, ElectionStore, StoreLease } from '../../master/election-store';
import type { Kernel, SimProcess } from './kernel';

interface Kv {
  value: string;
  createRevision: number;
  lease?: string;
}

interface LeaseState {
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
}

/**
 * etcd as the election sees it (DESIGN §7): one linearizable store with a
 * revision counter, leases that expire on etcd's own time unless kept alive
 * (deleting their keys), and watches. Operations take a network delay each
 * way; a master cut off from etcd gets no answer (its calls time out). The
 * contract test (test/integration/etcd-contract.test.ts) holds the model and
 * a real etcd to the same behaviour.
 */
export class SimEtcd {
  revision = 1;
  private readonly kvs = new Map<string, Kv>();
  private readonly leases = new Map<string, LeaseState>();
  private readonly watchers = new Set<{ prefix: string; proc: SimProcess; changed: () => void }>();
  private nextLease = 0x1000;
  /** Masters cut off from etcd (cut/uncut). */
  private readonly cutOff = new Set<SimProcess>();

  /** Until then every request reaches etcd late, by `slowMs` more (a disk whose fsyncs stall). */
  private slowUntil = 0;
  private slowMs: [number, number] = [0, 0];

  /** etcd answers late for `ms`: each request takes `extra` ms more to be served. */
  slowFor(ms: number, extra: [number, number]): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.slowUntil = this.kernel.now + ms;
    this.slowMs = extra;
    this.kernel.schedule(this.slowUntil, () => { this.kernel.disturbedAt = this.kernel.now; });
  }

  /** Whether a fault holds now: a master cut off, no leader, or failing writes. */
  faulty(): boolean {
    return this.cutOff.size > 0 || this.kernel.now < this.unavailableUntil || this.kernel.now < this.plainWritesFailUntil || this.kernel.now < this.slowUntil;
  }

  cut(p: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.cutOff.add(p);
  }

  uncut(p: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.cutOff.delete(p);
  }
  /** Until then the cluster has no leader (quorum lost, or an election under way): nothing is answered, no lease expires. */
  unavailableUntil = 0;
  /** Until then a write outside any lease (the registry) fails, as on a full or failing disk. */
  plainWritesFailUntil = 0;

  /**
   * Sees each lease keepalive and registry read a master sends, as it is
   * sent: a fault can strike at the moment a request is on its way.
   */
  onRequest?: (proc: SimProcess, what: 'keepalive' | 'read', key: string) => void;

  constructor(readonly kernel: Kernel, private readonly latency: () => number) {}

  private bump(changedKey: string): void {
    this.revision++;
    for (const w of this.watchers) {
      if (changedKey.startsWith(w.prefix) && !w.proc.dead) this.deliver(w.proc, w.changed);
    }
  }

  private deliver(proc: SimProcess, fn: () => void): void {
    this.kernel.schedule(this.kernel.now + this.latency(), fn, proc);
  }

  private expire(id: string): void {
    const l = this.leases.get(id);
    if (!l || this.kernel.now < l.expiresAt) return;
    // No leader, no expiry: leaderChange() renews every lease when one is back.
    if (this.kernel.now < this.unavailableUntil) return;
    this.leases.delete(id);
    for (const k of l.keys) {
      if (this.kvs.get(k)?.lease === id) {
        this.kvs.delete(k);
        this.bump(k);
      }
    }
  }

  private armExpiry(id: string): void {
    const l = this.leases.get(id)!;
    this.kernel.schedule(l.expiresAt, () => this.expire(id));
  }

  /**
   * Runs `op` at etcd after a delay and hands its result back to `proc` after
   * another; a cut-off master hears nothing back (its deadline answers).
   */
  call<T>(proc: SimProcess, op: () => T, timeoutMs = 2000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      this.kernel.schedule(this.kernel.now + timeoutMs, () => {
        if (done) return;
        done = true;
        reject(new Error('etcd: deadline exceeded'));
      }, proc, 'timer');
      if (this.cutOff.has(proc)) return;
      // Only a slow etcd draws more (the other seeds' draws stay as they were).
      const slow = this.kernel.now < this.slowUntil ? this.kernel.rng.between(...this.slowMs) : 0;
      this.kernel.schedule(this.kernel.now + this.latency() + slow, () => {
        if (this.cutOff.has(proc) || this.kernel.now < this.unavailableUntil) return;
        let result: T;
        let error: Error | undefined;
        try { result = op(); } catch (err) { error = err as Error; }
        this.deliver(proc, () => {
          if (done) return;
          done = true;
          if (error) reject(error);
          else resolve(result!);
        });
      });
    });
  }

  /**
   * The cluster loses its leader for `ms` (a member lost with the leader, or
   * quorum gone until it returns); the new leader then renews every lease to
   * its full TTL, as etcd does on a leader change: a dead master's election
   * key outlives its TTL by the outage.
   */
  leaderChange(ms: number): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.unavailableUntil = Math.max(this.unavailableUntil, this.kernel.now + ms);
    this.kernel.schedule(this.unavailableUntil, () => {
      if (this.kernel.now >= this.unavailableUntil) this.renewAll();
    });
  }

  /** Everything back now (the liveness phase): a leader, and writes that work. */
  heal(): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.slowUntil = 0;
    this.cutOff.clear();
    this.plainWritesFailUntil = 0;
    if (this.kernel.now >= this.unavailableUntil) return;
    this.unavailableUntil = this.kernel.now;
    this.renewAll();
  }

  private renewAll(): void {
    for (const [id, l] of this.leases) {
      l.expiresAt = this.kernel.now + l.ttlMs;
      this.armExpiry(id);
    }
  }

  grant(ttlSeconds: number): string {
    const id = (this.nextLease++).toString(16);
    this.leases.set(id, { ttlMs: ttlSeconds * 1000, expiresAt: this.kernel.now + ttlSeconds * 1000, keys: new Set() });
    this.armExpiry(id);
    return id;
  }

  keepalive(id: string): void {
    const l = this.leases.get(id);
    if (!l) throw new Error('etcdserver: requested lease not found');
    l.expiresAt = this.kernel.now + l.ttlMs;
    this.armExpiry(id);
  }

  revoke(id: string): void {
    const l = this.leases.get(id);
    if (!l) return;
    l.expiresAt = this.kernel.now;
    this.expire(id);
  }

  put(key: string, value: string, lease?: string): number {
    if (lease === undefined && this.kernel.now < this.plainWritesFailUntil) throw new Error('etcdserver: mvcc: database space exceeded');
    if (lease !== undefined) {
      const l = this.leases.get(lease);
      if (!l) throw new Error('etcdserver: requested lease not found');
      l.keys.add(key);
    }
    const old = this.kvs.get(key);
    this.kvs.set(key, { value, createRevision: old?.createRevision ?? this.revision + 1, lease });
    this.bump(key);
    return this.revision;
  }

  list(prefix: string): CandidateKey[] {
    return [...this.kvs.entries()].filter(([k]) => k.startsWith(prefix))
      .map(([key, kv]) => ({ key, value: kv.value, createRevision: kv.createRevision }))
      .sort((a, b) => a.createRevision - b.createRevision);
  }

  watch(prefix: string, proc: SimProcess, changed: () => void): () => void {
    const w = { prefix, proc, changed };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /** The ElectionStore a master process uses. */
  client(proc: SimProcess): ElectionStore {
    return new SimEtcdClient(this, proc);
  }
}

class SimEtcdClient implements ElectionStore {
  constructor(private readonly etcd: SimEtcd, private readonly proc: SimProcess) {}

  async grantLease(ttlSeconds: number): Promise<StoreLease> {
    const id = await this.etcd.call(this.proc, () => this.etcd.grant(ttlSeconds));
    return {
      id,
      keepaliveOnce: (timeoutMs) => {
        this.etcd.onRequest?.(this.proc, 'keepalive', id);
        return this.etcd.call(this.proc, () => this.etcd.keepalive(id), timeoutMs);
      },
      revoke: () => this.etcd.call(this.proc, () => this.etcd.revoke(id)),
    };
  }

  putWithLease(key: string, value: string, lease: StoreLease): Promise<number> {
    return this.etcd.call(this.proc, () => this.etcd.put(key, value, lease.id));
  }

  listByCreate(prefix: string): Promise<CandidateKey[]> {
    return this.etcd.call(this.proc, () => this.etcd.list(prefix));
  }

  async watch(prefix: string, changed: () => void): Promise<{ cancel(): Promise<void> }> {
    const cancel = await this.etcd.call(this.proc, () => this.etcd.watch(prefix, this.proc, changed));
    return { cancel: async () => { cancel(); } };
  }

  async put(key: string, value: string): Promise<void> {
    await this.etcd.call(this.proc, () => this.etcd.put(key, value));
  }

  async getAll(prefix: string): Promise<Record<string, string>> {
    this.etcd.onRequest?.(this.proc, 'read', prefix);
    const list = await this.etcd.call(this.proc, () => this.etcd.list(prefix));
    return Object.fromEntries(list.map((kv) => [kv.key, kv.value]));
  }

  close(): void {
    // Nothing to close: the model lives with the simulation.
  }
}
