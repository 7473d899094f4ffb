/**
 * Kernel checks of the layers kind: every kernel of kernels/layers/ against core's own layer ops
 * (layers/op.ts, spatial.ts, sequence.ts) run in float64 on the same float32 inputs, on fresh random inputs,
 * with poisoned outputs. The condition of each output (Σ|terms| of its sum) comes from running
 * the same float64 op on |inputs|, so a bound is the float32 error bound of that sum, not a
 * tolerance picked to pass.
 */
import type {
  Conv2dNode,
  DenseNode,
  AttentionNode,
  ElementwiseNode,
  EmbeddingNode,
  LayerNormNode,
  FloatArray,
  LayerSpec,
  Op,
  PlanNode,
  PoolNode,
  Rng,
} from '@meshgrad/core';
import {
  AttentionOp,
  Conv2dOp,
  DenseOp,
  ElementwiseOp,
  EmbeddingOp,
  LayerNormOp,
  planLayers,
  PoolOp,
} from '@meshgrad/core';
import type { Kernel } from '../kernels/programs.ts';
import type { Activation, ConvGeometry, PoolGeometry } from '../kernels/layers/programs.ts';
import {
  layersConvBackwardInputKernel,
  layersConvBackwardWeightsKernel,
  layersConvForwardKernel,
  layersDenseBackwardInputKernel,
  layersDenseBackwardWeightsKernel,
  layersDenseForwardKernel,
  attentionRegionSizes,
  layersAttentionKernel,
  layersElementwiseKernel,
  layersEmbeddingBackwardKernel,
  layersEmbeddingForwardKernel,
  layersNextTokenSampleKernel,
  layersNextTokenScoreKernel,
  layersLayerNormBackwardInputKernel,
  layersLayerNormBackwardParamsKernel,
  layersLayerNormForwardKernel,
  layersPoolBackwardKernel,
  layersPoolForwardKernel,
  LAYERNORM_STATS_PER_ROW,
} from '../kernels/layers/programs.ts';
import type { Check, Harness } from './harness.ts';
import { maxRelative, randomArray, result } from './harness.ts';
import { F32_U, gamma } from './reference.ts';

const f64 = (n: number) => new Float64Array(n);
const abs64 = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The plan node core makes of `layer` reading `inputShape` (a two-class head is appended). */
function nodeFor(inputShape: number[], layer: LayerSpec): PlanNode {
  const plan = planLayers({
    kind: 'layers',
    inputs: product(inputShape),
    classes: 2,
    inputShape,
    layers: [layer, { type: 'flatten' }, { type: 'dense', units: 2 }],
  });
  return plan.nodes[0]!;
}

/**
 * Parameter offsets for a layer with a weight and a bias: both at odd offsets with a gap between
 * them, so a kernel that assumes alignment or adjacency reads the wrong floats.
 */
function tensorPlacement(weightSize: number, biasSize: number) {
  const weight = 3;
  const bias = weight + weightSize + 5;
  return { weight, bias, size: bias + biasSize + 7 };
}

/** Float64 forward (and backward when dy is given) of one core op. */
function runOp(
  make: () => Op,
  p: FloatArray,
  x: FloatArray,
  rows: number,
  dy: FloatArray | null,
): { out: Float64Array; dx: Float64Array; g: Float64Array } {
  const op = make();
  op.forward(p, x, rows);
  const out = Float64Array.from(op.out.subarray(0, rows * op.outSize));
  const dx = f64(x.length);
  const g = f64(p.length);
  if (dy) {
    op.dOut.set(dy);
    op.backward(p, x, dx, g, rows);
  }
  return { out, dx, g };
}

/**
 * Reference values and conditions: the op on the inputs, and on their absolute values (with
 * `absX` false the input x is kept, so max pooling picks the same winners).
 */
function reference(
  make: () => Op,
  p: Float32Array,
  x: Float32Array,
  rows: number,
  dy: Float32Array | null,
  absX = true,
) {
  const exact = runOp(
    make,
    Float64Array.from(p),
    Float64Array.from(x),
    rows,
    dy && Float64Array.from(dy),
  );
  const scale = runOp(
    make,
    abs64(p),
    absX ? abs64(x) : Float64Array.from(x),
    rows,
    dy && abs64(dy),
  );
  return { exact, scale };
}

/** Writes outside [start, end) ∪ … of a poisoned buffer: each must still be NaN. */
function strayWrites(all: Float32Array, ranges: readonly (readonly [number, number])[]): number {
  let stray = 0;
  for (let i = 0; i < all.length; i++) {
    if (ranges.some(([a, b]) => i >= a && i < b)) continue;
    if (!Number.isNaN(all[i]!)) stray++;
  }
  return stray;
}

async function runKernel(
  h: Harness,
  kernel: Kernel,
  rows: number,
  buffers: Record<string, GPUBuffer>,
): Promise<void> {
  await h.run(kernel.program, { step: h.step({ batch: rows }), ...buffers }, kernel.grid(rows));
}

function activate64(act: Activation, v: Float64Array): Float64Array {
  if (act === 'none') return v;
  const c = Math.sqrt(2 / Math.PI);
  return v.map((z) =>
    act === 'relu' ? Math.max(z, 0) : 0.5 * z * (1 + Math.tanh(c * (z + 0.044715 * z ** 3))),
  );
}

/**
 * Bound of an epilogue activation on a sum with bound γ: ReLU is exact and GELU's slope is at
 * most 1.13, plus its own evaluation (tanh from exp, a few products), which the tests measure at
 * a few units of F32_U relative to the sum's condition.
 */
function epilogueBound(act: Activation, g: number): number {
  return act === 'gelu' ? 1.13 * g + 16 * F32_U : g;
}

// ---------------------------------------------------------------------------------------------
// Dense (the GEMM with its epilogues)

function denseCase(rng: Rng, inputShape: number[], units: number, rows: number) {
  const node = nodeFor(inputShape, { type: 'dense', units }) as DenseNode;
  const place = tensorPlacement(node.inWidth * node.outWidth, node.outWidth);
  const p = randomArray(rng, place.size);
  const x = randomArray(rng, rows * product(inputShape), 1, 0.1);
  const geometry = { ...node, weight: place.weight, bias: place.bias };
  const make = () => new DenseOp(node, [place.weight, place.bias], rows, f64);
  return { node, place, p, x, geometry, make };
}

function denseForwardCheck(
  rows: number,
  inputShape: number[],
  units: number,
  act: Activation,
): Check {
  return async ({ h, rng }) => {
    const { node, p, x, geometry, make } = denseCase(rng, inputShape, units, rows);
    const kernel = layersDenseForwardKernel(geometry, act);
    const count = rows * node.positions * node.outWidth;
    const y = h.buffer(null, count * 4);
    await runKernel(h, kernel, rows, { x: h.buffer(x), params: h.buffer(p), y });
    const gpu = await h.readF32(y, count);
    const { exact, scale } = reference(make, p, x, rows, null);
    const bound = epilogueBound(act, gamma(node.inWidth + 1));
    return result(
      `layers-gemm dense-forward${act === 'none' ? '' : ` ${act}`} ${rows}×[${inputShape.join(',')}]->${units}`,
      maxRelative(gpu, activate64(act, exact.out), scale.out),
      bound,
      `|Δy| / (Σ|x·W| + |b|), bound ${act === 'gelu' ? '1.13·γ + 16u' : 'γ'}_${node.inWidth + 1}`,
    );
  };
}

function denseBackwardCheck(rows: number, inputShape: number[], units: number): Check {
  return async ({ h, rng }) => {
    const { node, place, p, x, geometry, make } = denseCase(rng, inputShape, units, rows);
    const m = rows * node.positions;
    const dy = randomArray(rng, m * node.outWidth, 0.1);
    const weights = layersDenseBackwardWeightsKernel(geometry);
    const input = layersDenseBackwardInputKernel(geometry);
    const grad = h.buffer(null, place.size * 4);
    const dx = h.buffer(null, m * node.inWidth * 4);
    const dyB = h.buffer(dy);
    await runKernel(h, weights, rows, { dy: dyB, x: h.buffer(x), grad });
    await runKernel(h, input, rows, { dy: dyB, params: h.buffer(p), dx });
    const gAll = await h.readF32(grad, place.size);
    const dxGpu = await h.readF32(dx, m * node.inWidth);
    const { exact, scale } = reference(make, p, x, rows, dy);
    const wEnd = place.weight + node.inWidth * node.outWidth;
    const bEnd = place.bias + node.outWidth;
    const tensors = [
      [place.weight, wEnd],
      [place.bias, bEnd],
    ] as const;
    const eW = Math.max(
      ...tensors.map(([a, b]) =>
        maxRelative(gAll.subarray(a, b), exact.g.subarray(a, b), scale.g.subarray(a, b)),
      ),
    );
    const eX = maxRelative(dxGpu, exact.dx, scale.dx);
    const stray = strayWrites(gAll, tensors);
    // Both relative to the bound of their own sum: the check passes when both are within it.
    const worst = Math.max(eW / gamma(m), eX / gamma(node.outWidth));
    return result(
      `layers-gemm dense-backward ${rows}×[${inputShape.join(',')}]->${units}`,
      worst,
      1,
      `max(|Δ[∂W; ∂b]| / Σ|dY·x| / γ_${m}, |Δdx| / Σ|dY·W| / γ_${node.outWidth}): ${eW.toExponential(2)}, ${eX.toExponential(2)}; ${stray} gradient writes outside the tensors`,
      stray === 0,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// conv2d (implicit GEMM)

function convCase(
  rng: Rng,
  inputShape: [number, number, number],
  layer: { filters: number; kernel: number; stride: number; padding: number },
  rows: number,
) {
  const node = nodeFor(inputShape, { type: 'conv2d', ...layer }) as Conv2dNode;
  const patch = node.channels * node.kernel * node.kernel;
  const place = tensorPlacement(node.filters * patch, node.filters);
  const p = randomArray(rng, place.size);
  const x = randomArray(rng, rows * product(inputShape), 1, 0.1);
  const geometry: ConvGeometry = { ...node, weight: place.weight, bias: place.bias };
  const make = () => new Conv2dOp(node, [place.weight, place.bias], rows, f64);
  return { node, patch, place, p, x, geometry, make };
}

function convLabel(rows: number, n: Conv2dNode): string {
  return `${rows}×[${n.channels},${n.height},${n.width}] ${n.filters}f k${n.kernel} s${n.stride} p${n.padding}`;
}

function convForwardCheck(
  rows: number,
  inputShape: [number, number, number],
  layer: { filters: number; kernel: number; stride: number; padding: number },
  act: Activation,
): Check {
  return async ({ h, rng }) => {
    const { node, patch, p, x, geometry, make } = convCase(rng, inputShape, layer, rows);
    const kernel = layersConvForwardKernel(geometry, act);
    const count = rows * node.filters * node.outHeight * node.outWidth;
    const y = h.buffer(null, count * 4);
    await runKernel(h, kernel, rows, { x: h.buffer(x), params: h.buffer(p), y });
    const gpu = await h.readF32(y, count);
    const { exact, scale } = reference(make, p, x, rows, null);
    return result(
      `layers-conv2d forward${act === 'none' ? '' : ` ${act}`} ${convLabel(rows, node)}`,
      maxRelative(gpu, activate64(act, exact.out), scale.out),
      epilogueBound(act, gamma(patch + 1)),
      `|Δy| / (Σ|W·col| + |b|), bound ${act === 'gelu' ? '1.13·γ + 16u' : 'γ'}_${patch + 1}`,
    );
  };
}

function convBackwardCheck(
  rows: number,
  inputShape: [number, number, number],
  layer: { filters: number; kernel: number; stride: number; padding: number },
): Check {
  return async ({ h, rng }) => {
    const { node, patch, place, p, x, geometry, make } = convCase(rng, inputShape, layer, rows);
    const pixels = node.outHeight * node.outWidth;
    const dy = randomArray(rng, rows * node.filters * pixels, 0.1);
    const grad = h.buffer(null, place.size * 4);
    const dx = h.buffer(null, x.length * 4);
    const dyB = h.buffer(dy);
    await runKernel(h, layersConvBackwardWeightsKernel(geometry), rows, {
      dy: dyB,
      x: h.buffer(x),
      grad,
    });
    await runKernel(h, layersConvBackwardInputKernel(geometry), rows, {
      dy: dyB,
      params: h.buffer(p),
      dx,
    });
    const gAll = await h.readF32(grad, place.size);
    const dxGpu = await h.readF32(dx, x.length);
    const { exact, scale } = reference(make, p, x, rows, dy);
    const tensors = [
      [place.weight, place.weight + node.filters * patch],
      [place.bias, place.bias + node.filters],
    ] as const;
    const eW = Math.max(
      ...tensors.map(([a, b]) =>
        maxRelative(gAll.subarray(a, b), exact.g.subarray(a, b), scale.g.subarray(a, b)),
      ),
    );
    const eX = maxRelative(dxGpu, exact.dx, scale.dx);
    const stray = strayWrites(gAll, tensors);
    const kW = rows * pixels;
    const kX = node.filters * node.kernel * node.kernel;
    const worst = Math.max(eW / gamma(kW), eX / gamma(kX));
    return result(
      `layers-conv2d backward ${convLabel(rows, node)}`,
      worst,
      1,
      `max(|Δ[∂W; ∂b]| / Σ|dY·col| / γ_${kW}, |Δdx| / Σ|W·dY| / γ_${kX}): ${eW.toExponential(2)}, ${eX.toExponential(2)}; ${stray} gradient writes outside the tensors`,
      stray === 0,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Pooling

function poolCheck(
  rows: number,
  inputShape: [number, number, number],
  type: 'maxpool2d' | 'avgpool2d',
  size: number,
  stride: number,
): Check {
  return async ({ h, rng }) => {
    const node = nodeFor(inputShape, { type, size, stride }) as PoolNode;
    const geometry: PoolGeometry = { ...node, max: type === 'maxpool2d' };
    const x = randomArray(rng, rows * product(inputShape));
    const outCount = rows * node.channels * node.outHeight * node.outWidth;
    const dy = randomArray(rng, outCount, 0.1);
    const y = h.buffer(null, outCount * 4);
    const winner = h.buffer(null, outCount * 4, 0xdeadbeef);
    const dx = h.buffer(null, x.length * 4);
    await runKernel(h, layersPoolForwardKernel(geometry), rows, { x: h.buffer(x), y, winner });
    await runKernel(h, layersPoolBackwardKernel(geometry), rows, { dy: h.buffer(dy), winner, dx });
    const yGpu = await h.readF32(y, outCount);
    const dxGpu = await h.readF32(dx, x.length);
    const make = () => new PoolOp(node, rows, f64);
    const { exact, scale } = reference(make, new Float32Array(0), x, rows, dy, !geometry.max);
    const window = size * size;
    // Max: the forward is exact and each input gathers from at most ⌈size/stride⌉² windows.
    const overlap = Math.ceil(size / stride) ** 2;
    const boundY = geometry.max ? 0 : gamma(window + 1);
    const boundX = gamma(overlap + (geometry.max ? 0 : 1));
    const eY = maxRelative(yGpu, exact.out, scale.out);
    const eX = maxRelative(dxGpu, exact.dx, scale.dx);
    const worst = Math.max(boundY === 0 ? (eY === 0 ? 0 : Infinity) : eY / boundY, eX / boundX);
    return result(
      `layers-${type} forward + backward ${rows}×[${inputShape.join(',')}] size ${size} stride ${stride}`,
      worst,
      1,
      `max(|Δy| / ${geometry.max ? 'exact' : `(Σ|x|/k²) / γ_${window + 1}`}, |Δdx| / Σ|dY| / γ_${overlap + (geometry.max ? 0 : 1)}): ${eY.toExponential(2)}, ${eX.toExponential(2)}`,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Elementwise: ReLU, GELU, residual add

function activationCheck(rows: number, perSample: number, op: 'relu' | 'gelu'): Check {
  return async ({ h, rng }) => {
    // Wide inputs, so GELU's tanh saturates in both directions too; some exact zeros for ReLU'.
    const x = randomArray(rng, rows * perSample, 8, 0.05);
    const dy = randomArray(rng, rows * perSample, 0.1);
    const y = h.buffer(null, x.length * 4);
    const dx = h.buffer(null, x.length * 4);
    const xB = h.buffer(x);
    await runKernel(h, layersElementwiseKernel(op, false, perSample), rows, {
      src: xB,
      aux: xB,
      dst: y,
    });
    await runKernel(h, layersElementwiseKernel(op, true, perSample), rows, {
      src: xB,
      aux: h.buffer(dy),
      dst: dx,
    });
    const yGpu = await h.readF32(y, x.length);
    const dxGpu = await h.readF32(dx, x.length);
    const node = nodeFor([perSample], { type: op }) as ElementwiseNode;
    const make = () => new ElementwiseOp(node, rows, f64);
    const { exact } = reference(make, new Float32Array(0), x, rows, dy);
    if (op === 'relu') {
      // A max and a select: bit-exact.
      const eY = maxRelative(yGpu, exact.out, 0);
      const eX = maxRelative(dxGpu, exact.dx, 0);
      return result(
        `layers-relu forward + backward ${rows}×${perSample}`,
        Math.max(eY, eX),
        0,
        `exact match required: y ${eY}, dx ${eX}`,
      );
    }
    // GELU: y relative to |x| (GELU(x) = x·Φ̃(x), |Φ̃| ≤ 1); dx relative to |dy|·(1 + |x|),
    // the size of the slope's terms. The bound covers exp and a handful of roundings.
    const eY = maxRelative(yGpu, exact.out, abs64(x));
    const eX = maxRelative(
      dxGpu,
      exact.dx,
      Float64Array.from(x, (v, i) => Math.abs(dy[i]!) * (1 + Math.abs(v))),
    );
    return result(
      `layers-gelu forward + backward ${rows}×${perSample}`,
      Math.max(eY, eX),
      32 * F32_U,
      `|Δy| / |x| ${eY.toExponential(2)}, |Δdx| / (|dy|·(1 + |x|)) ${eX.toExponential(2)}, bound 32u`,
    );
  };
}

function residualAddCheck(rows: number, perSample: number): Check {
  return async ({ h, rng }) => {
    const a = randomArray(rng, rows * perSample, 3);
    const b = randomArray(rng, rows * perSample, 0.5);
    const out = h.buffer(null, a.length * 4);
    await runKernel(h, layersElementwiseKernel('add', false, perSample), rows, {
      src: h.buffer(a),
      aux: h.buffer(b),
      dst: out,
    });
    const gpu = await h.readF32(out, a.length);
    const ref = Float64Array.from(a, (v, i) => v + b[i]!);
    return result(
      `layers-residual add ${rows}×${perSample}`,
      maxRelative(
        gpu,
        ref,
        Float64Array.from(a, (v, i) => Math.abs(v) + Math.abs(b[i]!)),
      ),
      F32_U,
      '|Δ(a + b)| / (|a| + |b|), one rounding',
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Layer norm (workgroup reductions)

function layerNormCheck(rows: number, positions: number, width: number): Check {
  return async ({ h, rng }) => {
    const node = nodeFor([positions, width], { type: 'layernorm' }) as LayerNormNode;
    const place = tensorPlacement(width, width);
    const p = randomArray(rng, place.size);
    // An offset, so the mean is not ~0 and x − mean cancels as in real activations.
    const x = randomArray(rng, rows * positions * width).map((v) => 0.7 + v);
    const dy = randomArray(rng, x.length, 0.1);
    const g = { ...node, weight: place.weight, bias: place.bias };
    const n = rows * positions;
    const y = h.buffer(null, x.length * 4);
    const stats = h.buffer(null, n * LAYERNORM_STATS_PER_ROW * 4);
    const dx = h.buffer(null, x.length * 4);
    const grad = h.buffer(null, place.size * 4);
    const xB = h.buffer(x);
    const pB = h.buffer(p);
    const dyB = h.buffer(dy);
    await runKernel(h, layersLayerNormForwardKernel(g), rows, { x: xB, params: pB, y, stats });
    await runKernel(h, layersLayerNormBackwardInputKernel(g), rows, {
      x: xB,
      dy: dyB,
      params: pB,
      stats,
      dx,
    });
    await runKernel(h, layersLayerNormBackwardParamsKernel(g), rows, {
      x: xB,
      dy: dyB,
      stats,
      grad,
    });
    const yGpu = await h.readF32(y, x.length);
    const dxGpu = await h.readF32(dx, x.length);
    const gAll = await h.readF32(grad, place.size);
    const make = () => new LayerNormOp(node, [place.weight, place.bias], rows, f64);
    const { exact } = reference(make, p, x, rows, dy);
    // Conditions from x̂ in float64: y ~ |γ|(1 + |x̂|) + |β|; dx ~ rstd(|d̂| + mean|d̂| +
    // |x̂|·mean|d̂x̂|); ∂γ ~ Σ|dy||x̂|, ∂β ~ Σ|dy|.
    const sY = f64(x.length);
    const sX = f64(x.length);
    const sG = f64(place.size);
    for (let r = 0; r < n; r++) {
      const o = r * width;
      let mean = 0;
      for (let j = 0; j < width; j++) mean += x[o + j]! / width;
      let v = 0;
      for (let j = 0; j < width; j++) v += (x[o + j]! - mean) ** 2 / width;
      const rstd = 1 / Math.sqrt(v + node.epsilon);
      let mD = 0;
      let mDX = 0;
      const xhat = (j: number) => (x[o + j]! - mean) * rstd;
      for (let j = 0; j < width; j++) {
        const d = Math.abs(dy[o + j]! * p[place.weight + j]!);
        mD += d / width;
        mDX += (d * Math.abs(xhat(j))) / width;
        sG[place.weight + j] = sG[place.weight + j]! + Math.abs(dy[o + j]! * xhat(j));
        sG[place.bias + j] = sG[place.bias + j]! + Math.abs(dy[o + j]!);
      }
      for (let j = 0; j < width; j++) {
        const xh = Math.abs(xhat(j));
        sY[o + j] = Math.abs(p[place.weight + j]!) * (1 + xh) + Math.abs(p[place.bias + j]!);
        sX[o + j] = rstd * (Math.abs(dy[o + j]! * p[place.weight + j]!) + mD + xh * mDX);
      }
    }
    const tensors = [
      [place.weight, place.weight + width],
      [place.bias, place.bias + width],
    ] as const;
    const eY = maxRelative(yGpu, exact.out, sY);
    const eX = maxRelative(dxGpu, exact.dx, sX);
    const eG = Math.max(
      ...tensors.map(([a, b]) =>
        maxRelative(gAll.subarray(a, b), exact.g.subarray(a, b), sG.subarray(a, b)),
      ),
    );
    const stray = strayWrites(gAll, tensors);
    // Row sums of width terms (twice: mean, then variance) feed every output; the parameter
    // gradients add n rows of terms that carry that error.
    const bRow = gamma(2 * width + 8);
    const bG = gamma(n + 2 * width + 8);
    return result(
      `layers-layernorm forward + backward ${rows}×[${positions},${width}]`,
      Math.max(eY / bRow, eX / bRow, eG / bG),
      1,
      `max(|Δy|, |Δdx| over their conditions / γ_${2 * width + 8}; |Δ[∂γ; ∂β]| / Σ|dy|(|x̂|, 1) / γ_${n + 2 * width + 8}): ${eY.toExponential(2)}, ${eX.toExponential(2)}, ${eG.toExponential(2)}; ${stray} gradient writes outside the tensors`,
      stray === 0,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Sequence layers: embedding, attention, the next-token loss

function embeddingCheck(rows: number, positions: number, vocab: number, dim: number): Check {
  return async ({ h, rng }) => {
    const node = nodeFor([positions], { type: 'embedding', vocab, dim }) as EmbeddingNode;
    const token = 3;
    const position = token + vocab * dim + 5;
    const size = position + positions * dim + 7;
    const p = randomArray(rng, size);
    // Few distinct ids, so every token row gathers from several positions; one id never seen.
    const ids = Float32Array.from({ length: rows * positions }, () => rng.int(vocab - 1));
    const dy = randomArray(rng, rows * positions * dim, 0.1);
    const g = { ...node, stride: positions, token, position };
    const out = h.buffer(null, dy.length * 4);
    const grad = h.buffer(null, size * 4);
    const regions = { tokens: h.buffer(ids), params: h.buffer(p), dy: h.buffer(dy), out, grad };
    await runKernel(h, layersEmbeddingForwardKernel(g), rows, regions);
    await runKernel(h, layersEmbeddingBackwardKernel(g), rows, regions);
    const yGpu = await h.readF32(out, dy.length);
    const gAll = await h.readF32(grad, size);
    const make = () => new EmbeddingOp(node, [token, position], rows, f64);
    const { exact, scale } = reference(make, p, ids, rows, dy);
    const tensors = [
      [token, token + vocab * dim],
      [position, position + positions * dim],
    ] as const;
    const eY = maxRelative(yGpu, exact.out, scale.out);
    const eG = Math.max(
      ...tensors.map(([a, b]) =>
        maxRelative(gAll.subarray(a, b), exact.g.subarray(a, b), scale.g.subarray(a, b)),
      ),
    );
    const stray = strayWrites(gAll, tensors);
    const bG = gamma(rows * positions);
    return result(
      `layers-embedding forward + backward ${rows}×${positions} vocab ${vocab} dim ${dim}`,
      Math.max(eY / F32_U, eG / bG),
      1,
      `max(|Δy| / (|token| + |position|) / u, |Δ∂table| / Σ|dy| / γ_${rows * positions}): ${eY.toExponential(2)}, ${eG.toExponential(2)}; ${stray} gradient writes outside the tables`,
      stray === 0,
    );
  };
}

/** max |gpu − ref| / max |ref|: a norm-wise error, for chains of sums through a softmax. */
function normwise(gpu: ArrayLike<number>, ref: ArrayLike<number>): number {
  let top = 0;
  for (let i = 0; i < ref.length; i++) top = Math.max(top, Math.abs(ref[i]!));
  return maxRelative(gpu, ref, top);
}

/**
 * The whole attention layer as the backend runs it (q|k|v GEMM, the fused core, output GEMM;
 * then their six backward dispatches) against core's AttentionOp in float64. Errors are
 * norm-wise per tensor; the bound is γ of the longest chain of sums an output goes through
 * (projections, scores, softmax, context, projection; twice that backward).
 */
function attentionCheck(rows: number, positions: number, width: number, heads: number): Check {
  return async ({ h, rng }) => {
    const node = nodeFor([positions, width], { type: 'attention', heads }) as AttentionNode;
    const d = width;
    const qkvW = 3;
    const qkvB = qkvW + 3 * d * d + 1;
    const projW = qkvB + 3 * d + 2;
    const projB = projW + d * d + 1;
    const size = projB + d + 5;
    const p = randomArray(rng, size, 0.4);
    const x = randomArray(rng, rows * positions * d);
    const dy = randomArray(rng, x.length, 0.1);
    const sizes = attentionRegionSizes(node);
    const n = (perSample: number) => rows * perSample * 4;
    const qkv = h.buffer(null, n(sizes.qkv));
    const dQkv = h.buffer(null, n(sizes.qkv));
    const probs = h.buffer(null, n(sizes.probs));
    const dScores = h.buffer(null, n(sizes.probs));
    const context = h.buffer(null, n(sizes.context));
    const dContext = h.buffer(null, n(sizes.context));
    const out = h.buffer(null, n(sizes.context));
    const dx = h.buffer(null, n(sizes.context));
    const grad = h.buffer(null, size * 4);
    const xB = h.buffer(x);
    const pB = h.buffer(p);
    const dyB = h.buffer(dy);
    const dense = (inWidth: number, outWidth: number, weight: number, bias: number) => ({
      positions,
      inWidth,
      outWidth,
      weight,
      bias,
    });
    const qkvProj = dense(d, 3 * d, qkvW, qkvB);
    const outProj = dense(d, d, projW, projB);
    const core = { qkv, probs, context, dContext, dScores, dQkv };
    const steps: [Kernel, Record<string, GPUBuffer>][] = [
      [layersDenseForwardKernel(qkvProj, 'none'), { x: xB, params: pB, y: qkv }],
      [layersAttentionKernel(node, 'forward'), core],
      [layersDenseForwardKernel(outProj, 'none'), { x: context, params: pB, y: out }],
      [layersDenseBackwardWeightsKernel(outProj), { dy: dyB, x: context, grad }],
      [layersDenseBackwardInputKernel(outProj), { dy: dyB, params: pB, dx: dContext }],
      [layersAttentionKernel(node, 'backward_query'), core],
      [layersAttentionKernel(node, 'backward_key'), core],
      [layersDenseBackwardWeightsKernel(qkvProj), { dy: dQkv, x: xB, grad }],
      [layersDenseBackwardInputKernel(qkvProj), { dy: dQkv, params: pB, dx }],
    ];
    for (const [kernel, buffers] of steps) await runKernel(h, kernel, rows, buffers);
    const yGpu = await h.readF32(out, x.length);
    const dxGpu = await h.readF32(dx, x.length);
    const gAll = await h.readF32(grad, size);
    const make = () => new AttentionOp(node, [qkvW, qkvB, projW, projB], rows, f64);
    const { exact } = reference(make, p, x, rows, dy);
    const tensors = [
      [qkvW, qkvW + 3 * d * d],
      [qkvB, qkvB + 3 * d],
      [projW, projW + d * d],
      [projB, projB + d],
    ] as const;
    const gpuG = new Float64Array(size);
    for (const [a, b] of tensors) gpuG.set(gAll.subarray(a, b), a);
    const eY = normwise(yGpu, exact.out);
    const eX = normwise(dxGpu, exact.dx);
    const eG = Math.max(
      ...tensors.map(([a, b]) => normwise(gpuG.subarray(a, b), exact.g.subarray(a, b))),
    );
    const stray = strayWrites(gAll, tensors);
    const dh = width / heads;
    const chain = 2 * (d + 1) + dh + 2 * positions;
    const bound = gamma(2 * chain + rows * positions);
    return result(
      `layers-attention layer forward + backward ${rows}×[${positions},${width}] ${heads} heads`,
      Math.max(eY, eX, eG),
      bound,
      `norm-wise max|Δ| / max|ref| of y ${eY.toExponential(2)}, dx ${eX.toExponential(2)}, ∂params ${eG.toExponential(2)}; bound γ_${2 * chain + rows * positions}; ${stray} gradient writes outside the tensors`,
      stray === 0,
    );
  };
}

function nextTokenCheck(rows: number, positions: number, vocab: number): Check {
  return async ({ h, rng }) => {
    const logits = randomArray(rng, rows * positions * vocab, 20);
    const tokens = Float32Array.from({ length: rows * (positions + 1) }, () => rng.int(vocab));
    const dlogits = h.buffer(null, logits.length * 4);
    const positionLoss = h.buffer(null, rows * positions * 4);
    const sampleLoss = h.buffer(null, rows * 4);
    const regions = {
      tokens: h.buffer(tokens),
      logits: h.buffer(logits),
      dlogits,
      positionLoss,
      sampleLoss,
    };
    await runKernel(h, layersNextTokenScoreKernel(positions, vocab), rows, regions);
    await runKernel(h, layersNextTokenSampleKernel(positions, vocab), rows, regions);
    const gpuD = await h.readF32(dlogits, logits.length);
    const gpuLoss = await h.readF32(sampleLoss, rows);
    // Float64 reference: per position log-sum-exp, mean per sample, (softmax − onehot)/(B·T).
    const scored = rows * positions;
    const refD = f64(logits.length);
    const refLoss = f64(rows);
    const lossScale = f64(rows);
    for (let r = 0; r < scored; r++) {
      const s = Math.floor(r / positions);
      const label = tokens[s * (positions + 1) + (r % positions) + 1]!;
      const o = r * vocab;
      let m = -Infinity;
      for (let j = 0; j < vocab; j++) m = Math.max(m, logits[o + j]!);
      let sum = 0;
      for (let j = 0; j < vocab; j++) sum += Math.exp(logits[o + j]! - m);
      const lse = m + Math.log(sum);
      refLoss[s] = refLoss[s]! + (lse - logits[o + label]!) / positions;
      lossScale[s] = Math.max(lossScale[s]!, 1 + Math.abs(m));
      for (let j = 0; j < vocab; j++) {
        refD[o + j] = (Math.exp(logits[o + j]! - lse) - (j === label ? 1 : 0)) / scored;
      }
    }
    const eLoss = maxRelative(gpuLoss, refLoss, lossScale);
    const eD = maxRelative(gpuD, refD, 1 / scored);
    return result(
      `layers-next-token-ce ${rows}×${positions}×${vocab}`,
      Math.max(eLoss, eD),
      // The classify head's bound (kernel-checks.ts softmaxCheck): same arithmetic per position.
      3e-5,
      `sample loss / (1 + max|z|) ${eLoss.toExponential(2)}, dlogits·B·T ${eD.toExponential(2)}`,
    );
  };
}

/** Every layers check, with its id (see kernel-checks.ts CHECKS). */
export const LAYERS_CHECKS: readonly (readonly [string, Check])[] = [
  ['layers-gemm', denseForwardCheck(37, [45], 24, 'none')],
  ['layers-gemm', denseForwardCheck(19, [33], 10, 'relu')],
  ['layers-gemm', denseForwardCheck(5, [3, 20], 36, 'gelu')],
  ['layers-gemm', denseForwardCheck(70, [130], 37, 'relu')],
  ['layers-gemm', denseBackwardCheck(23, [30], 12)],
  ['layers-gemm', denseBackwardCheck(4, [5, 17], 9)],
  [
    'layers-conv2d',
    convForwardCheck(3, [2, 9, 8], { filters: 5, kernel: 3, stride: 1, padding: 1 }, 'relu'),
  ],
  [
    'layers-conv2d',
    convForwardCheck(2, [3, 11, 10], { filters: 4, kernel: 4, stride: 2, padding: 2 }, 'none'),
  ],
  [
    'layers-conv2d',
    convBackwardCheck(3, [2, 9, 8], { filters: 5, kernel: 3, stride: 1, padding: 1 }),
  ],
  [
    'layers-conv2d',
    convBackwardCheck(2, [3, 11, 10], { filters: 4, kernel: 4, stride: 2, padding: 2 }),
  ],
  ['layers-maxpool2d', poolCheck(3, [4, 8, 6], 'maxpool2d', 2, 2)],
  ['layers-maxpool2d', poolCheck(2, [3, 9, 9], 'maxpool2d', 3, 2)],
  ['layers-avgpool2d', poolCheck(3, [4, 8, 6], 'avgpool2d', 2, 2)],
  ['layers-avgpool2d', poolCheck(2, [3, 9, 9], 'avgpool2d', 3, 2)],
  ['layers-relu', activationCheck(7, 301, 'relu')],
  ['layers-gelu', activationCheck(7, 301, 'gelu')],
  ['layers-residual', residualAddCheck(5, 77)],
  ['layers-layernorm', layerNormCheck(3, 5, 40)],
  ['layers-layernorm', layerNormCheck(2, 3, 150)],
  ['layers-embedding', embeddingCheck(3, 9, 7, 10)],
  ['layers-attention', attentionCheck(2, 9, 12, 3)],
  ['layers-attention', attentionCheck(3, 5, 8, 1)],
  ['layers-next-token-ce', nextTokenCheck(3, 7, 13)],
];
