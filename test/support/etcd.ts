import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3, type IOptions } from 'etcd3';
import { freePort, Proc, waitFor } from './cluster';
import { etcdTlsDir, tlsDir } from './pki';
import { ETCD_SERVER_NAME } from '../../common/pki';

/** etcd client options for tests: mTLS with the test CA, as the masters connect. */
export function etcdClientOptions(endpoints: string | string[]): IOptions {
  const dir = tlsDir('operator', 'test');
  const f = (name: string) => fs.readFileSync(path.join(dir, name));
  return {
    hosts: (Array.isArray(endpoints) ? endpoints : [endpoints]).map((e) => `https://${e}`),
    credentials: { rootCertificate: f('ca.pem'), certChain: f('cert.pem'), privateKey: f('key.pem') },
    grpcOptions: { 'grpc.ssl_target_name_override': ETCD_SERVER_NAME },
    dialTimeout: 1000,
  };
}

/** Fails with a clear message when etcd is not installed. */
export function requireEtcd(): void {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('these tests need etcd: install the Debian package etcd-server (test/setup.sh does)');
  }
}

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

  async start(): Promise<this> {
    requireEtcd();
    for (let i = 1; i <= this.size; i++) {
      this.members.push({ name: `e${i}`, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}` });
    }
    for (const m of this.members) this.startMember(m);
    if (this.netns) return this;
    await waitFor('etcd cluster healthy', async () => {
      const c = new Etcd3(etcdClientOptions(this.endpoints));
      try {
        await c.put('nfsha-test/ping').value('1').exec();
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
    const child = spawn(command[0], [...command.slice(1),
      '--name', m.name, '--data-dir', path.join(this.dir, m.name),
      '--listen-client-urls', `https://${m.client}`, '--advertise-client-urls', `https://${m.client}`,
      '--listen-peer-urls', `https://${m.peer}`, '--initial-advertise-peer-urls', `https://${m.peer}`,
      '--cert-file', path.join(tls, 'cert.pem'), '--key-file', path.join(tls, 'key.pem'), '--trusted-ca-file', path.join(tls, 'ca.pem'), '--client-cert-auth',
      '--peer-cert-file', path.join(tls, 'cert.pem'), '--peer-key-file', path.join(tls, 'key.pem'), '--peer-trusted-ca-file', path.join(tls, 'ca.pem'), '--peer-client-cert-auth',
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', path.basename(this.dir),
      '--heartbeat-interval', '100', '--election-timeout', '600', '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', out, out] });
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
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
