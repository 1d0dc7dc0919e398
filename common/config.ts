import { z } from 'zod';
import { NOT_AN_ID, NOT_AN_IP, NOT_HOST_PORT, NOT_LISTEN_ADDRESS, NOT_MASTER_LIST, isHostPortOrEmpty, isId, isIdOrEmpty, isIp, isIpOrEmpty, isListenAddress, isMasterList } from './settings';

export const ipString = z.string().refine(isIp, { message: NOT_AN_IP });
export const optionalIp = z.string().refine(isIpOrEmpty, { message: NOT_AN_IP });
export const idString = z.string().refine(isId, { message: NOT_AN_ID });
export const optionalId = z.string().refine(isIdOrEmpty, { message: NOT_AN_ID });
/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export const listenAddress = z.string().refine(isListenAddress, { message: NOT_LISTEN_ADDRESS });
/** A duration in whole milliseconds. */
export const ms = z.number().int().positive();
/** A count of things, at least one. */
export const count = z.number().int().positive();
/** host:port, or empty for "off". */
export const optionalListen = z.string().refine(isHostPortOrEmpty, { message: NOT_HOST_PORT });
/** One master address, or several candidates separated by commas. */
export const masterList = z.string().refine(isMasterList, { message: NOT_MASTER_LIST });

/** `{"dir": "/etc/nfsha/tls"}` (mTLS, the default) or `{"insecure": true}` (plain text, loopback only). */
export const tlsSchema = z.union([
  z.object({ insecure: z.literal(true) }).strict(),
  z.object({ dir: z.string().min(1), refreshMs: ms.min(100).optional(), insecure: z.literal(false).optional() }).strict(),
]);

/** A command as argv (program first), no shell. */
export const argvSchema = z.array(z.string().min(1)).refine((a) => a.length === 0 || a[0].trim() !== '', { message: 'the program must not be empty' });

export const hostSchema = z.object({ id: idString, storageIp: optionalIp.optional(), mgmtIp: optionalIp.optional() }).strict();

export const memberSchema = z.object({ serverId: idString, hostId: optionalId, storageIp: optionalIp, mgmtIp: optionalIp }).strict();
