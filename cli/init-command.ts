import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { ConfigError } from '../common/config';
import { isValidId } from '../common/address';
import { PkiDirectory, type Identity, type Role } from '../common/pki';
import { commaList, idList, intArg, opt } from './options';
import { renderTable } from './table';

/** `e1=10.0.0.1+127.0.0.1,e2=10.0.0.2` → member name → IPs. */
function etcdMembers(text: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of commaList(text)) {
    const [name, list = ''] = part.split('=');
    const addrs = list.split('+').filter(Boolean);
    if (!isValidId(name) || !addrs.length || addrs.some((a) => !isIP(a))) throw new ConfigError(`--etcd ${JSON.stringify(part)}: expected name=ip[+ip…]`);
    out.set(name, addrs);
  }
  return out;
}

/** On renewal an etcd member keeps the IPs its certificate named. */
function ips(pki: PkiDirectory, who: Identity): string[] | undefined {
  if (who.role !== 'etcd') return undefined;
  const file = path.join(pki.tlsDir(who), 'cert.pem');
  if (!fs.existsSync(file)) return undefined;
  return (new X509Certificate(fs.readFileSync(file)).subjectAltName ?? '').split(', ').filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11));
}

export const DEFAULT_PKI_DIR = '/etc/nfsha/deploy/pki';

/** The identities the flags name; an Access Server gets a follower and a gate certificate. */
export function identitiesFromFlags(flags: Record<string, string | undefined>): Identity[] {
  const out: Identity[] = [];
  const add = (role: Role, list: string[]) => out.push(...list.map((id) => ({ role, id })));
  add('master', idList(flags.master, '--master'));
  for (const id of idList(flags.follower, '--follower')) out.push({ role: 'follower', id }, { role: 'gate', id });
  add('agent', idList(flags.agent, '--agent'));
  add('operator', idList(flags.operator, '--operator'));
  return out;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('Create the cluster CA (once) and issue TLS directories (ca.pem, cert.pem, key.pem) for the named identities. --renew re-issues them (certificate rotation).')
    .addOption(opt('--dir <dir>', 'the PKI directory (nfsha deploy uses <state-dir>/pki)', DEFAULT_PKI_DIR))
    .addOption(opt('--master <ids>', 'master ids, comma-separated'))
    .addOption(opt('--follower <ids>', 'Access Server ids: each gets a follower and a gate (NFS layer) certificate'))
    .addOption(opt('--agent <ids>', 'ESXi host ids for agents (nfsha deploy issues these itself)'))
    .addOption(opt('--operator <names>', 'operators, for status, deploy and grpcurl'))
    .addOption(opt('--etcd <name=ip[+ip…],…>', 'etcd members: server and peer certificates naming their IPs (run etcd with --client-cert-auth --trusted-ca-file ca.pem)'))
    .addOption(opt('--days <n>', 'validity of the issued certificates', 365).argParser(intArg))
    .addOption(opt('--renew', 're-issue certificates (rotation): the named identities, or every one in --dir when none is named'))
    .addOption(opt('--new-ca', 'start a CA rotation: a new CA signs, and new TLS directories trust the old and the new CA (then --renew)'))
    .addOption(opt('--drop-old-ca', 'end a CA rotation: new TLS directories trust only the current CA (then --renew)'))
    .action((flags) => {
      const pki = new PkiDirectory(flags.dir ?? DEFAULT_PKI_DIR);
      const createdCa = !pki.hasCa();
      pki.ca();
      if (flags.newCa && !createdCa) pki.rotateCa();
      if (flags.dropOldCa) pki.dropOldCa();
      const named = identitiesFromFlags(flags);
      const etcd = etcdMembers(flags.etcd);
      const rows = [...(named.length || etcd.size || !flags.renew ? named : pki.identities()), ...[...etcd.keys()].map((id) => ({ role: 'etcd' as const, id }))].map((who) => {
        const wrote = pki.issue(who, { renew: flags.renew === true, days: flags.days, ips: etcd.get(who.id) ?? ips(pki, who) });
        return [`${who.role}/${who.id}`, wrote ? (flags.renew ? 'renewed' : 'created') : 'kept', pki.tlsDir(who)];
      });
      const ca = createdCa ? 'created' : flags.newCa ? 'replaced (old and new trusted: ca/trust.pem)' : flags.dropOldCa ? 'kept; old CA no longer trusted' : 'kept';
      process.stdout.write(`CA ${ca}: ${pki.caDir}/ca.pem (its key ca-key.pem stays here)\n`);
      if (rows.length) process.stdout.write('\n' + renderTable(['IDENTITY', 'CERTIFICATE', 'TLS DIRECTORY (--tls)'], rows) + '\n');
    });
}
