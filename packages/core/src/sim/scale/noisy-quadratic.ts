/**
 * The noisy quadratic model (Zhang et al. 2019, "Which Algorithmic Choices Matter at Which
 * Batch Sizes? Insights From a Noisy Quadratic Model"): loss ½·Σ hᵢwᵢ², and a per-sample
 * gradient hᵢwᵢ + √hᵢ·ξ with ξ standard normal, so the gradient noise covariance is H / B for a
 * batch of B. Under SGD every coordinate's second moment follows a linear recursion, so the
 * expected loss after t steps, and from it the ideal data-parallel speed-up at any batch size,
 * is known in closed form. The bench uses it to check itself.
 */
import { Rng } from '../../util/rng.ts';
import type { GradientStream, ScaleWorkload } from './workload.ts';

export interface NoisyQuadraticOptions {
  /** Default 100. */
  readonly dims?: number;
  /** Curvatures hᵢ = i^(−power), i = 1…dims; default 1. */
  readonly power?: number;
  /** Default 16. */
  readonly batchSize?: number;
  /** Done at this fraction of the initial loss; default 0.02. */
  readonly targetFraction?: number;
}

export interface NoisyQuadratic extends ScaleWorkload {
  readonly curvatures: Float64Array;
  /** Expected loss after `steps` SGD steps of batch `batchSize` at rate `eta`. */
  expectedLoss(steps: number, eta: number, batchSize: number): number;
  /** Fewest steps whose expected loss meets the target, or Infinity. */
  stepsToTarget(eta: number, batchSize: number): number;
}

export function noisyQuadratic(options: NoisyQuadraticOptions = {}): NoisyQuadratic {
  const dims = options.dims ?? 100;
  const power = options.power ?? 1;
  const h = new Float64Array(dims);
  for (let i = 0; i < dims; i++) h[i] = (i + 1) ** -power;
  const sqrtH = h.map(Math.sqrt);
  const initialParams = new Float32Array(dims).fill(1);
  const loss = (w: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < dims; i++) s += 0.5 * h[i]! * w[i]! * w[i]!;
    return s;
  };
  const initialLoss = loss(initialParams);
  const target = (options.targetFraction ?? 0.02) * initialLoss;
  // E[w²] after t steps: aᵗ·(m₀ − m∞) + m∞, a = (1 − ηh)², m∞ = η²h / (B·(1 − a)).
  const expectedLoss = (steps: number, eta: number, batchSize: number) => {
    let s = 0;
    for (let i = 0; i < dims; i++) {
      const a = (1 - eta * h[i]!) ** 2;
      if (a >= 1) return Infinity;
      const mInf = (eta * eta * h[i]!) / (batchSize * (1 - a));
      const m = a ** steps * (1 - mInf) + mInf;
      s += 0.5 * h[i]! * m;
    }
    return s;
  };
  const stepsToTarget = (eta: number, batchSize: number) => {
    if (!(expectedLoss(1e9, eta, batchSize) < target)) return Infinity;
    let hi = 1;
    while (expectedLoss(hi, eta, batchSize) > target) hi *= 2;
    let lo = hi / 2;
    if (hi === 1) return 1;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (expectedLoss(mid, eta, batchSize) > target) lo = mid;
      else hi = mid;
    }
    return hi;
  };
  return {
    name: `quadratic-${dims}`,
    size: dims,
    blockSize: dims,
    batchSize: options.batchSize ?? 16,
    initialParams,
    higherIsBetter: false,
    target,
    metric: 'loss ½·Σ hᵢwᵢ²',
    learningRates: [0.03, 0.06, 0.125, 0.25, 0.5, 1, 1.5, 1.9],
    quality: loss,
    curvatures: h,
    expectedLoss,
    stepsToTarget,
    stream(index, seed): GradientStream {
      const r = new Rng((seed * 2_654_435 + index * 40_503 + 11) >>> 0);
      return {
        gradient(params, out, batchSize) {
          const noise = 1 / Math.sqrt(batchSize);
          for (let i = 0; i < dims; i++) {
            out[i] = h[i]! * params[i]! + noise * sqrtH[i]! * r.normal();
          }
        },
      };
    },
  };
}
