import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3, type IOptions } from 'etcd3';
import { CLI, freePort, Proc, removeTestDir, tracked, waitFor } from './cluster';
import { etcdTlsDir, tlsArgs, tlsOf } from './pki';
import { etcdConnection } from '../../master/etcd-client';
import { enableEtcdAuth } from '../../master/etcd-auth';

/** etcd client options for tests: mTLS as the test operator (an etcd admin), as the masters connect. */
export function etcdClientOptions(endpoints: string | string[]): IOptions {
  return { ...etcdConnection(Array.isArray(endpoints) ? endpoints : [endpoints], tlsOf('operator', 'test')), dialTimeout: 1000 };
}

/** Fails with a clear message when etcd is not installed. */
export function requireEtcd(): void {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('these tests need etcd: install the Debian package etcd-server (test/setup.sh does)');
  }
}

/** The master ids tests use with etcd: the only masters etcd lets in. */
export const ETCD_TEST_MASTERS = ['m1', 'm2', 'm3'];

/** A real etcd cluster of `size` members on loopback, with fast raft timings, mTLS for clients and peers. */
export class EtcdCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-etcd-'));
  members: Array<{ name: string; client: string; peer: string; proc?: Proc }> = [];

  /**
   * @param netns run the members inside this network namespace (a lab's
   *   master namespace); then the caller waits for health through its masters.
   */
  constructor(readonly size = 3, readonly netns?: string) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.client);
  }

  /** Starts every member, or stops what it started and throws. */
  async start(): Promise<this> {
    requireEtcd();
    try {
      return await this.startAll();
    } catch (e) {
      const logs = this.members.map((m) => m.proc?.tail(20) ?? `--- etcd-${m.name}: not started`).join('\n');
      await this.stop().catch(() => undefined);
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  }

  private async startAll(): Promise<this> {
    for (let i = 1; i <= this.size; i++) {
      this.members.push({ name: `e${i}`, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}` });
    }
    for (const m of this.members) this.startMember(m);
    if (this.netns) {
      // From inside the namespace, through the CLI an operator would use.
      await waitFor('etcd up, access control on', () => new Promise<boolean>((resolve) => {
        execFile('ip', ['netns', 'exec', this.netns!, process.execPath, CLI, 'etcd-auth', '--etcd', this.endpoints.join(','), '--master', ETCD_TEST_MASTERS.join(','), ...tlsArgs('operator', 'test')],
          (err) => resolve(!err));
      }), 30_000, 200);
      return this;
    }
    await waitFor('etcd up, access control on', async () => {
      const c = new Etcd3(etcdClientOptions(this.endpoints));
      try {
        await enableEtcdAuth(c, { masters: ETCD_TEST_MASTERS, admins: ['operator/test'] });
        return true;
      } finally {
        c.close();
      }
    }, 30_000, 200);
    return this;
  }

  startMember(m: EtcdCluster['members'][number]): void {
    const initial = this.members.map((x) => `${x.name}=https://${x.peer}`).join(',');
    const tls = etcdTlsDir(m.name);
    const logFile = path.join(this.dir, `${m.name}.log`);
    const out = fs.openSync(logFile, 'a');
    const command = this.netns ? ['ip', 'netns', 'exec', this.netns, 'etcd'] : ['etcd'];
    const child = tracked(spawn(command[0], [...command.slice(1),
      '--name', m.name, '--data-dir', path.join(this.dir, m.name),
      '--listen-client-urls', `https://${m.client}`, '--advertise-client-urls', `https://${m.client}`,
      '--listen-peer-urls', `https://${m.peer}`, '--initial-advertise-peer-urls', `https://${m.peer}`,
      '--cert-file', path.join(tls, 'cert.pem'), '--key-file', path.join(tls, 'key.pem'), '--trusted-ca-file', path.join(tls, 'ca.pem'), '--client-cert-auth',
      '--peer-cert-file', path.join(tls, 'cert.pem'), '--peer-key-file', path.join(tls, 'key.pem'), '--peer-trusted-ca-file', path.join(tls, 'ca.pem'), '--peer-client-cert-auth',
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', path.basename(this.dir),
      '--heartbeat-interval', '100', '--election-timeout', '600', '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', out, out] }));
    fs.closeSync(out);
    m.proc = new Proc(`etcd-${m.name}`, child, logFile);
  }

  /** The member that is the raft leader now. */
  async raftLeader(): Promise<EtcdCluster['members'][number]> {
    for (const m of this.members) {
      if (m.proc?.child.exitCode !== null || m.proc?.child.signalCode !== null) continue;
      const c = new Etcd3(etcdClientOptions(m.client));
      try {
        const s = await c.maintenance.status();
        if (s.leader === s.header.member_id) return m;
      } catch { /* not answering */ } finally {
        c.close();
      }
    }
    throw new Error('no etcd raft leader');
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.proc?.kill9()));
    removeTestDir(this.dir);
  }
}
