/**
 * The layer-graph kind (`layers`) on the WebGPU backend. Its WGSL kernels are checked on their
 * own (kernels/layers/) but not yet wired into the step, so creating a WebGPU backend for such a
 * model refuses with a RangeError before anything is allocated; volunteers then train it on the
 * CPU backend.
 */
import type { ModelKind } from '../model-kind.ts';

export const layersModel: ModelKind = {
  takesKernel: false,
  regions() {},
  prepare() {
    throw new RangeError(
      'layers models are not wired into the WebGPU backend yet: train them on the CPU backend',
    );
  },
};
