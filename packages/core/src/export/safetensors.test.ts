import { describe, expect, it } from 'vitest';
import { initParameters } from '../model/init.ts';
import { parameterLayout } from '../model/spec.ts';
import {
  decodeSafetensors,
  encodeSafetensors,
  exportParameters,
  importParameters,
  readFloat32Tensor,
  SafetensorsError,
  type SafetensorsErrorCode,
} from './safetensors.ts';

/** Builds a file by hand from a header object and data bytes, independently of the writer. */
function handMade(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let json = JSON.stringify(header);
  if (pad) while ((8 + json.length) % 8 !== 0) json += ' ';
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setUint32(0, text.length, true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

function expectCode(fn: () => unknown, code: SafetensorsErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as SafetensorsError).code).toBe(code);
    if (message) expect((err as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('safetensors', () => {
  it('writes the documented layout byte for byte', () => {
    const bytes = encodeSafetensors(
      [
        { name: 'a', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
        { name: 'b', shape: [1], data: new Float32Array([-0.5]) },
      ],
      { job: 'x' },
    );
    const view = new DataView(bytes.buffer);
    const n = view.getUint32(0, true);
    expect(view.getUint32(4, true)).toBe(0);
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"job":"x"},' +
        '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}',
    );
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    expect([...bytes.subarray(8 + n)]).toEqual([...f32Bytes([1, 2, 3, 4, -0.5])]);
  });

  it('reads a hand-made file, in any key order', () => {
    const data = f32Bytes([7, 8, 9]);
    const file = decodeSafetensors(
      handMade(
        {
          second: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          __metadata__: { format: 'pt' },
          first: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
        },
        data,
        false,
      ),
    );
    expect(file.tensors.map((t) => t.name)).toEqual(['first', 'second']);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...readFloat32Tensor(file, 'first')]).toEqual([7]);
    expect([...readFloat32Tensor(file, 'second')]).toEqual([8, 9]);
  });

  it('round-trips model parameters with the layout names, shapes and metadata', () => {
    for (const spec of [
      { kind: 'mlp', inputs: 6, hidden: [5, 4], classes: 3 } as const,
      { kind: 'softmax', inputs: 4, classes: 2 } as const,
      { kind: 'kmeans', dims: 3, clusters: 5 } as const,
    ]) {
      const layout = parameterLayout(spec, 7);
      const params = initParameters(layout, 3);
      const bytes = exportParameters(layout, params, { checkpoint: '4' });
      const file = decodeSafetensors(bytes);
      expect(file.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(
        layout.tensors.map((t) => [t.name, 'F32', t.shape]),
      );
      expect(file.metadata).toEqual({ 'meshgrad.model': JSON.stringify(spec), checkpoint: '4' });
      expect(importParameters(layout, bytes)).toEqual(params);
    }
    const mlp = decodeSafetensors(
      exportParameters(
        parameterLayout({ kind: 'mlp', inputs: 784, hidden: [128], classes: 10 }),
        new Float32Array(784 * 128 + 128 + 128 * 10 + 10),
      ),
    );
    expect(mlp.tensors.map((t) => `${t.name}:${t.shape.join('x')}`)).toEqual([
      'dense0.weight:784x128',
      'dense0.bias:128',
      'dense1.weight:128x10',
      'dense1.bias:10',
    ]);
  });

  it('writes from a subarray at an unaligned offset', () => {
    const backing = new Float32Array([9, 1, 2, 3]);
    const bytes = encodeSafetensors([{ name: 't', shape: [3], data: backing.subarray(1) }]);
    expect([...readFloat32Tensor(decodeSafetensors(bytes), 't')]).toEqual([1, 2, 3]);
  });

  it('refuses malformed files with a code and a reason', () => {
    const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const data = f32Bytes([1, 2]);
    expectCode(() => decodeSafetensors(new Uint8Array(5)), 'ERR_SAFETENSORS_TRUNCATED');
    const huge = handMade(ok, data);
    new DataView(huge.buffer).setUint32(4, 1, true);
    expectCode(() => decodeSafetensors(huge), 'ERR_SAFETENSORS_HEADER', /exceeds/);
    expectCode(
      () => decodeSafetensors(handMade(ok, data).subarray(0, 20)),
      'ERR_SAFETENSORS_TRUNCATED',
    );
    expectCode(
      () => decodeSafetensors(handMade(ok, data.subarray(0, 4))),
      'ERR_SAFETENSORS_TRUNCATED',
      /cover 8 bytes/,
    );
    expectCode(
      () => decodeSafetensors(handMade(ok, f32Bytes([1, 2, 3]))),
      'ERR_SAFETENSORS_OFFSETS',
      /holds 12/,
    );
    expectCode(
      () => decodeSafetensors(handMade([1, 2], new Uint8Array(0))),
      'ERR_SAFETENSORS_HEADER',
      /JSON object/,
    );
    const notJson = handMade(ok, data);
    notJson[9] = 0x7b; // '{{' is not JSON
    expectCode(() => decodeSafetensors(notJson), 'ERR_SAFETENSORS_HEADER', /not valid JSON/);
    expectCode(
      () => decodeSafetensors(handMade({ t: { ...ok.t, dtype: 'F128' } }, data)),
      'ERR_SAFETENSORS_DTYPE',
      /t\.dtype/,
    );
    expectCode(
      () => decodeSafetensors(handMade({ t: { ...ok.t, shape: [3] } }, data)),
      'ERR_SAFETENSORS_OFFSETS',
      /^t: /,
    );
    expectCode(
      () => decodeSafetensors(handMade({ t: { ...ok.t, shape: [-2] } }, data)),
      'ERR_SAFETENSORS_HEADER',
      /t\.shape/,
    );
    expectCode(
      () =>
        decodeSafetensors(
          handMade(
            {
              a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
              b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
            },
            new Uint8Array(12),
          ),
        ),
      'ERR_SAFETENSORS_OFFSETS',
      /gap or overlap/,
    );
    expectCode(
      () => decodeSafetensors(handMade({ __metadata__: { n: 1 }, ...ok }, data)),
      'ERR_SAFETENSORS_HEADER',
      /__metadata__\.n/,
    );
  });

  it('refuses files that do not match the model', () => {
    const layout = parameterLayout({ kind: 'softmax', inputs: 3, classes: 2 });
    const params = new Float32Array(layout.size);
    const other = parameterLayout({ kind: 'softmax', inputs: 4, classes: 2 });
    expectCode(
      () => importParameters(other, exportParameters(layout, params)),
      'ERR_SAFETENSORS_LAYOUT',
      /dense0\.weight: shape \[3, 2\], the model expects \[4, 2\]/,
    );
    const extra = encodeSafetensors([
      { name: 'dense0.weight', shape: [3, 2], data: new Float32Array(6) },
      { name: 'dense0.bias', shape: [2], data: new Float32Array(2) },
      { name: 'stray', shape: [1], data: new Float32Array(1) },
    ]);
    expectCode(() => importParameters(layout, extra), 'ERR_SAFETENSORS_LAYOUT', /stray/);
    const missing = encodeSafetensors([
      { name: 'dense0.weight', shape: [3, 2], data: new Float32Array(6) },
    ]);
    expectCode(() => importParameters(layout, missing), 'ERR_SAFETENSORS_LAYOUT', /dense0\.bias/);
    const f16 = decodeSafetensors(
      handMade({ t: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)),
    );
    expectCode(() => readFloat32Tensor(f16, 't'), 'ERR_SAFETENSORS_DTYPE', /F16/);
    expectCode(
      () => encodeSafetensors([{ name: 'x', shape: [2], data: new Float32Array(3) }]),
      'ERR_SAFETENSORS_INPUT',
    );
    expectCode(() => exportParameters(layout, new Float32Array(2)), 'ERR_SAFETENSORS_INPUT');
  });
});
