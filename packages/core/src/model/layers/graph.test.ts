import { describe, expect, it } from 'vitest';
import { describeModel } from '../describe.ts';
import { initParameters } from '../init.ts';
import { inputSize, parameterLayout, validateModelSpec } from '../spec.ts';
import { planLayers } from './graph.ts';
import type { LayerSpec, LayersSpec } from './types.ts';

const cnn: LayersSpec = {
  kind: 'layers',
  inputs: 784,
  classes: 10,
  inputShape: [1, 28, 28],
  layers: [
    { type: 'conv2d', filters: 16, kernel: 5, padding: 2 },
    { type: 'relu' },
    { type: 'maxpool2d', size: 2 },
    { type: 'conv2d', filters: 32, kernel: 5, padding: 2 },
    { type: 'relu' },
    { type: 'maxpool2d', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 10 },
  ],
};

const spec = (inputShape: number[], layers: LayerSpec[], classes = 2): LayersSpec => ({
  kind: 'layers',
  inputs: inputShape.reduce((a, b) => a * b, 1),
  classes,
  inputShape,
  layers,
});

describe('layers: reading a spec', () => {
  it('infers shapes and names the tensors in PyTorch layout', () => {
    const plan = planLayers(cnn);
    expect(plan.nodes.map((n) => n.outShape)).toEqual([
      [16, 28, 28],
      [16, 28, 28],
      [16, 14, 14],
      [32, 14, 14],
      [32, 14, 14],
      [32, 7, 7],
      [1568],
      [10],
    ]);
    const layout = parameterLayout(cnn);
    expect(layout.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['conv1.weight', [16, 1, 5, 5]],
      ['conv1.bias', [16]],
      ['conv2.weight', [32, 16, 5, 5]],
      ['conv2.bias', [32]],
      ['dense1.weight', [10, 1568]],
      ['dense1.bias', [10]],
    ]);
    expect(layout.size).toBe(16 * 25 + 16 + 32 * 16 * 25 + 32 + 10 * 1568 + 10);
    // The flat vector is cut into blocks as for every other kind.
    expect(layout.blockCount).toBe(Math.ceil(layout.size / layout.blockSize));
    expect(inputSize(cnn)).toBe(784);
    expect(plan.forwardMacs).toBe(16 * 784 * 25 + 32 * 196 * 16 * 25 + 1568 * 10);
    expect(describeModel(cnn)).toBe(
      'layers [1×28×28]: conv2d 16 5×5, relu, maxpool2d 2, conv2d 32 5×5, relu, maxpool2d 2, flatten, dense 10; 10 classes, 28,938 parameters',
    );
  });

  it('a next-token model reads positions + 1 tokens per sample and scores every position', () => {
    const lm: LayersSpec = {
      kind: 'layers',
      inputs: 65,
      classes: 100,
      loss: 'next-token',
      layers: [
        { type: 'embedding', vocab: 100, dim: 32 },
        { type: 'residual', layers: [{ type: 'layernorm' }, { type: 'attention', heads: 4 }] },
        { type: 'dense', units: 100 },
      ],
    };
    const plan = planLayers(lm);
    expect(plan.features).toBe(65);
    expect(plan.scoredPositions).toBe(64);
    expect(plan.classes).toBe(100);
    expect(parameterLayout(lm).tensors.map((t) => t.name)).toEqual([
      'embed1.token.weight',
      'embed1.position.weight',
      'ln1.weight',
      'ln1.bias',
      'attn1.qkv.weight',
      'attn1.qkv.bias',
      'attn1.proj.weight',
      'attn1.proj.bias',
      'dense1.weight',
      'dense1.bias',
    ]);
  });

  const bad: [string, LayersSpec, RegExp][] = [
    [
      'a conv on a vector',
      spec([784], [{ type: 'conv2d', filters: 4, kernel: 3 }]),
      /model\.layers\[0\] \(conv2d conv1\) needs a \[channels, height, width\] input, got an input of shape \[784\]/,
    ],
    [
      'a kernel larger than the image',
      spec(
        [1, 4, 4],
        [
          { type: 'conv2d', filters: 4, kernel: 5 },
          { type: 'flatten' },
          { type: 'dense', units: 2 },
        ],
      ),
      /model\.layers\[0\] \(conv2d conv1\): kernel 5 with padding 0 does not fit the input height × width 4 × 4/,
    ],
    [
      'a pooling window larger than the image',
      spec(
        [1, 6, 6],
        [
          { type: 'conv2d', filters: 2, kernel: 5 },
          { type: 'maxpool2d', size: 3 },
        ],
      ),
      /model\.layers\[1\] \(maxpool2d maxpool1\): window 3 is larger than the input height × width 2 × 2/,
    ],
    [
      'heads that do not divide the width',
      spec(
        [8],
        [
          { type: 'embedding', vocab: 5, dim: 6 },
          { type: 'attention', heads: 4 },
        ],
      ),
      /model\.layers\[1\] \(attention attn1\): width 6 is not a multiple of heads = 4/,
    ],
    [
      'a residual block that changes the shape',
      spec(
        [6],
        [
          { type: 'residual', layers: [{ type: 'dense', units: 4 }] },
          { type: 'dense', units: 2 },
        ],
      ),
      /model\.layers\[0\] \(residual res1\): its layers turn \[6\] into \[4\]; a residual block must keep the shape/,
    ],
    [
      'a bad layer inside a residual block',
      spec([6], [{ type: 'residual', layers: [{ type: 'dense', units: 0 }] }]),
      /model\.layers\[0\]\.layers\[0\] \(dense dense1\)\.units must be a positive integer, got 0/,
    ],
    [
      'classify without a flat head',
      spec([1, 8, 8], [{ type: 'conv2d', filters: 2, kernel: 3 }]),
      /model\.layers\[0\] \(conv2d conv1\): classify needs \[classes\] = \[2\] logits from the last layer, got \[2, 6, 6\] \(add a flatten and a dense layer\)/,
    ],
    [
      'an embedding after the first layer',
      spec(
        [4],
        [
          { type: 'dense', units: 4 },
          { type: 'embedding', vocab: 3, dim: 2 },
        ],
      ),
      /model\.layers\[1\] \(embedding embed1\) must be the first layer/,
    ],
    [
      'an unknown layer type',
      spec([4], [{ type: 'dropout' } as unknown as LayerSpec]),
      /model\.layers\[0\]\.type must be one of dense, conv2d/,
    ],
    [
      'two layers with one name',
      spec(
        [4],
        [
          { type: 'dense', units: 4, name: 'fc' },
          { type: 'dense', units: 2, name: 'fc' },
        ],
      ),
      /model\.layers\[1\]\.name fc is used twice/,
    ],
    ['no layers', spec([4], []), /model\.layers must list at least one layer/],
  ];
  for (const [what, s, message] of bad) {
    it(`names the layer and the dimension: ${what}`, () => {
      expect(() => validateModelSpec(s)).toThrow(message);
      expect(() => parameterLayout(s)).toThrow(RangeError);
    });
  }

  it('checks inputs and classes against the shapes', () => {
    expect(() => validateModelSpec({ ...cnn, inputs: 785 })).toThrow(
      /model\.inputShape \[1, 28, 28\] holds 784 values, but model\.inputs = 785 gives 785/,
    );
    expect(() => validateModelSpec({ ...cnn, classes: 12 })).toThrow(
      /model\.layers\[7\] \(dense dense1\): classify needs \[classes\] = \[12\] logits from the last layer, got \[10\]/,
    );
    expect(() =>
      validateModelSpec({
        kind: 'layers',
        inputs: 9,
        classes: 20,
        loss: 'next-token',
        layers: [
          { type: 'embedding', vocab: 21, dim: 4 },
          { type: 'dense', units: 20 },
        ],
      }),
    ).toThrow(/model\.layers\[0\] \(embedding embed1\): vocab 21 must equal model\.classes = 20/);
  });

  it('next-token needs [positions, classes] logits', () => {
    const lm: LayersSpec = {
      kind: 'layers',
      inputs: 9,
      classes: 20,
      loss: 'next-token',
      layers: [
        { type: 'embedding', vocab: 20, dim: 4 },
        { type: 'dense', units: 19 },
      ],
    };
    expect(() => planLayers(lm)).toThrow(
      /model\.layers\[1\] \(dense dense1\): next-token needs \[positions, classes\] = \[8, 20\] logits, got \[8, 19\]/,
    );
  });
});

describe('layers: seeded initialisation', () => {
  it('is reproducible from the seed and follows each layer type', () => {
    const lm: LayersSpec = {
      kind: 'layers',
      inputs: 17,
      classes: 50,
      loss: 'next-token',
      layers: [
        { type: 'embedding', vocab: 50, dim: 32 },
        { type: 'residual', layers: [{ type: 'layernorm' }, { type: 'attention', heads: 4 }] },
        { type: 'layernorm' },
        { type: 'dense', units: 50 },
      ],
    };
    const layout = parameterLayout(lm);
    const a = initParameters(layout, 7);
    expect(initParameters(layout, 7)).toEqual(a);
    expect(initParameters(layout, 8)).not.toEqual(a);
    const tensor = (name: string) => {
      const t = layout.tensors.find((x) => x.name === name)!;
      return Array.from(a.subarray(t.offset, t.offset + t.size));
    };
    const std = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(tensor('ln1.weight').every((v) => v === 1)).toBe(true);
    expect(tensor('ln2.bias').every((v) => v === 0)).toBe(true);
    expect(tensor('attn1.qkv.bias').every((v) => v === 0)).toBe(true);
    expect(std(tensor('embed1.token.weight'))).toBeCloseTo(0.02, 2);
    expect(std(tensor('attn1.qkv.weight'))).toBeCloseTo(Math.sqrt(1 / 32), 2);
    const head = tensor('dense1.weight');
    const limit = Math.sqrt(6 / (32 + 50));
    expect(Math.max(...head.map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(std(head)).toBeCloseTo(limit / Math.sqrt(3), 2);
    const conv = parameterLayout(cnn);
    const w = initParameters(conv, 1);
    const c2 = conv.tensors[2]!;
    expect(std(Array.from(w.subarray(c2.offset, c2.offset + c2.size)))).toBeCloseTo(
      Math.sqrt(2 / (16 * 25)),
      2,
    );
  });
});
