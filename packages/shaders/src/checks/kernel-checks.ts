/**
 * Kernel checks: every WGSL kernel (and a few whole WebGpuBackend steps) against a float64
 * reference on fresh random inputs, each with an explicit relative-error bound. Output buffers
 * are poisoned (NaN bits, or 0xdeadbeef for integers) before each run, so an element a kernel
 * fails to write shows up as an infinite error.
 *
 * Runs wherever WebGPU does: Node with Dawn (the package's vitest suite) and browsers (the e2e
 * kernels page). No Node or DOM APIs beyond WebGPU.
 */
import type { Batch, MergeRule, ParameterLayout, ReceivedBlock } from '@meshgrad/core';
import {
  SCALING_MERGE_RULE,
  PARZEN_MERGE_RULE,
  decodeInt8,
  encodeInt8,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  parameterLayout,
  Rng,
} from '@meshgrad/core';
import { GpuBlockCodec } from '../backend/block-codec.ts';
import { blockStride } from '../backend/buffers.ts';
import { SparseInputEncoder } from '../backend/sparse-input.ts';
import { WebGpuBackend } from '../backend/webgpu-backend.ts';
import type { Check, KernelCheckOptions, KernelCheckResult } from './harness.ts';
import {
  Harness,
  maxRelative,
  peerBlocks,
  POISON_U32,
  randomArray,
  randomLabels,
  result,
} from './harness.ts';
import { LAYERS_CHECKS } from './layers-checks.ts';
import type { DenseShape, KernelTuning, UpdateRule } from '../kernels/programs.ts';
import {
  denseBackwardInputKernel,
  denseBackwardWeightsKernel,
  denseBackwardWeightsSparseKernel,
  denseForwardKernel,
  denseForwardSparseKernel,
  HARDWARE_TUNING,
  kmeansAssignKernel,
  kmeansGradKernel,
  lossReduceKernel,
  outerMomentumKernel,
  sgdParzenKernel,
  softmaxCrossEntropyKernel,
  SOFTWARE_TUNING,
} from '../kernels/programs.ts';
import {
  denseForward64,
  denseInputGrad64,
  denseWeightGrad64,
  F32_U,
  gamma,
  kmeansAssign64,
  kmeansGrad64,
  lossAndGradient64,
  outerMomentum64,
  softmaxCe64,
  update64,
} from './reference.ts';

export type { KernelCheckResult, KernelCheckOptions } from './harness.ts';

// ---------------------------------------------------------------------------------------------
// Dense layers

function denseCase(
  rng: Rng,
  rows: number,
  inputs: number,
  outputs: number,
  weightOffset: number,
  zeroFraction: number,
) {
  const shape: DenseShape = { inputs, outputs, weightOffset };
  const params = randomArray(rng, weightOffset + (inputs + 1) * outputs + 3);
  const x = randomArray(rng, rows * inputs, 1, zeroFraction);
  return { shape, params, x };
}

function denseForwardCheck(
  rows: number,
  inputs: number,
  outputs: number,
  weightOffset: number,
  relu: boolean,
  sparse: boolean,
  tuning: KernelTuning = HARDWARE_TUNING,
): Check {
  const kind = sparse
    ? 'dense-forward-sparse'
    : `dense-forward ${tuning.stageTiles ? 'staged' : 'direct'}`;
  return async ({ h, rng }) => {
    const { shape, params, x } = denseCase(
      rng,
      rows,
      inputs,
      outputs,
      weightOffset,
      sparse ? 0.8 : 0.1,
    );
    const kernel = sparse
      ? denseForwardSparseKernel(shape, relu)
      : denseForwardKernel(shape, relu, tuning);
    const y = h.buffer(null, rows * outputs * 4);
    const common = { step: h.step({ batch: rows }), params: h.buffer(params), y };
    if (sparse) {
      const encoded = new SparseInputEncoder(inputs, rows, rows * (inputs + 1)).encode(x, rows)!;
      await h.run(
        kernel.program,
        { ...common, rowStart: h.buffer(encoded.csrRows), entries: h.buffer(encoded.csrEntries) },
        kernel.grid(rows),
      );
    } else {
      await h.run(kernel.program, { ...common, x: h.buffer(x) }, kernel.grid(rows));
    }
    const gpu = await h.readF32(y, rows * outputs);
    const ref = denseForward64(x, rows, inputs, params, weightOffset, outputs, relu);
    const vec = kernel.program.source.includes('alias V = vec4') ? 'vec4' : 'scalar';
    return result(
      `${kind} ${vec}${relu ? ' relu' : ''} ${rows}x${inputs}->${outputs}`,
      maxRelative(gpu, ref.y, ref.scale),
      gamma(inputs + 1),
      `|Δy| / Σ|x·W|, bound γ_${inputs + 1}`,
    );
  };
}

function denseWeightsCheck(
  rows: number,
  inputs: number,
  outputs: number,
  weightOffset: number,
  sparse: boolean,
  tuning: KernelTuning = HARDWARE_TUNING,
): Check {
  const kind = sparse
    ? 'dense-backward-weights-sparse'
    : `dense-backward-weights ${tuning.denseThreads}-thread`;
  return async ({ h, rng }) => {
    const { shape, x } = denseCase(rng, rows, inputs, outputs, weightOffset, sparse ? 0.8 : 0.3);
    const dy = randomArray(rng, rows * outputs, 0.1);
    const kernel = sparse
      ? denseBackwardWeightsSparseKernel(shape)
      : denseBackwardWeightsKernel(shape, tuning);
    const total = weightOffset + (inputs + 1) * outputs;
    const grad = h.buffer(null, (total + 4) * 4);
    if (sparse) {
      const encoded = new SparseInputEncoder(inputs, rows, rows * (inputs + 1)).encode(x, rows)!;
      await h.run(
        kernel.program,
        {
          colStart: h.buffer(encoded.cscCols),
          entries: h.buffer(encoded.cscEntries),
          dy: h.buffer(dy),
          grad,
        },
        kernel.grid(rows),
      );
    } else {
      await h.run(
        kernel.program,
        { step: h.step({ batch: rows }), x: h.buffer(x), dy: h.buffer(dy), grad },
        kernel.grid(rows),
      );
    }
    const all = await h.readF32(grad, total + 4);
    const gpu = all.subarray(weightOffset, total);
    const ref = denseWeightGrad64(x, dy, rows, inputs, outputs);
    // Nothing outside [dW; db] may be written: the poison there must survive.
    let stray = 0;
    for (let i = 0; i < all.length; i++)
      if ((i < weightOffset || i >= total) && !Number.isNaN(all[i]!)) stray++;
    const vec = kernel.program.source.includes('alias V = vec4') ? 'vec4' : 'scalar';
    return result(
      `${kind} ${vec} ${rows}x${inputs}->${outputs}`,
      maxRelative(gpu, ref.grad, ref.scale),
      gamma(rows),
      `|Δ[dW; db]| / Σ|x·dY|, bound γ_${rows}; ${stray} writes outside the tensor`,
      stray === 0,
    );
  };
}

function denseInputCheck(
  rows: number,
  inputs: number,
  outputs: number,
  weightOffset: number,
): Check {
  return async ({ h, rng }) => {
    const { shape, params } = denseCase(rng, rows, inputs, outputs, weightOffset, 0);
    // a is a ReLU output: about half zeros, the rest positive.
    const a = randomArray(rng, rows * inputs).map((v) => Math.max(v, 0));
    const dy = randomArray(rng, rows * outputs, 0.1);
    const kernel = denseBackwardInputKernel(shape);
    const dx = h.buffer(null, rows * inputs * 4);
    await h.run(
      kernel.program,
      {
        step: h.step({ batch: rows }),
        a: h.buffer(a),
        dy: h.buffer(dy),
        params: h.buffer(params),
        dx,
      },
      kernel.grid(rows),
    );
    const gpu = await h.readF32(dx, rows * inputs);
    const ref = denseInputGrad64(a, dy, rows, inputs, params, weightOffset, outputs);
    const vec = kernel.program.source.includes('alias V = vec4') ? 'vec4' : 'scalar';
    return result(
      `dense-backward-input ${vec} ${rows}x${outputs}->${inputs}`,
      maxRelative(gpu, ref.dx, ref.scale),
      gamma(outputs),
      `|ΔdX| / Σ|dY·W|, bound γ_${outputs}; masked entries must be exactly 0`,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Loss heads

function softmaxCheck(rows: number, classes: number): Check {
  return async ({ h, rng }) => {
    const logits = randomArray(rng, rows * classes, 30);
    const labels = randomLabels(rng, rows, classes);
    const head = softmaxCrossEntropyKernel(classes);
    const reduce = lossReduceKernel();
    const step = h.step({ batch: rows, lossSlot: 2 });
    const dlogits = h.buffer(null, rows * classes * 4);
    const sampleLoss = h.buffer(null, rows * 4);
    const ring = h.buffer(null, 4 * 4);
    await h.run(
      head.program,
      { step, logits: h.buffer(logits), labels: h.buffer(labels), dlogits, sampleLoss },
      head.grid(rows),
    );
    await h.run(reduce.program, { step, sampleLoss, lossRing: ring }, reduce.grid(rows));
    const ref = softmaxCe64(logits, labels, rows, classes);
    const gpuLoss = await h.readF32(sampleLoss, rows);
    const gpuD = await h.readF32(dlogits, rows * classes);
    const gpuRing = await h.readF32(ring, 4);
    const lossScale = Float64Array.from(
      logits.filter((_, i) => i % classes === 0),
      () => 0,
    ).map((_, s) => {
      let m = 0;
      for (let j = 0; j < classes; j++) m = Math.max(m, Math.abs(logits[s * classes + j]!));
      return 1 + m;
    });
    const mean = ref.loss.reduce((p, q) => p + q, 0) / rows;
    const meanScale = ref.loss.reduce((p, q) => p + Math.abs(q), 0) / rows + 1;
    const errors = [
      maxRelative(gpuLoss, ref.loss, lossScale),
      maxRelative(gpuD, ref.dlogits, 1 / rows),
      maxRelative([gpuRing[2]!], [mean], meanScale),
    ];
    // Only slot 2 may be written.
    const stray = [0, 1, 3].filter((i) => !Number.isNaN(gpuRing[i]!)).length;
    return result(
      `softmax-ce + loss-reduce ${rows}x${classes}`,
      Math.max(...errors),
      3e-5,
      `loss / (1 + max|z|) ${errors[0]!.toExponential(2)}, dlogits·B ${errors[1]!.toExponential(2)}, ring mean ${errors[2]!.toExponential(2)}; ${stray} stray ring writes`,
      stray === 0,
    );
  };
}

function lossReduceCheck(rows: number): Check {
  return async ({ h, rng }) => {
    const losses = randomArray(rng, rows, 5).map(Math.abs);
    const reduce = lossReduceKernel();
    const ring = h.buffer(null, 8 * 4);
    await h.run(
      reduce.program,
      { step: h.step({ batch: rows, lossSlot: 5 }), sampleLoss: h.buffer(losses), lossRing: ring },
      reduce.grid(rows),
    );
    const gpu = await h.readF32(ring, 8);
    let sum = 0;
    for (const v of losses) sum += v;
    return result(
      `loss-reduce ${rows} samples`,
      maxRelative([gpu[5]!], [sum / rows], sum / rows),
      gamma(rows),
      `|Δmean| / mean, bound γ_${rows}`,
    );
  };
}

function kmeansCheck(rows: number, dims: number, clusters: number): Check {
  return async ({ h, rng }) => {
    const centres = randomArray(rng, clusters * dims, 2);
    // Centre 3 duplicates centre 1: samples nearest to both must pick 1 (lowest index).
    for (let t = 0; t < dims; t++) centres[3 * dims + t] = centres[dims + t]!;
    const x = new Float32Array(rows * dims);
    for (let s = 0; s < rows; s++) {
      const j = rng.int(clusters);
      for (let t = 0; t < dims; t++)
        x[s * dims + t] = centres[j * dims + t]! + 0.7 * (2 * rng.next() - 1);
    }
    const step = h.step({ batch: rows });
    const assign = kmeansAssignKernel(dims, clusters);
    const gradK = kmeansGradKernel(dims, clusters);
    const xb = h.buffer(x);
    const params = h.buffer(centres);
    const nearest = h.buffer(null, rows * 4, POISON_U32);
    const sampleLoss = h.buffer(null, rows * 4);
    const grad = h.buffer(null, clusters * dims * 4);
    await h.run(assign.program, { step, x: xb, params, nearest, sampleLoss }, assign.grid(rows));
    await h.run(gradK.program, { step, x: xb, params, nearest, grad }, gradK.grid(rows));
    const ref = kmeansAssign64(x, rows, dims, centres, clusters);
    const gpuNearest = new Uint32Array(await h.read(nearest, rows * 4));
    // An assignment may differ only where two distances tie to float32 precision.
    let wrong = 0;
    for (let s = 0; s < rows; s++) {
      const a = gpuNearest[s]!;
      const b = ref.nearest[s]!;
      if (a === b) continue;
      const da = ref.distances[s * clusters + a];
      const db = ref.distances[s * clusters + b]!;
      if (da === undefined || Math.abs(da - db) > 8 * dims * F32_U * db || (da === db && a > b))
        wrong++;
    }
    const gpuLoss = await h.readF32(sampleLoss, rows);
    const lossScale = Float64Array.from({ length: rows }, (_, s) => {
      let c = 0;
      for (let t = 0; t < dims; t++) {
        const v = Math.abs(x[s * dims + t]!) + Math.abs(centres[gpuNearest[s]! * dims + t] ?? 0);
        c += v * v;
      }
      return 0.5 * c;
    });
    const g = kmeansGrad64(x, rows, dims, centres, clusters, gpuNearest);
    const gpuGrad = await h.readF32(grad, clusters * dims);
    const e1 = maxRelative(gpuLoss, ref.loss, lossScale);
    const e2 = maxRelative(gpuGrad, g.grad, g.scale);
    return result(
      `kmeans-assign + kmeans-grad ${rows}x${dims}, ${clusters} centres`,
      Math.max(e1, e2),
      gamma(Math.max(2 * dims + 2, rows + 2)),
      `loss / ½Σ(|x|+|c|)² ${e1.toExponential(2)}, grad / Σ(|c|+|x|)/B ${e2.toExponential(2)}; ${wrong} wrong assignments (ties go to the lowest index)`,
      wrong === 0,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// SGD + Parzen + merge

/** Outer momentum over `size` floats (a multiple of 4, as the backend pads them). */
function outerMomentumCheck(size: number): Check {
  return async ({ h, rng }) => {
    const w = randomArray(rng, size);
    const anchor = randomArray(rng, size);
    const d = randomArray(rng, size, 0.3);
    const beta = 0.5;
    const ref = outerMomentum64(w, anchor, d, beta);
    const kernel = outerMomentumKernel(size, beta);
    const params = h.buffer(w);
    const anchorBuffer = h.buffer(anchor);
    const displacement = h.buffer(d);
    await h.run(kernel.program, { params, anchor: anchorBuffer, displacement }, kernel.grid(1));
    const gotW = await h.readF32(params, size);
    const gotAnchor = await h.readF32(anchorBuffer, size);
    const gotD = await h.readF32(displacement, size);
    const anchorOk = gotAnchor.every((v, i) => v === gotW[i]);
    return result(
      `outer-momentum P=${size} beta=${beta}`,
      Math.max(
        maxRelative(gotW, ref.params, ref.scale),
        maxRelative(gotD, ref.displacement, ref.scale),
      ),
      4 * F32_U,
      `|Δw|, |Δd| / (|anchor| + |w| + |βd| + |d|)${anchorOk ? '' : '; the anchor is not the new w'}`,
      anchorOk,
    );
  };
}

function sgdParzenCheck(
  size: number,
  blockSize: number,
  rule: UpdateRule = PARZEN_MERGE_RULE,
): Check {
  return async ({ h, rng }) => {
    const layout: ParameterLayout = {
      ...parameterLayout({ kind: 'kmeans', dims: 1, clusters: size }, blockSize),
    };
    const w = randomArray(rng, size);
    const g = randomArray(rng, size, 0.5);
    const lr = 0.05;
    const eta = Math.fround(lr);
    const blockValues = (k: number, f: (i: number) => number) => {
      const start = k * blockSize;
      const end = Math.min(start + blockSize, size);
      return Float32Array.from({ length: end - start }, (_, t) => f(start + t));
    };
    const last = layout.blockCount - 1;
    const received: ReceivedBlock[] = [
      // Moves along −g beyond half a step: accepted.
      { block: 0, values: blockValues(0, (i) => w[i]! - 3 * eta * g[i]!) },
      // Against the step: rejected.
      { block: 0, values: blockValues(0, (i) => w[i]! + eta * g[i]!) },
      // A random peer; its verdict is whatever the reference says (checked for a clear margin).
      { block: 1, values: blockValues(1, (i) => w[i]! + (2 * rng.next() - 1)) },
      // The last, shorter block: one accepted, one with a NaN (rejected, still offered).
      { block: last, values: blockValues(last, (i) => w[i]! - 2 * eta * g[i]! + 0.01) },
      {
        block: last,
        values: blockValues(last, (i) => (i === size - 1 ? NaN : w[i]! - 2 * eta * g[i]!)),
      },
    ];
    const ref = update64(layout, w, g, lr, received, rule);
    const slots = received.length + 1;
    const stride = blockStride(layout);
    const kernel = sgdParzenKernel(
      {
        size,
        blockSize,
        blockCount: layout.blockCount,
        slots,
        slotStride: stride,
      },
      rule,
    );
    const mailbox = new Float32Array(slots * stride).fill(NaN); // stale values past a short block must be masked
    received.forEach((r, i) => mailbox.set(r.values, i * stride));
    const padded = Math.ceil(size / 4) * 4;
    const wPad = new Float32Array(padded);
    wPad.set(w);
    const gPad = new Float32Array(padded);
    gPad.set(g);
    const params = h.buffer(wPad);
    const counters = h.buffer(new Uint32Array(4));
    await h.run(
      kernel.program,
      {
        step: h.step({ batch: 1, slotCount: received.length, learningRate: lr }),
        params,
        grad: h.buffer(gPad),
        mailboxValues: h.buffer(mailbox),
        mailboxBlocks: h.buffer(Uint32Array.from(received, (r) => r.block)),
        counters,
      },
      kernel.grid(1),
    );
    const gpu = await h.readF32(params, padded);
    const counts = new Uint32Array(await h.read(counters, 16));
    const padOk = gpu.subarray(size).every((v) => v === 0);
    const countsOk = counts[0] === ref.offered && counts[1] === ref.accepted;
    // With the test off a verdict is finiteness alone: no near-tie can flip it.
    const clear = rule.parzen === 'off' || ref.margins.every((m) => m > 1e-4);
    const vec = kernel.program.source.includes('alias V = vec4') ? 'vec4' : 'scalar';
    return result(
      `sgd-parzen ${vec} P=${size} block=${blockSize} ${rule.order}/${rule.parzen}`,
      maxRelative(gpu.subarray(0, size), ref.params, ref.scale),
      8 * F32_U,
      `|Δw| / ((|w| + η|g| + Σ|v|)/(1 + n)); offered ${counts[0]}/${ref.offered}, accepted ${counts[1]}/${ref.accepted}` +
        `${padOk ? '' : '; padding changed'}${clear ? '' : '; a verdict was a near-tie'}`,
      padOk && countsOk && clear,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Codecs

function f16Inputs(rng: Rng, n: number): Float32Array {
  const special = [
    0,
    -0,
    1,
    -1,
    65504,
    -65504,
    65519.99,
    65520,
    65536,
    1e9,
    -Infinity,
    Infinity,
    NaN,
    2 ** -14,
    2 ** -24,
    2 ** -25,
    1.5 * 2 ** -25,
    2 ** -26,
    3 * 2 ** -25,
    2 ** -149,
    1e-40,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -11 + 2 ** -20,
    0.1,
    1 / 3,
    2047.5,
    4095,
  ];
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    if (i < special.length) out[i] = special[i]!;
    else if (i % 3 === 0)
      bits[i] = (rng.next() * 2 ** 32) >>> 0; // any bit pattern
    else out[i] = (2 * rng.next() - 1) * 2 ** (rng.int(40) - 28);
  }
  return out;
}

function sameFloat(a: number, b: number): boolean {
  return a === b ? 1 / a === 1 / b || a !== 0 : Number.isNaN(a) && Number.isNaN(b);
}

function f16Check(count: number): Check {
  return async ({ device, rng }) => {
    const codec = await GpuBlockCodec.create(device, {
      maxValues: 65536,
      label: 'kernel-check:codec',
    });
    try {
      const values = f16Inputs(rng, count);
      const encoded = await codec.encode(values, 'f16');
      let encodeWrong = 0;
      let worst = 0;
      const bits = encoded.values as Uint16Array;
      for (let i = 0; i < count; i++) {
        const want = float32ToFloat16Bits(values[i]!);
        if (bits[i] !== want) {
          encodeWrong++;
          const a = float16BitsToFloat32(bits[i]!);
          const b = float16BitsToFloat32(want);
          worst = Math.max(
            worst,
            Number.isFinite(a - b) && b !== 0 ? Math.abs(a - b) / Math.abs(b) : Infinity,
          );
        }
      }
      // Decode every half there is.
      const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const decoded = await codec.decode({ encoding: 'f16', values: all });
      let decodeWrong = 0;
      for (let i = 0; i < 65536; i++) {
        const want = float16BitsToFloat32(i);
        if (!sameFloat(decoded[i]!, want)) {
          decodeWrong++;
          worst = Math.max(
            worst,
            Number.isFinite(decoded[i]! - want) && want !== 0
              ? Math.abs(decoded[i]! - want) / Math.abs(want)
              : Infinity,
          );
        }
      }
      return result(
        `codec-f16 encode ${count} + decode all 65536${codec.nativeF16 ? ' (native f16)' : ''}`,
        worst,
        0,
        `bit-exact against core's float32ToFloat16Bits / float16BitsToFloat32: ${encodeWrong} encode and ${decodeWrong} decode mismatches`,
        encodeWrong === 0 && decodeWrong === 0,
      );
    } finally {
      codec.destroy();
    }
  };
}

function int8Check(count: number): Check {
  return async ({ device, rng }) => {
    const codec = await GpuBlockCodec.create(device, {
      maxValues: count,
      label: 'kernel-check:codec',
    });
    try {
      // Block 1: scale exactly 1 (max |v| = 127) with exact ties, which must round away from 0.
      const ties = new Float32Array(count);
      for (let i = 0; i < count; i++)
        ties[i] = rng.int(253) - 126 + (i % 2 === 0 ? 0.5 : rng.next() - 0.5);
      ties[0] = 127;
      ties[1] = 0.49999997;
      ties[2] = -0.49999997;
      ties[3] = -2.5;
      // Block 2: random magnitudes, where a GPU quotient may differ by one at a near-tie.
      const random = randomArray(rng, count, 3.7);
      let worst = 0;
      let wrong = 0;
      let nearTies = 0;
      for (const values of [ties, random]) {
        const gpu = await codec.encode(values, 'int8');
        if (gpu.encoding !== 'int8') throw new Error('int8 encode returned another encoding');
        const ref = encodeInt8(values);
        worst = Math.max(worst, Math.abs(gpu.scale - ref.scale) / ref.scale);
        for (let i = 0; i < count; i++) {
          if (gpu.values[i] === ref.values[i]) continue;
          const t = values[i]! / ref.scale;
          const tie = Math.abs(Math.abs(t - Math.trunc(t)) - 0.5) < 4 * F32_U * Math.abs(t);
          if (tie && Math.abs(gpu.values[i]! - ref.values[i]!) === 1 && values !== ties) nearTies++;
          else wrong++;
        }
        // Decode the reference codes: q·scale is one correctly rounded product, so exact.
        const decoded = await codec.decode({
          encoding: 'int8',
          values: ref.values,
          scale: ref.scale,
        });
        const want = decodeInt8(ref.values, ref.scale);
        for (let i = 0; i < count; i++) if (!sameFloat(decoded[i]!, want[i]!)) wrong++;
      }
      return result(
        `codec-int8 encode + decode ${count}`,
        worst,
        3 * F32_U,
        `|Δscale| / scale; codes vs core's encodeInt8: ${wrong} wrong, ${nearTies} off by one at near-ties of the division; decode bit-exact`,
        wrong === 0,
      );
    } finally {
      codec.destroy();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Whole backend steps

interface StepPlan {
  readonly batch: Batch;
  /** Builds the received blocks from the reference's current parameters and gradient. */
  readonly peers?: (w: Float64Array, g: Float64Array, eta: number) => ReceivedBlock[];
}

function backendCheck(
  name: string,
  layout: ParameterLayout,
  makeSteps: (rng: Rng) => StepPlan[],
  tuning: 'auto' | 'hardware' | 'software' = 'auto',
  merge: MergeRule = PARZEN_MERGE_RULE,
): Check {
  return async ({ device, rng }) => {
    const params = randomArray(rng, layout.size, 0.3);
    const lr = 0.1;
    const eta = Math.fround(lr);
    const plans = makeSteps(rng);
    // A ring shorter than the run, so the wrap-around copy is exercised too.
    const backend = await WebGpuBackend.create(device, layout, params, {
      maxBatch: 64,
      mailboxSlots: 4,
      lossRing: 3,
      label: 'kernel-check',
      tuning,
      merge,
    });
    try {
      let w: Float64Array = Float64Array.from(params);
      // Outer momentum's state, float32 as the backend keeps it.
      let anchor = Float32Array.from(params);
      let displacement = new Float32Array(layout.size);
      let steps = 0;
      const losses: number[] = [];
      let offered = 0;
      let accepted = 0;
      let closest = Infinity;
      for (const plan of plans) {
        const { loss, grad } = lossAndGradient64(layout, w, plan.batch);
        // Peers are float32 like everything a backend receives.
        const received = plan.peers?.(w, grad, eta) ?? [];
        backend.step(plan.batch, lr, received);
        const upd = update64(layout, w, grad, lr, received, merge);
        if (merge.parzen === 'hard') for (const m of upd.margins) closest = Math.min(closest, m);
        losses.push(loss);
        offered += upd.offered;
        accepted += upd.accepted;
        w = upd.params;
        if (merge.momentum > 0 && ++steps % merge.momentumPeriod === 0) {
          const om = outerMomentum64(w, anchor, displacement, merge.momentum);
          w = om.params;
          anchor = Float32Array.from(w);
          displacement = Float32Array.from(om.displacement);
        }
      }
      const stats = await backend.drainStats();
      const gpu = await backend.readParameters();
      let wMax = 0;
      for (const v of w) wMax = Math.max(wMax, Math.abs(v));
      const eParams = maxRelative(gpu, w, wMax);
      const eLoss =
        stats.losses.length === losses.length
          ? maxRelative(stats.losses, losses, Math.max(1, ...losses.map(Math.abs)))
          : Infinity;
      const countsOk = stats.offered === offered && stats.accepted === accepted;
      return result(
        `WebGpuBackend.step ${name} ×${plans.length}`,
        Math.max(eParams, eLoss),
        1e-5,
        `params max|Δw| / max|w| ${eParams.toExponential(2)}, losses / max(1, |loss|) ${eLoss.toExponential(2)} (${stats.losses.length}/${losses.length}); ` +
          `offered ${stats.offered}/${offered}, accepted ${stats.accepted}/${accepted}${closest > 1e-4 ? '' : '; a verdict was a near-tie'}`,
        countsOk && closest > 1e-4,
      );
    } finally {
      backend.destroy();
    }
  };
}

function classifierBatch(
  rng: Rng,
  rows: number,
  inputs: number,
  classes: number,
  zeroFraction: number,
): Batch {
  return {
    size: rows,
    x: randomArray(rng, rows * inputs, 1, zeroFraction),
    labels: randomLabels(rng, rows, classes),
  };
}

/** Peers for block k: w − a·η·g per entry of `factors` (a > ½ accepts, a < ½ rejects). */
function peersAlongGradient(layout: ParameterLayout, k: number, factors: readonly number[]) {
  return (w: Float64Array, g: Float64Array, eta: number): ReceivedBlock[] =>
    peerBlocks(layout, w, g, eta, k, factors);
}

function joinPeers(...fs: ((w: Float64Array, g: Float64Array, eta: number) => ReceivedBlock[])[]) {
  return (w: Float64Array, g: Float64Array, eta: number) => fs.flatMap((f) => f(w, g, eta));
}

function mlpBackendCheck(
  tuning: 'auto' | 'hardware' | 'software' = 'auto',
  merge: MergeRule = PARZEN_MERGE_RULE,
): Check {
  const layout = parameterLayout({ kind: 'mlp', inputs: 48, hidden: [20], classes: 5 }, 256);
  const shapes = tuning === 'auto' ? '' : `, ${tuning} kernel shapes`;
  const rule =
    merge === PARZEN_MERGE_RULE
      ? ''
      : `, ${merge.order}/${merge.parzen}, momentum ${merge.momentum} every ${merge.momentumPeriod}`;
  return backendCheck(
    `mlp 48-20-5 (sparse and dense input, merges${shapes}${rule})`,
    layout,
    (rng) => [
      { batch: classifierBatch(rng, 24, 48, 5, 0.8) },
      {
        batch: classifierBatch(rng, 24, 48, 5, 0.8),
        peers: peersAlongGradient(layout, 1, [3, -1]),
      },
      {
        batch: classifierBatch(rng, 17, 48, 5, 0),
        peers: joinPeers(
          peersAlongGradient(layout, 0, [2]),
          peersAlongGradient(layout, layout.blockCount - 1, [4, 0.2]),
        ),
      },
      {
        batch: classifierBatch(rng, 31, 48, 5, 0.75),
        peers: peersAlongGradient(layout, 2, [2, 5, 0.1, -3]),
      },
    ],
    tuning,
    merge,
  );
}

function softmaxBackendCheck(): Check {
  const layout = parameterLayout({ kind: 'softmax', inputs: 30, classes: 10 }, 64);
  return backendCheck('softmax 30-10', layout, (rng) => [
    { batch: classifierBatch(rng, 20, 30, 10, 0.5) },
    { batch: classifierBatch(rng, 20, 30, 10, 0.5), peers: peersAlongGradient(layout, 3, [3, -2]) },
    {
      batch: classifierBatch(rng, 9, 30, 10, 0.9),
      peers: peersAlongGradient(layout, layout.blockCount - 1, [1.5]),
    },
  ]);
}

function kmeansBackendCheck(): Check {
  // An odd block size: the update runs its scalar variant.
  const layout = parameterLayout({ kind: 'kmeans', dims: 5, clusters: 4 }, 7);
  const batch = (rng: Rng, rows: number): Batch => ({
    size: rows,
    x: randomArray(rng, rows * 5, 1),
    labels: null,
  });
  return backendCheck('kmeans 5x4, block 7', layout, (rng) => [
    { batch: batch(rng, 40) },
    { batch: batch(rng, 40), peers: peersAlongGradient(layout, 0, [3, -1]) },
    {
      batch: batch(rng, 13),
      peers: joinPeers(peersAlongGradient(layout, 1, [2]), peersAlongGradient(layout, 2, [4])),
    },
    { batch: batch(rng, 40) },
  ]);
}

function layersBackendCheck(): Check {
  // Every wired layer type: conv (fused ReLU, then GELU), both poolings, a residual, dense.
  const layout = parameterLayout(
    {
      kind: 'layers',
      inputs: 2 * 8 * 8,
      classes: 4,
      inputShape: [2, 8, 8],
      layers: [
        { type: 'conv2d', filters: 3, kernel: 3, padding: 1 },
        { type: 'relu' },
        { type: 'maxpool2d', size: 2 },
        { type: 'conv2d', filters: 4, kernel: 2, stride: 2 },
        { type: 'gelu' },
        { type: 'avgpool2d', size: 2, stride: 1 },
        { type: 'flatten' },
        { type: 'residual', layers: [{ type: 'dense', units: 4 }, { type: 'relu' }] },
        { type: 'dense', units: 4 },
      ],
    },
    41,
  );
  const batch = (rng: Rng, rows: number) => classifierBatch(rng, rows, 2 * 8 * 8, 4, 0.2);
  return backendCheck('layers CNN 2x8x8 (conv, pools, residual; block 41)', layout, (rng) => [
    { batch: batch(rng, 9) },
    { batch: batch(rng, 9), peers: peersAlongGradient(layout, 1, [3, -1]) },
    {
      batch: batch(rng, 6),
      peers: joinPeers(
        peersAlongGradient(layout, 0, [2]),
        peersAlongGradient(layout, layout.blockCount - 1, [4, 0.2]),
      ),
    },
  ]);
}

function layersLmBackendCheck(): Check {
  // A pre-norm transformer block on next-token prediction: embedding, attention, GELU MLP.
  const positions = 6;
  const vocab = 9;
  const layout = parameterLayout(
    {
      kind: 'layers',
      inputs: positions + 1,
      classes: vocab,
      loss: 'next-token',
      layers: [
        { type: 'embedding', vocab, dim: 8 },
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
        { type: 'layernorm' },
        { type: 'dense', units: vocab },
      ],
    },
    83,
  );
  const batch = (rng: Rng, rows: number): Batch => ({
    size: rows,
    x: Float32Array.from({ length: rows * (positions + 1) }, () => rng.int(vocab)),
    labels: null,
  });
  return backendCheck('layers transformer LM, context 6 (block 83)', layout, (rng) => [
    { batch: batch(rng, 5) },
    { batch: batch(rng, 5), peers: peersAlongGradient(layout, 2, [3, -1]) },
    { batch: batch(rng, 3), peers: peersAlongGradient(layout, layout.blockCount - 1, [2]) },
  ]);
}

// ---------------------------------------------------------------------------------------------

/** Every check, with a stable id (`only` matches ids and names by prefix). */
const CHECKS: readonly (readonly [string, Check])[] = [
  ['dense-forward', denseForwardCheck(37, 45, 24, 8, true, false)],
  ['dense-forward', denseForwardCheck(19, 33, 10, 3, false, false)],
  ['dense-forward', denseForwardCheck(70, 130, 36, 0, true, false)],
  ['dense-forward', denseForwardCheck(37, 45, 24, 8, true, false, SOFTWARE_TUNING)],
  ['dense-forward', denseForwardCheck(19, 33, 10, 3, false, false, SOFTWARE_TUNING)],
  ['dense-forward-sparse', denseForwardCheck(21, 50, 20, 4, true, true)],
  ['dense-forward-sparse', denseForwardCheck(13, 61, 7, 3, false, true)],
  ['dense-backward-weights', denseWeightsCheck(23, 30, 12, 8, false)],
  ['dense-backward-weights', denseWeightsCheck(11, 17, 5, 1, false)],
  ['dense-backward-weights', denseWeightsCheck(23, 30, 12, 8, false, SOFTWARE_TUNING)],
  ['dense-backward-weights-sparse', denseWeightsCheck(29, 50, 20, 4, true)],
  ['dense-backward-weights-sparse', denseWeightsCheck(13, 61, 7, 3, true)],
  ['dense-backward-input', denseInputCheck(19, 20, 12, 4)],
  ['dense-backward-input', denseInputCheck(7, 33, 5, 1)],
  ['softmax-ce', softmaxCheck(29, 10)],
  ['loss-reduce', lossReduceCheck(300)],
  ['kmeans', kmeansCheck(50, 7, 5)],
  ['sgd-parzen', sgdParzenCheck(250, 64)],
  ['sgd-parzen', sgdParzenCheck(200, 37)],
  ['sgd-parzen', sgdParzenCheck(250, 64, { order: 'average-then-step', parzen: 'off' })],
  ['sgd-parzen', sgdParzenCheck(200, 37, { order: 'average-then-step', parzen: 'hard' })],
  ['outer-momentum', outerMomentumCheck(1028)],
  ['codec-f16', f16Check(4099)],
  ['codec-int8', int8Check(1001)],
  ['backend-mlp', mlpBackendCheck()],
  // The other adapter class's kernel shapes (staged tiles on SwiftShader, or the reverse).
  ['backend-mlp', mlpBackendCheck('hardware')],
  ['backend-mlp', mlpBackendCheck('software')],
  // The scaling benchmark's merge, its outer momentum twice in the four steps.
  ['backend-mlp', mlpBackendCheck('auto', { ...SCALING_MERGE_RULE, momentumPeriod: 2 })],
  ['backend-softmax', softmaxBackendCheck()],
  ['backend-kmeans', kmeansBackendCheck()],
  ...LAYERS_CHECKS,
  ['backend-layers', layersBackendCheck()],
  ['backend-layers', layersLmBackendCheck()],
];

/**
 * Runs every kernel check on `device` and returns one result per check (a check that throws
 * fails with the error in `detail`). The device is left as it was found.
 */
export async function runKernelChecks(
  device: GPUDevice,
  options: KernelCheckOptions = {},
): Promise<KernelCheckResult[]> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const results: KernelCheckResult[] = [];
  for (let i = 0; i < CHECKS.length; i++) {
    const [id, check] = CHECKS[i]!;
    if (options.only && !options.only.some((p) => id.startsWith(p) || p.startsWith(id))) continue;
    const h = new Harness(device);
    // Every check draws from its own stream, so one check's inputs do not depend on another's.
    const rng = new Rng((seed + Math.imul(i + 1, 0x9e3779b9)) >>> 0);
    let r: KernelCheckResult;
    try {
      r = await check({ h, rng, device });
    } catch (err) {
      r = {
        name: id,
        maxRelError: Infinity,
        bound: 0,
        passed: false,
        detail: `threw: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
      };
    } finally {
      h.destroy();
    }
    const withSeed = { ...r, detail: `${r.detail ?? ''} [seed ${seed}]` };
    options.log?.(
      `${withSeed.passed ? 'pass' : 'FAIL'} ${withSeed.name}: ${withSeed.maxRelError.toExponential(2)} ≤ ${withSeed.bound.toExponential(2)} ${withSeed.detail}`,
    );
    results.push(withSeed);
  }
  return results;
}
