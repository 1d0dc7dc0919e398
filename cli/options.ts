import { InvalidArgumentError, Option } from 'commander';

/** An option whose default is shown in --help but applied only after the config file. */
export function opt(flags: string, description: string, shownDefault?: unknown): Option {
  const o = new Option(flags, description);
  if (shownDefault !== undefined && shownDefault !== '') o.defaultValueDescription = JSON.stringify(shownDefault);
  if (shownDefault !== undefined && shownDefault !== '') o.description = `${description} (default: ${JSON.stringify(shownDefault)})`;
  return o;
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

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Drops undefined entries so flags override the config file only where given. */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
