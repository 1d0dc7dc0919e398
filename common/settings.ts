import * as fs from 'node:fs';
import { isValidId, normalizeIp } from './address';

/**
 * What every component's settings share, with no schema library in it: the
 * error, reading the config file, validating, the defaults a schema gives,
 * and the rules the schemas' fields check. The master's and follower's
 * schemas (common/config.ts, zod) and the agent's (common/config-mini.ts,
 * zod/mini, so the agent executable carries only the checks it uses) are
 * built from these rules, and both read through validate() and defaultsOf().
 */

/** A configuration or flag error: the CLI prints it as one line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Where a master listens, and where followers, agents and `nfsha status` look for one, unless told otherwise. */
export const DEFAULT_MASTER_ADDRESS = '127.0.0.1:7410';

export const NOT_AN_IP = 'not an IP address';
export const NOT_AN_ID = 'not a valid id (letters, digits, . _ : -; at most 64)';
export const NOT_LISTEN_ADDRESS = 'expected host:port or unix:/path';
export const NOT_HOST_PORT = 'expected host:port';
export const NOT_MASTER_LIST = 'expected host:port[,host:port…]';

export const isIp = (s: string): boolean => normalizeIp(s) !== undefined;
export const isIpOrEmpty = (s: string): boolean => s === '' || isIp(s);
export const isId = isValidId;
export const isIdOrEmpty = (s: string): boolean => s === '' || isValidId(s);
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export const isListenAddress = (s: string): boolean => /^unix:\/.+/.test(s) || HOST_PORT.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535;
/** host:port, or empty for "off". */
export const isHostPortOrEmpty = (s: string): boolean => s === '' || HOST_PORT.test(s);
/** One master address, or several candidates separated by commas. */
export const isMasterList = (s: string): boolean => s.split(',').every((a) => isListenAddress(a.trim()));

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

/** What zod and zod/mini schemas both answer to (their own types stay out of this module). */
export interface ParsesTo<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
}

/** Validates merged settings (defaults < file < flags); the first problem becomes a one-line error. */
export function validate<T>(schema: ParsesTo<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? issue.path.join('.') : what;
  throw new ConfigError(`invalid ${what} setting ${where}: ${issue.message}`);
}

/**
 * What each field of an options schema is when nothing sets it: its
 * default. Fields without one (required ids, optional settings) are left out.
 */
export function defaultsOf<T>(schema: { shape: Record<string, ParsesTo<unknown>> } & ParsesTo<T>): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    const r = field.safeParse(undefined);
    if (r.success && r.data !== undefined) out[key] = r.data;
  }
  return out as Partial<T>;
}
