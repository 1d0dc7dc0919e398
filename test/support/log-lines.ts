/**
 * The lines of a log another process appends to, without a last line it
 * is still writing: a read can see half of an append (a fence's log line
 * read at the end of a chaos run failed to parse in CI).
 */
export function completeLines(text: string): string[] {
  return text.split('\n').slice(0, -1).filter(Boolean);
}
