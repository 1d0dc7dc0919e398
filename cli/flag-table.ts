import { Option, type Command } from 'commander';
import type * as core from 'zod/v4/core';
import { defaultsOf, readConfigFile, validate, type ParsesTo } from '../common/settings';
import { opt, tlsFromFlags, tlsOptions } from './options';

/** One flag: the setting it sets, how its text becomes the value, and its --help text. */
export interface FlagRow {
  /** As commander spells it: '--ttl-ms <ms>'. */
  flag: string;
  /** The setting it sets, a key of the component's options schema; nested with dots: 'limits.maxSessions'. */
  key: string;
  /**
   * Turns the flag's text into the setting (commander's argParser; a repeatable
   * flag gets the value so far). Default: the text as given.
   */
  parse?: (text: string, previous: unknown) => unknown;
  /** What --help says; the default shown after it is the schema's, never written here. */
  help: string;
}

/** Several flags that make one setting together, read from the parsed flags as a whole. */
export interface FlagGroup {
  key: string;
  /** The options, shown with the schema's default for the key. */
  options: (schemaDefault: unknown) => Option[];
  /** The setting the parsed flags ask for; undefined when they ask for nothing. */
  read: (flags: Record<string, unknown>) => unknown;
}

/** An options schema, in zod or zod/mini (the agent's): an object whose fields each parse. */
export type OptionsSchema = core.$ZodObject & ParsesTo<unknown> & { shape: Record<string, ParsesTo<unknown>> };

/** A command's settings: its options schema, and for every setting one flag or the reason it has none. */
export interface FlagTable<S extends OptionsSchema> {
  /** Named in errors: "invalid master setting …". */
  what: string;
  schema: S;
  rows: Array<FlagRow | FlagGroup>;
  /** Settings only a config file sets, with why. */
  fileOnly: Record<string, string>;
}

/** --tls DIR (or $NFSHA_TLS), --tls-refresh-ms and --insecure: the `tls` setting. */
export const TLS_FLAGS: FlagGroup = {
  key: 'tls',
  options: (d) => tlsOptions((d as { dir: string }).dir),
  read: tlsFromFlags,
};

/** Rows that mean the same in every command that has them. */
export const METRICS_LISTEN_FLAG: FlagRow = { flag: '--metrics-listen <addr>', key: 'metricsListen', help: 'serve Prometheus metrics on http://<addr>/metrics' };
export const MASTER_ADDRESS_FLAG: FlagRow = { flag: '--master <addr>', key: 'master', help: 'the master\'s gRPC address, or master candidates separated by commas' };

export function isGroup(row: FlagRow | FlagGroup): row is FlagGroup {
  return 'read' in row;
}

/** The schema's default for a setting, nested keys with dots; undefined when it has none. */
export function schemaDefault(schema: OptionsSchema, key: string): unknown {
  let value: unknown = defaultsOf(schema);
  for (const part of key.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

/** The options a row adds to its command (a group adds several). */
export function rowOptions(schema: OptionsSchema, row: FlagRow | FlagGroup): Option[] {
  if (isGroup(row)) return row.options(schemaDefault(schema, row.key));
  const o = opt(row.flag, row.help, schemaDefault(schema, row.key));
  const parse = row.parse;
  if (parse) o.argParser((text: string, previous: unknown) => parse(text, previous));
  return [o];
}

/** Adds `-c, --config <file>` and every row's flags to the command. */
export function addFlags<S extends OptionsSchema>(command: Command, table: FlagTable<S>): Command {
  command.addOption(opt('-c, --config <file>', 'JSON config file; flags override it'));
  for (const row of table.rows) for (const o of rowOptions(table.schema, row)) command.addOption(o);
  return command;
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  const [head, ...rest] = path;
  if (!rest.length) {
    target[head] = value;
    return;
  }
  const inner = target[head];
  const copy = typeof inner === 'object' && inner !== null && !Array.isArray(inner) ? { ...(inner as Record<string, unknown>) } : {};
  target[head] = copy;
  setAt(copy, rest, value);
}

/** `base` (a config file's settings) with what the given flags set laid over it; flags not given change nothing. */
export function applyFlags<S extends OptionsSchema>(table: FlagTable<S>, flags: Record<string, unknown>, base: Record<string, unknown> = {}): Record<string, unknown> {
  const out = { ...base };
  for (const row of table.rows) {
    const value = isGroup(row) ? row.read(flags) : flags[new Option(row.flag).attributeName()];
    if (value !== undefined) setAt(out, row.key.split('.'), value);
  }
  return out;
}

/** The command's settings: schema defaults < config file (-c) < flags, validated into one-line ConfigErrors. */
export function settingsFrom<S extends OptionsSchema>(table: FlagTable<S>, flags: Record<string, unknown>): core.output<S> {
  const merged = applyFlags(table, flags, readConfigFile(flags.config as string | undefined));
  return validate(table.schema, merged, table.what) as core.output<S>;
}
