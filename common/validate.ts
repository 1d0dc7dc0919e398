import { isValidId, normalizeIp } from './address';
import { InvalidArgument } from './errors';

/**
 * Field checks for every inbound nfsha message, used by the edge rules
 * (common/edge-rules.ts) before a handler sees the message. Each throws
 * InvalidArgument naming the field.
 */

export function requireId(field: string, value: string): void {
  if (!isValidId(value)) throw new InvalidArgument(`${field} ${JSON.stringify(clip(value))} is not a valid id (letters, digits, . _ : -; at most 64)`);
}

export function optionalId(field: string, value: string): void {
  if (value !== '') requireId(field, value);
}

export function requireIp(field: string, value: string): void {
  if (!normalizeIp(value)) throw new InvalidArgument(`${field} ${JSON.stringify(clip(value))} is not an IP address`);
}

export function optionalIp(field: string, value: string): void {
  if (value !== '') requireIp(field, value);
}

/**
 * Epochs, sequences and counters arrive as uint64 but are handled as JS
 * numbers: anything past 2^53 would silently lose precision, so it is refused.
 */
export function safeCount(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgument(`${field} ${value} is out of range (0 … 2^53-1)`);
}

/** A monotonic-clock time in ms: finite and not negative. */
export function finiteTime(field: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new InvalidArgument(`${field} ${value} is not a time (finite, not negative)`);
}

export function token(field: string, t: { epoch: number; sequence: number } | null | undefined, required: boolean): void {
  if (!t) {
    if (required) throw new InvalidArgument(`${field} is required`);
    return;
  }
  safeCount(`${field}.epoch`, t.epoch);
  safeCount(`${field}.sequence`, t.sequence);
  if (t.epoch === 0) throw new InvalidArgument(`${field}.epoch must be positive`);
}

export function maxLength(field: string, value: string, max: number): void {
  if (value.length > max) throw new InvalidArgument(`${field} is longer than ${max} characters`);
}

export function oneOf(field: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) throw new InvalidArgument(`${field} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(clip(value))}`);
}

/** Error messages echo bad input: keep them short. */
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
