import type { Token } from '../common/token';

/**
 * Issues fencing tokens (epoch, sequence). Within an epoch the sequence only
 * grows; a later leader has a larger epoch, so tokens only ever grow.
 */
export class FencingTokens {
  private sequence = 0;

  constructor(readonly epoch: number) {
    if (!Number.isSafeInteger(epoch) || epoch < 1) throw new RangeError(`epoch must be a positive integer, got ${epoch}`);
  }

  next(): Token {
    this.sequence += 1;
    return { epoch: this.epoch, sequence: this.sequence };
  }
}
