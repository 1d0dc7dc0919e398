import { isValidId } from './address';

/**
 * Who a certificate names: `spiffe://nfsha/<role>/<id>` in its subject
 * alternative names. Apart from pki.ts so that checking a peer (every
 * component, the agent too) does not load the certificate-issuing code.
 */

export const ROLES = ['master', 'follower', 'gate', 'agent', 'operator', 'etcd'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  role: Role;
  id: string;
}

const URI_PREFIX = 'spiffe://nfsha/';

export function identityUri(who: Identity): string {
  return `${URI_PREFIX}${who.role}/${who.id}`;
}

export function formatIdentity(who: Identity): string {
  return `${who.role}/${who.id}`;
}

/** `follower/scvm-1` → an identity; undefined when the text is not one. */
export function parseIdentity(text: string): Identity | undefined {
  const slash = text.indexOf('/');
  const role = text.slice(0, slash) as Role;
  const id = text.slice(slash + 1);
  return slash > 0 && ROLES.includes(role) && isValidId(id) ? { role, id } : undefined;
}

/**
 * The nfsha identity named by a certificate's subject alternative names, as
 * Node reports them (`URI:spiffe://nfsha/follower/scvm-1, DNS:…`). A
 * certificate naming none, or more than one, has no identity.
 */
export function identityFromAltNames(altNames: string | undefined): Identity | undefined {
  if (!altNames) return undefined;
  const found = altNames.split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith(`URI:${URI_PREFIX}`))
    .map((s) => parseIdentity(s.slice(4 + URI_PREFIX.length)));
  return found.length === 1 ? found[0] : undefined;
}
