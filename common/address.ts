import { isIP } from 'node:net';

/**
 * Normalizes a client or server address: IPv4-mapped IPv6 (`::ffff:10.0.0.1`,
 * as Node reports IPv4 peers on dual-stack sockets) becomes plain IPv4.
 * Returns undefined when the text is not an IP address.
 */
export function normalizeIp(text: string): string | undefined {
  const trimmed = text.trim();
  const unmapped = trimmed.toLowerCase().startsWith('::ffff:') && isIP(trimmed.slice(7)) === 4
    ? trimmed.slice(7)
    : trimmed;
  return isIP(unmapped) ? unmapped : undefined;
}


/** Ids of servers, hosts and sessions: short, printable, safe in logs and file names. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}
