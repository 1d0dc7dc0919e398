import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { NOT_AN_ID, NOT_AN_IP, NOT_HOST_PORT, NOT_MASTER_LIST, isHostPortOrEmpty, isId, isIdOrEmpty, isIp, isIpOrEmpty, isMasterList } from './settings';

/**
 * The agent's schema parts in zod/mini (issue 20: lean agent): the same
 * rules and messages as common/config.ts, but functions an executable
 * carries only if it uses them (the agent's bundle keeps about 20 KB of zod
 * instead of 450 KB, and about 9 MiB less resident). zod/mini speaks only
 * through a locale: English, as zod's classic API does by default.
 */
z.config(en());

export const ipString = z.string().check(z.refine(isIp, { message: NOT_AN_IP }));
export const optionalIp = z.string().check(z.refine(isIpOrEmpty, { message: NOT_AN_IP }));
export const idString = z.string().check(z.refine(isId, { message: NOT_AN_ID }));
export const optionalId = z.string().check(z.refine(isIdOrEmpty, { message: NOT_AN_ID }));
/** A duration in whole milliseconds, at least `min`. */
export const msAtLeast = (min = 1) => z.int().check(z.positive(), ...(min > 1 ? [z.minimum(min)] : []));
/** A whole number in [min, max]. */
export const intIn = (min: number, max?: number) => z.int().check(z.minimum(min), ...(max === undefined ? [] : [z.maximum(max)]));
/** host:port, or empty for "off". */
export const optionalListen = z.string().check(z.refine(isHostPortOrEmpty, { message: NOT_HOST_PORT }));
/** One master address, or several candidates separated by commas. */
export const masterList = z.string().check(z.refine(isMasterList, { message: NOT_MASTER_LIST }));

/** `{"dir": "/etc/nfsha/tls"}` (mTLS, the default) or `{"insecure": true}` (plain text, loopback only). */
export const tlsSchema = z.union([
  z.strictObject({ insecure: z.literal(true) }),
  z.strictObject({ dir: z.string().check(z.minLength(1)), refreshMs: z.optional(msAtLeast(100)), insecure: z.optional(z.literal(false)) }),
]);

export const memberSchema = z.strictObject({ serverId: idString, hostId: optionalId, storageIp: optionalIp, mgmtIp: optionalIp });
