/**
 * A `layers` classifier built from conv2d, max/average pooling, ReLU, flatten and dense layers
 * (the MNIST CNN) written in TensorFlow.js ops, started from meshgrad's very parameter vector:
 * the same architecture, softmax cross-entropy (mean over the batch) and plain SGD.
 *
 * TF.js convolves NHWC images with `[kh, kw, in, out]` filters, meshgrad stores PyTorch's
 * `[out, in, kh, kw]` and flattens `[C, H, W]` (docs/design.md §6). Rather than transposing
 * activations every step (work meshgrad does not do), the parameters are permuted once when the
 * variables are made: filters to TF.js's order, and the rows of a dense layer read after a
 * flatten to HWC order. The function computed is the same.
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { Batch, ParameterLayout, PlanNode } from '@meshgrad/core';
import { planOf, tensorByName } from '@meshgrad/core';
import type { TrainingSession } from './timing.ts';
import { tfjsSgdSession, type TfModule } from './tfjs-sgd.ts';

/** One step of the TF.js network, as `tfjsCnnSession` runs it. */
type Layer = (x: Tf.Tensor) => Tf.Tensor;

/** The parameter slice of tensor `name`, a copy. */
function slice(layout: ParameterLayout, params: Float32Array, name: string): Float32Array {
  const t = tensorByName(layout, name);
  return params.slice(t.offset, t.offset + t.size);
}

/** `[out, in, kh, kw]` → `[kh, kw, in, out]`. */
export function filtersToHwio(w: Float32Array, out: number, inC: number, k: number): Float32Array {
  const r = new Float32Array(w.length);
  for (let o = 0; o < out; o++)
    for (let c = 0; c < inC; c++)
      for (let y = 0; y < k; y++)
        for (let x = 0; x < k; x++)
          r[((y * k + x) * inC + c) * out + o] = w[((o * inC + c) * k + y) * k + x]!;
  return r;
}

/**
 * A dense weight `[units, in]` to TF.js's `[in, units]` kernel; when its input is a flattened
 * `[C, H, W]` (`chw`), the input index is moved from c·H·W + h·W + w to (h·W + w)·C + c.
 */
export function denseToKernel(
  w: Float32Array,
  units: number,
  inWidth: number,
  chw: readonly [number, number, number] | null,
): Float32Array {
  const r = new Float32Array(w.length);
  for (let u = 0; u < units; u++) {
    for (let i = 0; i < inWidth; i++) {
      let j = i;
      if (chw) {
        const [c, h, wd] = chw;
        const ch = Math.floor(i / (h * wd));
        const pix = i % (h * wd);
        j = pix * c + ch;
      }
      r[j * units + u] = w[u * inWidth + i]!;
    }
  }
  return r;
}

/** The kernels `tf.conv2d`'s gradient needs; TF.js 4's wasm backend has neither. */
const CONV_GRADIENT_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;

/** Whether the active backend can differentiate `tf.conv2d`. */
export function hasConvGradients(tf: TfModule): boolean {
  return CONV_GRADIENT_KERNELS.every((name) => tf.getKernel(name, tf.getBackend()) !== undefined);
}

/**
 * `im2col` (default: when the backend cannot differentiate `tf.conv2d`) writes each stride-1
 * convolution as pad, k² shifted slices, concat and one matrix product, all ops with gradients
 * on every backend, so TF.js's wasm backend still trains the same net (the note says so).
 */
export function tfjsCnnSession(
  tf: TfModule,
  layout: ParameterLayout,
  params: Float32Array,
  batches: readonly Batch[],
  learningRate: number,
  im2col = !hasConvGradients(tf),
): TrainingSession {
  const spec = layout.spec;
  if (spec.kind !== 'layers') throw new Error('the TF.js CNN needs a layers model');
  const plan = planOf(spec);
  if (plan.loss !== 'classify') throw new Error('the TF.js CNN is a classifier');
  const variables: Tf.Variable[] = [];
  const variable = (values: Float32Array, shape: number[], name: string): Tf.Variable => {
    const v = tf.variable(tf.tensor(values, shape, 'float32'), true, name);
    variables.push(v);
    return v;
  };
  const layers: Layer[] = [];
  // The [C, H, W] a flatten last read, for the dense layer after it.
  let flattened: [number, number, number] | null = null;
  for (const node of plan.nodes as readonly PlanNode[]) {
    switch (node.op) {
      case 'conv2d': {
        const w = slice(layout, params, `${node.name}.weight`);
        const k = variable(
          filtersToHwio(w, node.filters, node.channels, node.kernel),
          [node.kernel, node.kernel, node.channels, node.filters],
          `${node.name}.weight`,
        );
        const b = variable(
          slice(layout, params, `${node.name}.bias`),
          [node.filters],
          `${node.name}.bias`,
        );
        const { stride, padding, kernel, outHeight, outWidth } = node;
        if (im2col && stride !== 1)
          throw new Error(`${node.name}: the im2col path has stride 1 only`);
        const taps = kernel * kernel * node.channels;
        layers.push((x) => {
          if (!im2col)
            return tf.add(tf.conv2d(x as Tf.Tensor4D, k as Tf.Tensor4D, stride, padding), b);
          // Column (ky·k + kx)·C + c of each output pixel: the HWIO filter as a [taps, out] matrix.
          const p = tf.pad(x, [
            [0, 0],
            [padding, padding],
            [padding, padding],
            [0, 0],
          ]);
          const shifts: Tf.Tensor[] = [];
          for (let ky = 0; ky < kernel; ky++)
            for (let kx = 0; kx < kernel; kx++)
              shifts.push(tf.slice(p, [0, ky, kx, 0], [-1, outHeight, outWidth, -1]));
          const cols = tf.reshape(tf.concat(shifts, 3), [-1, taps]);
          const y = tf.matMul(cols, tf.reshape(k, [taps, node.filters]));
          return tf.reshape(tf.add(y, b), [-1, outHeight, outWidth, node.filters]);
        });
        break;
      }
      case 'maxpool2d':
      case 'avgpool2d': {
        const { size, stride } = node;
        const pool = node.op === 'maxpool2d' ? tf.maxPool : tf.avgPool;
        layers.push((x) => pool(x as Tf.Tensor4D, size, stride, 'valid'));
        break;
      }
      case 'relu':
        layers.push((x) => tf.relu(x));
        break;
      case 'flatten': {
        const [c = 1, h = 1, wd = 1] = node.inShape;
        flattened = node.inShape.length === 3 ? [c, h, wd] : null;
        const width = node.outShape[0]!;
        layers.push((x) => tf.reshape(x, [-1, width]));
        break;
      }
      case 'dense': {
        if (node.positions !== 1) throw new Error(`${node.name}: the TF.js CNN has no sequences`);
        const w = slice(layout, params, `${node.name}.weight`);
        const k = variable(
          denseToKernel(w, node.outWidth, node.inWidth, flattened),
          [node.inWidth, node.outWidth],
          `${node.name}.weight`,
        );
        const b = variable(
          slice(layout, params, `${node.name}.bias`),
          [node.outWidth],
          `${node.name}.bias`,
        );
        flattened = null;
        layers.push((x) => tf.add(tf.matMul(x as Tf.Tensor2D, k as Tf.Tensor2D), b));
        break;
      }
      default:
        throw new Error(`${node.name}: the TF.js CNN has no ${node.op} layer`);
    }
  }
  const [channels = 1, height = 1, width = 1] = plan.inputShape;
  if (plan.inputShape.length !== 3) throw new Error('the TF.js CNN reads [C, H, W] images');
  return tfjsSgdSession(
    tf,
    {
      variables,
      classes: plan.spec.classes,
      input: (batch) => {
        // NHWC; for one channel this is the same memory as meshgrad's [C, H, W] rows.
        const nchw = tf.tensor4d(batch.x, [batch.size, channels, height, width], 'float32');
        return channels === 1
          ? tf.reshape(nchw, [batch.size, height, width, 1])
          : tf.transpose(nchw, [0, 2, 3, 1]);
      },
      logits: (x) => {
        let h: Tf.Tensor = x;
        for (const layer of layers) h = layer(h);
        return h as Tf.Tensor2D;
      },
    },
    batches,
    learningRate,
  );
}
