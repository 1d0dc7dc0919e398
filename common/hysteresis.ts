export type ProbeState = 'unknown' | 'up' | 'down';

/**
 * Hysteresis for one probe target: one answer makes it up, `missesToFail`
 * consecutive misses make it down (DESIGN §5: 3 misses at 500 ms ≈ 1.5 s;
 * the agent probes its local SCVM on a loop of its own, 3 misses at 100 ms).
 */
export class ProbeTracker {
  private misses = 0;
  state: ProbeState = 'unknown';
  /** When the target last went up (agent clock ms), while it is up. */
  upSince?: number;

  constructor(private readonly missesToFail: number) {}

  record(answered: boolean, now: number): void {
    if (answered) {
      this.misses = 0;
      if (this.state !== 'up') {
        this.state = 'up';
        this.upSince = now;
      }
      return;
    }
    this.misses += 1;
    if (this.misses >= this.missesToFail && this.state !== 'down') {
      this.state = 'down';
      this.upSince = undefined;
    }
  }
}
