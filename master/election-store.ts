import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError, type Lease } from 'etcd3';
import type { EtcdConnection } from './etcd-client';

/** A key under the election prefix, with the revision that created it (its candidate's epoch). */
export interface CandidateKey {
  key: string;
  value: string;
  createRevision: number;
}

/** A lease held by this candidate. */
export interface StoreLease {
  readonly id: string;
  /** One keepalive, answered within `timeoutMs` or failed. */
  keepaliveOnce(timeoutMs: number): Promise<void>;
  revoke(): Promise<void>;
}

/**
 * What leader election and the registry need from etcd: leases, a put bound
 * to a lease (its revision is the candidate's epoch), the candidates in create
 * order, a watch, and plain keys. One implementation speaks to etcd (etcd3);
 * the simulation models the same contract in virtual time, and a contract test
 * runs both.
 */
export interface ElectionStore {
  grantLease(ttlSeconds: number): Promise<StoreLease>;
  /** Puts `key` bound to `lease`; resolves with the revision of the put. */
  putWithLease(key: string, value: string, lease: StoreLease): Promise<number>;
  /** Every key under `prefix`, oldest create revision first. */
  listByCreate(prefix: string): Promise<CandidateKey[]>;
  /** Calls `changed` after any put or delete under `prefix`. */
  watch(prefix: string, changed: () => void): Promise<{ cancel(): Promise<void> }>;
  put(key: string, value: string): Promise<void>;
  getAll(prefix: string): Promise<Record<string, string>>;
  close(): void;
}

/** ElectionStore on a real etcd, through the etcd3 client. */
export class Etcd3Store implements ElectionStore {
  readonly client: Etcd3;

  constructor(connection: EtcdConnection) {
    this.client = new Etcd3({
      ...connection,
      dialTimeout: 1000,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + 2000) }),
      faultHandling: {
        // A member that refuses connections is skipped after one failure (not
        // three), so lease keepalives reach a live one within the lease period.
        // A slow answer (an etcd raft election) does not open the breaker.
        host: () => circuitBreaker(handleWhen((err) => /ECONNREFUSED|No connection established/i.test(err.message)), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(1) }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 3 }),
      },
    });
  }

  async grantLease(ttlSeconds: number): Promise<StoreLease> {
    const lease: Lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    const id = await lease.grant();
    return {
      id,
      keepaliveOnce: async (timeoutMs) => { await lease.keepaliveOnce({ deadline: new Date(Date.now() + timeoutMs) }); },
      revoke: () => lease.revoke(),
    };
  }

  async putWithLease(key: string, value: string, lease: StoreLease): Promise<number> {
    const put = await this.client.put(key).value(value).lease(lease.id).exec();
    return Number(put.header.revision);
  }

  async listByCreate(prefix: string): Promise<CandidateKey[]> {
    const res = await this.client.getAll().prefix(prefix).sort('Create', 'Ascend').exec();
    return res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), createRevision: Number(kv.create_revision) }));
  }

  async watch(prefix: string, changed: () => void): Promise<{ cancel(): Promise<void> }> {
    const watcher = await this.client.watch().prefix(prefix).create();
    watcher.on('put', changed);
    watcher.on('delete', changed);
    return { cancel: () => watcher.cancel() };
  }

  async put(key: string, value: string): Promise<void> {
    await this.client.put(key).value(value).exec();
  }

  getAll(prefix: string): Promise<Record<string, string>> {
    return this.client.getAll().prefix(prefix).strings();
  }

  close(): void {
    this.client.close();
  }
}
