/** min / median / p99 / max of a sample, in the sample's unit. */
export function summarize(xs: number[]): { n: number; min: number; median: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, min: s[0], median: q(0.5), p99: q(0.99), max: s[s.length - 1] };
}
