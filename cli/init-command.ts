import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { ConfigError } from '../common/settings';
import { isValidId } from '../common/address';
import { PkiDirectory, isHostName, serverNamesOf, type Identity, type Role } from '../common/pki';
import { commaList, idList, intArg, opt, optDefault } from './options';
import { DEFAULT_DEPLOY_DIR, deployPkiDir } from '../deploy/deploy';
import { renderTable } from './table';

/**
 * `m1=10.0.0.1+m1.example.com,m2` → id → the extra names (IPs and DNS names)
 * its certificate carries for standard clients; `ipsOnly` for etcd members.
 */
function namedIds(text: string | undefined, flag: string, ipsOnly = false): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of commaList(text)) {
    const [name, list = ''] = part.split('=');
    const names = list.split('+').filter(Boolean);
    const bad = names.find((n) => !(isIP(n) || (!ipsOnly && isHostName(n))));
    if (!isValidId(name) || (ipsOnly && !names.length) || bad !== undefined) {
      throw new ConfigError(`${flag} ${JSON.stringify(part)}: expected ${ipsOnly ? 'name=ip[+ip…]' : 'id[=ip-or-name[+…]]'}`);
    }
    out.set(name, names);
  }
  return out;
}

/** On renewal a certificate keeps the extra names (IPs, DNS names) it had. */
function namesOf(pki: PkiDirectory, who: Identity): string[] | undefined {
  const file = path.join(pki.tlsDir(who), 'cert.pem');
  if (!fs.existsSync(file)) return undefined;
  const standard = new Set(serverNamesOf(who));
  return (new X509Certificate(fs.readFileSync(file)).subjectAltName ?? '').split(', ')
    .map((s) => (s.startsWith('IP Address:') ? s.slice(11) : s.startsWith('DNS:') ? s.slice(4) : ''))
    .filter((n) => n && !standard.has(n));
}

/** The PKI directory of the deploy directory, so masters and `nfsha deploy` on their defaults find the CA made here. */
export const DEFAULT_PKI_DIR = deployPkiDir(DEFAULT_DEPLOY_DIR);

/** The identities the flags name, with extra names; an Access Server gets a follower and a gate certificate. */
export function identitiesFromFlags(flags: Record<string, string | undefined>): Array<{ who: Identity; names?: string[] }> {
  const out: Array<{ who: Identity; names?: string[] }> = [];
  const add = (role: Role, list: string[]) => out.push(...list.map((id) => ({ who: { role, id } })));
  for (const [id, names] of namedIds(flags.master, '--master')) out.push({ who: { role: 'master', id }, names: names.length ? names : undefined });
  for (const [id, names] of namedIds(flags.follower, '--follower')) out.push({ who: { role: 'follower', id }, names: names.length ? names : undefined }, { who: { role: 'gate', id } });
  add('agent', idList(flags.agent, '--agent'));
  add('operator', idList(flags.operator, '--operator'));
  for (const [id, names] of namedIds(flags.etcd, '--etcd', true)) out.push({ who: { role: 'etcd', id }, names });
  return out;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('Create the cluster CA (once) and issue TLS directories (ca.pem, cert.pem, key.pem) for the named identities. --renew re-issues them (certificate rotation).')
    .addOption(optDefault('--dir <dir>', 'the PKI directory; nfsha deploy and the master\'s Deploy call use <state-dir>/pki', DEFAULT_PKI_DIR))
    .addOption(opt('--master <ids>', 'master ids, comma-separated; id=ip+name… adds IPs and DNS names standard clients may verify (every master certificate names master.nfsha and its id)'))
    .addOption(opt('--follower <ids>', 'Access Server ids: each gets a follower and a gate (NFS layer) certificate; id=ip+name… as for --master (follower certificates name follower.nfsha and the id)'))
    .addOption(opt('--agent <ids>', 'ESXi host ids for agents (nfsha deploy issues these itself)'))
    .addOption(opt('--operator <names>', 'operators, for status, deploy and grpcurl'))
    .addOption(opt('--etcd <name=ip[+ip…],…>', 'etcd members: server and peer certificates naming their IPs (run etcd with --client-cert-auth --trusted-ca-file ca.pem)'))
    .addOption(optDefault('--days <n>', 'validity of the issued certificates', 365).argParser(intArg))
    .addOption(opt('--renew', 're-issue certificates (rotation): the named identities, or every one in --dir when none is named'))
    .addOption(opt('--new-ca', 'start a CA rotation: a new CA signs, and new TLS directories trust the old and the new CA (then --renew)'))
    .addOption(opt('--drop-old-ca', 'end a CA rotation: new TLS directories trust only the current CA (then --renew)'))
    .action((flags) => {
      const pki = new PkiDirectory(flags.dir);
      const createdCa = !pki.hasCa();
      pki.ca();
      if (flags.newCa && !createdCa) pki.rotateCa();
      if (flags.dropOldCa) pki.dropOldCa();
      const named = identitiesFromFlags(flags);
      const rows = (named.length || !flags.renew ? named : pki.identities().map((who) => ({ who, names: undefined }))).map(({ who, names }) => {
        const wrote = pki.issue(who, { renew: flags.renew === true, days: flags.days, names: names ?? namesOf(pki, who) });
        return [`${who.role}/${who.id}`, wrote ? (flags.renew ? 'renewed' : 'created') : 'kept', pki.tlsDir(who)];
      });
      const ca = createdCa ? 'created' : flags.newCa ? 'replaced (old and new trusted: ca/trust.pem)' : flags.dropOldCa ? 'kept; old CA no longer trusted' : 'kept';
      process.stdout.write(`CA ${ca}: ${pki.caDir}/ca.pem (its key ca-key.pem stays here)\n`);
      if (rows.length) process.stdout.write('\n' + renderTable(['IDENTITY', 'CERTIFICATE', 'TLS DIRECTORY (--tls)'], rows) + '\n');
    });
}
