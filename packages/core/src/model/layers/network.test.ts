import { describe, expect, it } from 'vitest';
import { Rng } from '../../util/rng.ts';
import { CpuBackend } from '../cpu-backend.ts';
import { initParameters } from '../init.ts';
import { lossAndGradient } from '../math.ts';
import { parameterLayout, tensorOffsets } from '../spec.ts';
import { planOf } from './graph.ts';
import { LayersNetwork } from './network.ts';
import type { LayerSpec, LayersLoss, LayersSpec } from './types.ts';

/** A spec whose classes are the last dense layer's units (classify) or the vocabulary. */
function model(
  inputShape: number[],
  layers: LayerSpec[],
  loss?: LayersLoss,
  classes?: number,
): LayersSpec {
  const first = layers[0]!;
  const last = layers[layers.length - 1]!;
  const read = inputShape.reduce((a, b) => a * b, 1);
  if (loss === 'next-token') {
    const vocab = first.type === 'embedding' ? first.vocab : 0;
    return { kind: 'layers', inputs: read + 1, classes: vocab, inputShape, layers, loss };
  }
  const units = classes ?? (last.type === 'dense' ? last.units : 0);
  return { kind: 'layers', inputs: read, classes: units, inputShape, layers };
}

interface Problem {
  readonly spec: LayersSpec;
  readonly rows: number;
  readonly x: Float32Array;
  readonly labels: Uint32Array | null;
}

/** Random inputs (token ids when the model starts with an embedding) and labels for `spec`. */
function problem(spec: LayersSpec, rows: number, seed: number): Problem {
  const plan = planOf(spec);
  const rng = new Rng(seed);
  const first = plan.nodes[0]!;
  const x = new Float32Array(rows * plan.features);
  for (let i = 0; i < x.length; i++) {
    x[i] = first.op === 'embedding' ? rng.int(first.vocab) : rng.normal();
  }
  const labels =
    plan.loss === 'classify'
      ? Uint32Array.from({ length: rows }, () => rng.int(plan.classes))
      : null;
  return { spec, rows, x, labels };
}

/**
 * Float64 analytic gradient against float64 central differences at up to `perTensor` entries of
 * every tensor. Parameters start from the seeded init with every entry (biases and layer-norm
 * gains included) moved by N(0, 0.1²) so no gradient is trivially zero.
 */
function gradientCheck(p: Problem, perTensor = 12): { worst: number; checked: number } {
  const layout = parameterLayout(p.spec);
  const plan = planOf(p.spec);
  const make = (n: number) => new Float64Array(n);
  const net = new LayersNetwork(plan, tensorOffsets(layout), p.rows, make);
  const rng = new Rng(99);
  const w = Float64Array.from(initParameters(layout, 5), (v) => v + 0.1 * rng.normal());
  const g = new Float64Array(layout.size);
  net.lossAndGradient(w, p.x, p.labels, p.rows, g);
  const scratchGrad = new Float64Array(layout.size);
  const lossAt = () => net.lossAndGradient(w, p.x, p.labels, p.rows, scratchGrad);
  const h = 1e-5;
  let worst = 0;
  let checked = 0;
  for (const t of layout.tensors) {
    const picks = Math.min(perTensor, t.size);
    for (let n = 0; n < picks; n++) {
      const i = t.offset + (picks === t.size ? n : rng.int(t.size));
      const keep = w[i]!;
      w[i] = keep + h;
      const up = lossAt();
      w[i] = keep - h;
      const down = lossAt();
      w[i] = keep;
      const numeric = (up - down) / (2 * h);
      const analytic = g[i]!;
      const error =
        Math.abs(numeric - analytic) / Math.max(1e-4, Math.abs(numeric) + Math.abs(analytic));
      worst = Math.max(worst, error);
      checked++;
    }
  }
  return { worst, checked };
}

/** Relative error bound of float64 central differences with h = 1e-5 on these small models. */
const GRADIENT_BOUND = 1e-6;

const perLayer: Record<string, LayersSpec> = {
  dense: model([5], [{ type: 'dense', units: 4 }]),
  'dense on positions': model(
    [3, 4],
    [{ type: 'dense', units: 2 }, { type: 'flatten' }],
    'classify',
    6,
  ),
  conv2d: model(
    [2, 7, 6],
    [
      { type: 'conv2d', filters: 3, kernel: 3, stride: 2, padding: 1 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
    ],
  ),
  maxpool2d: model(
    [2, 6, 6],
    [
      { type: 'conv2d', filters: 2, kernel: 3, padding: 1 },
      { type: 'maxpool2d', size: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
    ],
  ),
  avgpool2d: model(
    [1, 6, 6],
    [
      { type: 'conv2d', filters: 2, kernel: 3 },
      { type: 'avgpool2d', size: 3, stride: 1 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
    ],
  ),
  relu: model([6], [{ type: 'dense', units: 5 }, { type: 'relu' }, { type: 'dense', units: 3 }]),
  gelu: model([6], [{ type: 'dense', units: 5 }, { type: 'gelu' }, { type: 'dense', units: 3 }]),
  layernorm: model(
    [6],
    [{ type: 'dense', units: 5 }, { type: 'layernorm' }, { type: 'dense', units: 3 }],
  ),
  embedding: model(
    [5],
    [
      { type: 'embedding', vocab: 7, dim: 4 },
      { type: 'dense', units: 7 },
    ],
    'next-token',
  ),
  attention: model(
    [5],
    [
      { type: 'embedding', vocab: 7, dim: 8 },
      { type: 'attention', heads: 2 },
      { type: 'dense', units: 7 },
    ],
    'next-token',
  ),
  residual: model(
    [6],
    [
      { type: 'dense', units: 4 },
      { type: 'residual', layers: [{ type: 'dense', units: 4 }, { type: 'gelu' }] },
      { type: 'dense', units: 3 },
    ],
  ),
};

/** Two conv + pool stages and a dense head, as the mnist-cnn job, shrunk. */
const smallCnn = model(
  [1, 10, 10],
  [
    { type: 'conv2d', filters: 3, kernel: 3, padding: 1 },
    { type: 'relu' },
    { type: 'maxpool2d', size: 2 },
    { type: 'conv2d', filters: 4, kernel: 3 },
    { type: 'relu' },
    { type: 'avgpool2d', size: 3 },
    { type: 'flatten' },
    { type: 'dense', units: 6 },
    { type: 'relu' },
    { type: 'dense', units: 4 },
  ],
);

/** A pre-norm transformer of two blocks, as the text-lm job, shrunk. */
const smallTransformer = model(
  [6],
  [
    { type: 'embedding', vocab: 9, dim: 8 },
    ...[1, 2].flatMap((): LayerSpec[] => [
      { type: 'residual', layers: [{ type: 'layernorm' }, { type: 'attention', heads: 2 }] },
      {
        type: 'residual',
        layers: [
          { type: 'layernorm' },
          { type: 'dense', units: 16 },
          { type: 'gelu' },
          { type: 'dense', units: 8 },
        ],
      },
    ]),
    { type: 'layernorm' },
    { type: 'dense', units: 9 },
  ],
  'next-token',
);

describe('layers: gradients against float64 central differences', () => {
  for (const [name, spec] of Object.entries(perLayer)) {
    it(`${name}`, () => {
      const { worst, checked } = gradientCheck(problem(spec, 3, 11));
      expect(checked).toBeGreaterThan(4);
      expect(worst).toBeLessThan(GRADIENT_BOUND);
    });
  }

  it('a whole CNN', () => {
    const { worst } = gradientCheck(problem(smallCnn, 4, 12), 20);
    expect(worst).toBeLessThan(GRADIENT_BOUND);
  });

  it('a whole transformer', () => {
    const { worst } = gradientCheck(problem(smallTransformer, 3, 13), 20);
    expect(worst).toBeLessThan(GRADIENT_BOUND);
  });

  it('a wrong backward pass fails the check', () => {
    // The check itself must be able to fail: a gradient with one entry off is caught.
    const p = problem(perLayer.dense!, 3, 11);
    const layout = parameterLayout(p.spec);
    const net = new LayersNetwork(
      planOf(p.spec),
      tensorOffsets(layout),
      3,
      (n) => new Float64Array(n),
    );
    const w = Float64Array.from(initParameters(layout, 5));
    const g = new Float64Array(layout.size);
    net.lossAndGradient(w, p.x, p.labels, 3, g);
    const h = 1e-5;
    const wUp = w.slice();
    wUp[0] = wUp[0]! + h;
    const wDown = w.slice();
    wDown[0] = wDown[0]! - h;
    const scratch = new Float64Array(layout.size);
    const numeric =
      (net.lossAndGradient(wUp, p.x, p.labels, 3, scratch) -
        net.lossAndGradient(wDown, p.x, p.labels, 3, scratch)) /
      (2 * h);
    expect(Math.abs(numeric - g[0]!)).toBeLessThan(1e-8);
    expect(Math.abs(numeric - 1.01 * g[0]!)).toBeGreaterThan(1e-8);
  });
});

describe('layers: float32 training math', () => {
  for (const [name, spec] of [
    ['CNN', smallCnn],
    ['transformer', smallTransformer],
  ] as const) {
    it(`${name}: the float32 gradient is the float64 one up to float32 rounding`, () => {
      const p = problem(spec, 5, 21);
      const layout = parameterLayout(spec);
      const w32 = initParameters(layout, 3);
      const g32 = new Float32Array(layout.size);
      const loss32 = lossAndGradient(layout, w32, { size: p.rows, x: p.x, labels: p.labels }, g32);
      const net64 = new LayersNetwork(
        planOf(spec),
        tensorOffsets(layout),
        p.rows,
        (n) => new Float64Array(n),
      );
      const g64 = new Float64Array(layout.size);
      const loss64 = net64.lossAndGradient(Float64Array.from(w32), p.x, p.labels, p.rows, g64);
      expect(Math.abs(loss32 - loss64) / loss64).toBeLessThan(1e-5);
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < layout.size; i++) {
        diff += (g32[i]! - g64[i]!) ** 2;
        norm += g64[i]! ** 2;
      }
      expect(norm).toBeGreaterThan(0);
      expect(Math.sqrt(diff / norm)).toBeLessThan(1e-4);
    });
  }

  it('CpuBackend steps fit a CNN to a fixed batch', async () => {
    const cnn = model(
      [1, 10, 10],
      [
        { type: 'conv2d', filters: 4, kernel: 3, padding: 1 },
        { type: 'relu' },
        { type: 'maxpool2d', size: 2 },
        { type: 'conv2d', filters: 8, kernel: 3 },
        { type: 'relu' },
        { type: 'flatten' },
        { type: 'dense', units: 4 },
      ],
    );
    const p = problem(cnn, 8, 31);
    const layout = parameterLayout(cnn, 64);
    expect(layout.blockCount).toBeGreaterThan(1);
    const backend = new CpuBackend(layout, initParameters(layout, 1));
    const batch = { size: p.rows, x: p.x, labels: p.labels };
    for (let i = 0; i < 60; i++) backend.step(batch, 0.1);
    const { losses } = await backend.drainStats();
    expect(losses).toHaveLength(60);
    expect(losses[59]!).toBeLessThan(0.2 * losses[0]!);
  });

  it('a batch larger than the first reallocates and a smaller one reuses the workspace', async () => {
    const layout = parameterLayout(smallTransformer);
    const backend = new CpuBackend(layout, initParameters(layout, 1));
    const big = problem(smallTransformer, 6, 1);
    const small = problem(smallTransformer, 2, 2);
    backend.step({ size: 2, x: small.x, labels: null }, 0.05);
    backend.step({ size: 6, x: big.x, labels: null }, 0.05);
    backend.step({ size: 2, x: small.x, labels: null }, 0.05);
    const { losses } = await backend.drainStats();
    expect(losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
  });

  it('rejects a token id outside the vocabulary and leaves the parameters as they were', async () => {
    const layout = parameterLayout(smallTransformer);
    const w = initParameters(layout, 1);
    const backend = new CpuBackend(layout, w);
    const p = problem(smallTransformer, 2, 2);
    const x = p.x.slice();
    x[3] = 9;
    expect(() => backend.step({ size: 2, x, labels: null }, 0.1)).toThrow(
      /batch\.x\[3\] = 9 is not a token id below vocab = 9/,
    );
    x[3] = 1.5;
    expect(() => backend.step({ size: 2, x, labels: null }, 0.1)).toThrow(/not a token id/);
    expect(await backend.readParameters()).toEqual(w);
  });
});
