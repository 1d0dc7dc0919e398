import * as fs from 'node:fs';
import { z } from 'zod';
import { isValidId, normalizeIp } from './address';

/** A configuration or flag error: the CLI prints it as one line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const ipString = z.string().refine((s) => normalizeIp(s) !== undefined, { message: 'not an IP address' });
export const optionalIp = z.string().refine((s) => s === '' || normalizeIp(s) !== undefined, { message: 'not an IP address' });
export const idString = z.string().refine(isValidId, { message: 'not a valid id (letters, digits, . _ : -; at most 64)' });
export const optionalId = z.string().refine((s) => s === '' || isValidId(s), { message: 'not a valid id (letters, digits, . _ : -; at most 64)' });
/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export const listenAddress = z.string().refine(
  (s) => /^unix:\/.+/.test(s) || /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535,
  { message: 'expected host:port or unix:/path' },
);
/** Where a master listens, and where followers, agents and `nfsha status` look for one, unless told otherwise. */
export const DEFAULT_MASTER_ADDRESS = '127.0.0.1:7410';
/** A duration in whole milliseconds. */
export const ms = z.number().int().positive();
/** A count of things, at least one. */
export const count = z.number().int().positive();
/** host:port, or empty for "off". */
export const optionalListen = z.string().refine((s) => s === '' || /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s), { message: 'expected host:port' });
/** One master address, or several candidates separated by commas. */
export const masterList = z.string().refine((s) => s.split(',').every((a) => listenAddress.safeParse(a.trim()).success), { message: 'expected host:port[,host:port…]' });

/** `{"dir": "/etc/nfsha/tls"}` (mTLS, the default) or `{"insecure": true}` (plain text, loopback only). */
export const tlsSchema = z.union([
  z.object({ insecure: z.literal(true) }).strict(),
  z.object({ dir: z.string().min(1), refreshMs: ms.min(100).optional(), insecure: z.literal(false).optional() }).strict(),
]);

/** A command as argv (program first), no shell. */
export const argvSchema = z.array(z.string().min(1)).refine((a) => a.length === 0 || a[0].trim() !== '', { message: 'the program must not be empty' });

export const hostSchema = z.object({ id: idString, storageIp: optionalIp.optional(), mgmtIp: optionalIp.optional() }).strict();

/** Reads a JSON config file; a missing or malformed file is a ConfigError. */
export function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config ${file} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Validates merged settings (defaults < file < flags); the first problem becomes a one-line error. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? issue.path.join('.') : what;
  throw new ConfigError(`invalid ${what} setting ${where}: ${issue.message}`);
}

export const memberSchema = z.object({ serverId: idString, hostId: optionalId, storageIp: optionalIp, mgmtIp: optionalIp }).strict();

/**
 * What each field of an options schema is when nothing sets it: its
 * `.default()`. Fields without one (required ids, optional settings) are left out.
 */
export function defaultsOf<Shape extends z.ZodRawShape>(schema: z.ZodObject<Shape>): Partial<z.output<z.ZodObject<Shape>>> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    const r = (field as z.ZodType).safeParse(undefined);
    if (r.success && r.data !== undefined) out[key] = r.data;
  }
  return out as Partial<z.output<z.ZodObject<Shape>>>;
}
