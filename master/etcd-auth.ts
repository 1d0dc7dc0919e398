import type { Etcd3 } from 'etcd3';

/** The etcd role masters get: read and write under the election/registry prefix only. */
export const MASTER_ETCD_ROLE = 'nfsha-master';

/**
 * Turns on etcd's access control for nfsha, with users named by certificate
 * CN (etcd runs with --client-cert-auth, so a client's CN is its user):
 * `master/<id>` may read and write `prefix` only, and the named operators
 * administer etcd (the root role). Every other certificate of the cluster CA,
 * an agent's for one, can then do nothing in etcd. Idempotent: run it again
 * (as one of the operators) to add masters.
 */
export async function enableEtcdAuth(client: Etcd3, opts: { masters: string[]; admins: string[]; prefix?: string }): Promise<string[]> {
  const done: string[] = [];
  const users = new Set(await client.getUsers().then((us) => us.map((u) => u.name)));
  const roles = new Set(await client.getRoles().then((rs) => rs.map((r) => r.name)));
  const addUser = async (name: string, role: string) => {
    if (!users.has(name)) {
      // No password: the user can only be the holder of a certificate with that CN.
      await client.auth.userAdd({ name, password: '', options: { no_password: true } });
      users.add(name);
      done.push(`user ${name}`);
    }
    await client.auth.userGrantRole({ user: name, role });
  };
  if (!roles.has('root')) await client.role('root').create();
  if (!roles.has(MASTER_ETCD_ROLE)) {
    await client.role(MASTER_ETCD_ROLE).create();
    done.push(`role ${MASTER_ETCD_ROLE}`);
  }
  await client.role(MASTER_ETCD_ROLE).grant({ permission: 'Readwrite', range: client.range({ prefix: opts.prefix ?? 'nfsha/' }) });
  await addUser('root', 'root');
  for (const a of opts.admins) await addUser(a, 'root');
  for (const m of opts.masters) await addUser(`master/${m}`, MASTER_ETCD_ROLE);
  await client.auth.authEnable();
  return done;
}
