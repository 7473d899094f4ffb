/**
 * The one place model kinds are registered with the WebGPU backend: each `ModelSpec['kind']`
 * maps to the `ModelKind` that runs it (see model-kind.ts). The mapped type makes a kind added
 * to core's ModelSpec without an entry here a type error.
 */
import type { ModelSpec } from '@meshgrad/core';
import type { ModelKind } from '../model-kind.ts';
import { customModel } from './custom.ts';
import { denseModel } from './dense.ts';
import { kmeansModel } from './kmeans.ts';
import { layersModel } from './layers.ts';

const MODEL_KINDS: { readonly [K in ModelSpec['kind']]: ModelKind } = {
  softmax: denseModel,
  mlp: denseModel,
  kmeans: kmeansModel,
  custom: customModel,
  layers: layersModel,
};

/** The kind that runs `spec` on the WebGPU backend. */
export function modelKindOf(spec: ModelSpec): ModelKind {
  return MODEL_KINDS[spec.kind];
}
