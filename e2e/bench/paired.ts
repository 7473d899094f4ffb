/**
 * Ratios between two backends from paired rounds: the suite runs one repetition of every
 * backend per round (timing.ts), so round i of A and round i of B saw the same machine load.
 * The ratio reported is the median of the per-round ratios, with a distribution-free 95%
 * interval for that median from order statistics (the binomial sign-test interval).
 */

export interface PairedRatio {
  readonly median: number;
  /** [low, high], covering the true median with at least 95% probability; null under 6 rounds. */
  readonly interval: readonly [number, number] | null;
  readonly rounds: number;
}

/** P(X ≤ k) for X ~ Binomial(n, ½). */
function binomialHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n;
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term = (term * (n - i + 1)) / i;
    sum += term;
  }
  return sum;
}

/** Per-round a[i] / b[i]; null when the rounds do not pair up or none is usable. */
export function pairedRatio(a: readonly number[], b: readonly number[]): PairedRatio | null {
  if (a.length === 0 || a.length !== b.length) return null;
  const ratios = a.map((v, i) => v / b[i]!).filter(Number.isFinite);
  if (ratios.length !== a.length) return null;
  ratios.sort((x, y) => x - y);
  const n = ratios.length;
  const mid = n >> 1;
  const median = n % 2 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
  // The largest j (1-based) with P(X < j) ≤ 2.5%: then [x_(j), x_(n+1−j)] covers ≥ 95%.
  let j = 0;
  while (j + 1 <= n && binomialHalfCdf(n, j) <= 0.025) j++;
  const interval: readonly [number, number] | null =
    j >= 1 ? [ratios[j - 1]!, ratios[n - j]!] : null;
  return { median, interval, rounds: n };
}
