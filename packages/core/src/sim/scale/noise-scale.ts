/**
 * The simple gradient noise scale B_simple = tr(Σ) / |G|² of McCandlish et al. 2018 ("An
 * Empirical Model of Large-Batch Training"): Σ the per-sample gradient covariance, G the true
 * gradient. Batches well below it train at almost the same cost per sample, so it says how many
 * workers' batches any data-parallel method can add before more samples stop buying speed.
 */
import type { ScaleWorkload } from './workload.ts';

/** Estimates B_simple at `params` from `samples` per-sample gradients of a fresh stream. */
export function gradientNoiseScale(
  workload: ScaleWorkload,
  params: Float32Array,
  samples = 1_024,
  seed = 99,
): { readonly bSimple: number; readonly traceSigma: number; readonly gradNormSq: number } {
  const n = workload.size;
  const stream = workload.stream(1_000_000, seed);
  const g = new Float32Array(n);
  const mean = new Float64Array(n);
  let sumSq = 0;
  for (let s = 0; s < samples; s++) {
    stream.gradient(params, g, 1);
    for (let i = 0; i < n; i++) {
      mean[i]! += g[i]!;
      sumSq += g[i]! * g[i]!;
    }
  }
  let meanSq = 0;
  for (let i = 0; i < n; i++) {
    mean[i]! /= samples;
    meanSq += mean[i]! * mean[i]!;
  }
  // Unbiased: E|ḡ|² = |G|² + tr(Σ)/n and E[mean |gᵢ|²] = |G|² + tr(Σ).
  const traceSigma = ((sumSq / samples - meanSq) * samples) / (samples - 1);
  const gradNormSq = Math.max(meanSq - traceSigma / samples, Number.MIN_VALUE);
  return { bSimple: traceSigma / gradNormSq, traceSigma, gradNormSq };
}
