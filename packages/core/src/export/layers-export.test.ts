/**
 * A CNN trained on the CPU backend, exported as safetensors, evaluated again from the file alone
 * by a float64 forward pass written here with PyTorch's semantics (`nn.Conv2d`, `nn.MaxPool2d`,
 * `nn.Flatten`, `nn.Linear` on the tensors as named and shaped in the file): it must give the
 * accuracy `evaluate` reports, which is what the console shows.
 */
import { describe, expect, it } from 'vitest';
import { loadMnist } from '../data/mnist.ts';
import { CpuBackend } from '../model/cpu-backend.ts';
import { evaluate } from '../model/evaluate.ts';
import { initParameters } from '../model/init.ts';
import type { LayersSpec } from '../model/layers/types.ts';
import { parameterLayout } from '../model/spec.ts';
import {
  decodeSafetensors,
  exportParameters,
  readFloat32Tensor,
  safetensorsTensor,
} from './safetensors.ts';

const cnn: LayersSpec = {
  kind: 'layers',
  inputs: 784,
  classes: 10,
  inputShape: [1, 28, 28],
  layers: [
    { type: 'conv2d', filters: 4, kernel: 5, padding: 2 },
    { type: 'relu' },
    { type: 'maxpool2d', size: 2 },
    { type: 'conv2d', filters: 8, kernel: 3, stride: 2, padding: 1 },
    { type: 'relu' },
    { type: 'maxpool2d', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 10 },
  ],
};

interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

function conv2d(x: Tensor, w: Tensor, b: Tensor, stride: number, padding: number): Tensor {
  const [c, h, wd] = x.shape as [number, number, number];
  const [f, , k] = w.shape as [number, number, number, number];
  const oh = Math.floor((h + 2 * padding - k) / stride) + 1;
  const ow = Math.floor((wd + 2 * padding - k) / stride) + 1;
  const out = new Float64Array(f * oh * ow);
  for (let o = 0; o < f; o++) {
    for (let y = 0; y < oh; y++) {
      for (let xx = 0; xx < ow; xx++) {
        let s = b.data[o]!;
        for (let ci = 0; ci < c; ci++) {
          for (let ky = 0; ky < k; ky++) {
            for (let kx = 0; kx < k; kx++) {
              const iy = y * stride - padding + ky;
              const ix = xx * stride - padding + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              s += w.data[((o * c + ci) * k + ky) * k + kx]! * x.data[(ci * h + iy) * wd + ix]!;
            }
          }
        }
        out[(o * oh + y) * ow + xx] = s;
      }
    }
  }
  return { shape: [f, oh, ow], data: out };
}

const relu = (x: Tensor): Tensor => ({ shape: x.shape, data: x.data.map((v) => Math.max(0, v)) });

function maxpool(x: Tensor, size: number): Tensor {
  const [c, h, w] = x.shape as [number, number, number];
  const oh = Math.floor(h / size);
  const ow = Math.floor(w / size);
  const out = new Float64Array(c * oh * ow).fill(-Infinity);
  for (let ci = 0; ci < c; ci++)
    for (let y = 0; y < oh * size; y++)
      for (let xx = 0; xx < ow * size; xx++) {
        const o = (ci * oh + Math.floor(y / size)) * ow + Math.floor(xx / size);
        out[o] = Math.max(out[o]!, x.data[(ci * h + y) * w + xx]!);
      }
  return { shape: [c, oh, ow], data: out };
}

function linear(x: Float64Array, w: Tensor, b: Tensor): Float64Array {
  const [n, k] = w.shape as [number, number];
  return Float64Array.from({ length: n }, (_, j) => {
    let s = b.data[j]!;
    for (let i = 0; i < k; i++) s += w.data[j * k + i]! * x[i]!;
    return s;
  });
}

describe('safetensors export of a layers model', () => {
  it('names each tensor by layer in PyTorch layout, and a float64 forward from the file gets the accuracy evaluate shows', async () => {
    const { train, test } = await loadMnist();
    const layout = parameterLayout(cnn);
    const backend = new CpuBackend(layout, initParameters(layout, 4));
    const batch = 16;
    for (let s = 0; s < 40; s++) {
      const start = (s * batch) % (train.count - batch);
      backend.step(
        {
          size: batch,
          x: train.x.subarray(start * 784, (start + batch) * 784),
          labels: train.labels!.subarray(start, start + batch),
        },
        0.05,
      );
    }
    const params = await backend.readParameters();
    const rows = 200;
    const shown = evaluate(layout, params, test, { limit: rows });
    expect(shown.accuracy!).toBeGreaterThan(0.4);

    const file = decodeSafetensors(exportParameters(layout, params));
    expect(file.tensors.map((t) => `${t.name}:${t.shape.join('x')}`)).toEqual([
      'conv1.weight:4x1x5x5',
      'conv1.bias:4',
      'conv2.weight:8x4x3x3',
      'conv2.bias:8',
      'dense1.weight:10x72',
      'dense1.bias:10',
    ]);
    const read = (name: string): Tensor => ({
      shape: safetensorsTensor(file, name).shape,
      data: Float64Array.from(readFloat32Tensor(file, name)),
    });
    const [c1w, c1b, c2w, c2b, dw, db] = [
      'conv1.weight',
      'conv1.bias',
      'conv2.weight',
      'conv2.bias',
      'dense1.weight',
      'dense1.bias',
    ].map(read) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    let correct = 0;
    for (let i = 0; i < rows; i++) {
      const image = {
        shape: [1, 28, 28],
        data: Float64Array.from(test.x.subarray(i * 784, (i + 1) * 784)),
      };
      const a = maxpool(relu(conv2d(image, c1w, c1b, 1, 2)), 2);
      const b = maxpool(relu(conv2d(a, c2w, c2b, 2, 1)), 2);
      const logits = linear(b.data, dw, db);
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[j]! > logits[best]!) best = j;
      if (best === test.labels![i]) correct++;
    }
    // float32 and float64 may disagree only on a near-tie between two logits.
    expect(Math.abs(correct / rows - shown.accuracy!)).toBeLessThanOrEqual(1 / rows);
  });
});
