import type { Command } from 'commander';
import { Etcd3 } from 'etcd3';
import { ConfigError } from '../common/settings';
import { formatIdentity } from '../common/pki';
import { DEFAULT_TLS_DIR, loadOwnIdentity } from '../common/tls';
import { enableEtcdAuth } from '../master/etcd-auth';
import { etcdConnection } from '../master/etcd-client';
import { addTlsOptions, commaList, idList, opt, tlsFromFlags } from './options';

export function registerEtcdAuth(program: Command): void {
  const command = program
    .command('etcd-auth')
    .description('Turn on etcd access control for nfsha: masters may only read and write nfsha/, you (your operator certificate) administer etcd, every other certificate can do nothing there. Idempotent: run again to add masters.')
    .requiredOption('--etcd <endpoints>', 'etcd endpoints, host:port,…')
    .requiredOption('--master <ids>', 'master ids, comma-separated (their certificates are master/<id>)')
    .addOption(opt('--admin <names>', 'more operators to make etcd admins, comma-separated (you are one)'));
  addTlsOptions(command).action(async (flags) => {
    const tls = tlsFromFlags(flags) ?? { dir: DEFAULT_TLS_DIR };
    if (tls.insecure) throw new ConfigError('etcd-auth names users by certificate: it needs --tls, not --insecure');
    const me = loadOwnIdentity(tls.dir, ['operator']);
    const masters = idList(flags.master, '--master');
    const admins = [formatIdentity(me), ...idList(flags.admin, '--admin').map((a) => `operator/${a}`)];
    const client = new Etcd3({ ...etcdConnection(commaList(flags.etcd), tls), dialTimeout: 2000 });
    try {
      const done = await enableEtcdAuth(client, { masters, admins });
      process.stdout.write(`etcd access control on${done.length ? `; added ${done.join(', ')}` : '; nothing to add'}\n`);
    } finally {
      client.close();
    }
  });
}
