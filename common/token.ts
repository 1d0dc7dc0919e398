/** A grant's fencing token: ordered by epoch, then sequence. */
export interface Token {
  epoch: number;
  sequence: number;
}

export function compareTokens(a: Token, b: Token): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.sequence - b.sequence;
}

export function formatToken(t: Token): string {
  return `${t.epoch}.${t.sequence}`;
}
