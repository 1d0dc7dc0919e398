import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_TLS_DIR, DEFAULT_TLS_REFRESH_MS, loadOwnIdentity, type TlsSettings } from '../common/tls';
import { isValidId } from '../common/address';
import { ConfigError } from '../common/settings';
import { parseArgv } from '../common/fence-command';

/**
 * An option whose default is shown in --help but applied only after the
 * config file. An empty default ('' or []) means "off" and is not shown.
 */
export function opt(flags: string, description: string, shownDefault?: unknown): Option {
  const o = new Option(flags, description);
  const empty = shownDefault === undefined || shownDefault === '' || (Array.isArray(shownDefault) && shownDefault.length === 0);
  if (!empty) {
    o.defaultValueDescription = JSON.stringify(shownDefault);
    o.description = `${description} (default: ${o.defaultValueDescription})`;
  }
  return o;
}

/** An option of a command without a config file: commander applies the default itself, and --help shows it. */
export function optDefault(flags: string, description: string, value: unknown): Option {
  return new Option(flags, description).default(value);
}

export function intArg(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

export function floatArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/** `a, b,,c` → ['a', 'b', 'c']: a comma-separated flag value. */
export function commaList(text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** A comma-separated list of ids; one that is not a valid id is a ConfigError naming the flag. */
export function idList(text: string | undefined, flag: string): string[] {
  const list = commaList(text);
  for (const id of list) if (!isValidId(id)) throw new ConfigError(`${flag} ${JSON.stringify(id)} is not a valid id`);
  return list;
}

/** A command flag (JSON array or words) as argv; a malformed one is a ConfigError naming the flag. */
export function argvFlag(text: string, flag: string): string[] {
  try {
    return parseArgv(text);
  } catch (err) {
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * --tls DIR (or $NFSHA_TLS) names the TLS directory made by `nfsha init`;
 * --insecure asks for plain text, allowed on loopback addresses only.
 */
export function tlsOptions(defaultDir: string): Option[] {
  return [
    opt('--tls <dir>', 'TLS directory (ca.pem, cert.pem, key.pem) made by "nfsha init"', defaultDir).env('NFSHA_TLS'),
    opt('--tls-refresh-ms <ms>', 're-read the TLS files this often, so renewed certificates apply without a restart', DEFAULT_TLS_REFRESH_MS).argParser(intArg),
    opt('--insecure', 'plain-text gRPC without authentication: loopback development only'),
  ];
}

export function addTlsOptions(cmd: Command, defaultDir = DEFAULT_TLS_DIR): Command {
  for (const o of tlsOptions(defaultDir)) cmd.addOption(o);
  return cmd;
}

/** The TLS settings the flags ask for; undefined when they ask for nothing (config file or default applies). */
export function tlsFromFlags(flags: { tls?: string; tlsRefreshMs?: number; insecure?: boolean }): TlsSettings | undefined {
  if (flags.insecure) return { insecure: true };
  if (flags.tls) return flags.tlsRefreshMs ? { dir: flags.tls, refreshMs: flags.tlsRefreshMs } : { dir: flags.tls };
  return undefined;
}

/** An operator's TLS settings for status and deploy: checked up front, so a missing directory is one clear line. */
export function operatorTls(flags: { tls?: string; tlsRefreshMs?: number; insecure?: boolean }): TlsSettings {
  const tls = tlsFromFlags(flags) ?? { dir: DEFAULT_TLS_DIR };
  if (!tls.insecure) loadOwnIdentity(tls.dir, ['operator', 'master']);
  return tls;
}
