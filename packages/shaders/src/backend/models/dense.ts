/**
 * Softmax regression and MLPs on the WebGPU backend: a stack of dense layers (ReLU between them)
 * under a softmax cross-entropy head. A softmax model is the one-layer stack, so both kinds share
 * this file. The first layer reads the minibatch either dense or, for mostly-zero batches, as the
 * CSR/CSC lists of sparse-input.ts.
 */
import type { Batch, ParameterLayout } from '@meshgrad/core';
import { denseWidths, inputSize } from '@meshgrad/core';
import type { DenseShape } from '../../kernels/programs.ts';
import {
  denseBackwardInputKernel,
  denseBackwardWeightsKernel,
  denseBackwardWeightsSparseKernel,
  denseForwardKernel,
  denseForwardSparseKernel,
  softmaxCrossEntropyKernel,
} from '../../kernels/programs.ts';
import type {
  BindRegion,
  CompileKernel,
  CompiledKernel,
  CompiledModel,
  InputPath,
  ModelKind,
  ModelKindOptions,
  ModelPasses,
  Pass,
  PreparedModel,
  RegionOptions,
  RegionSink,
  RunPass,
  UploadRegion,
} from '../model-kind.ts';
import { bindPass } from '../model-kind.ts';
import { SparseInputEncoder } from '../sparse-input.ts';

/**
 * Largest fraction of nonzero first-layer inputs for which the sparse path runs. The CSR and CSC
 * lists take 16 bytes per nonzero against 4 per dense value, so above a quarter the upload grows;
 * on SwiftShader the sparse kernels still win up to about this fraction.
 */
export const SPARSE_MAX_DENSITY = 0.35;

/** The kernels of one layer; `T` is a compiled kernel before binding and a `Pass` after. */
interface Layer<T> {
  readonly forward: T;
  readonly backWeights: T;
  /** Layers after the first: dX for the layer below. */
  readonly backInput: T | null;
  /** First layer with the sparse path enabled. */
  readonly forwardSparse: T | null;
  readonly backWeightsSparse: T | null;
}

/** The layers' shapes; throws when a bias does not follow its weight. */
function layerShapes(layout: ParameterLayout): DenseShape[] {
  const widths = denseWidths(layout.spec);
  const shapes: DenseShape[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const weight = layout.tensors[2 * l]!;
    const bias = layout.tensors[2 * l + 1]!;
    if (bias.offset !== weight.offset + weight.size) {
      throw new RangeError(`layer ${l}: the bias must follow the weight (spec.ts layout)`);
    }
    shapes.push({ inputs: widths[l]!, outputs: widths[l + 1]!, weightOffset: weight.offset });
  }
  return shapes;
}

export const denseModel: ModelKind = {
  takesKernel: false,

  regions(layout: ParameterLayout, options: RegionOptions, add: RegionSink): void {
    const { maxBatch, sparseEntries } = options;
    add.work('labels', maxBatch * 4);
    if (sparseEntries > 0) {
      // CSR rows of [x | 1] per sample, CSC columns per input (plus the bias column).
      add.work('csrRows', (maxBatch + 1) * 4);
      add.work('csrEntries', sparseEntries * 8);
      add.work('cscCols', (inputSize(layout.spec) + 2) * 4);
      add.work('cscEntries', sparseEntries * 8);
    }
    const widths = denseWidths(layout.spec);
    for (let l = 1; l < widths.length; l++) {
      add.work(`act${l - 1}`, maxBatch * widths[l]! * 4);
      add.work(`delta${l - 1}`, maxBatch * widths[l]! * 4);
    }
  },

  prepare(layout: ParameterLayout, options: ModelKindOptions): PreparedModel {
    const inputs = inputSize(layout.spec);
    const { maxBatch, tuning } = options;
    const sparse =
      options.sparseInput === 'auto'
        ? new SparseInputEncoder(
            inputs,
            maxBatch,
            Math.floor(maxBatch * inputs * SPARSE_MAX_DENSITY) + maxBatch,
          )
        : null;
    const shapes = layerShapes(layout);
    const classes = denseWidths(layout.spec).at(-1)!;
    return {
      sparseEntries: sparse?.capacity ?? 0,
      async compile(compile: CompileKernel): Promise<CompiledModel> {
        const compileLayer = async (
          shape: DenseShape,
          first: boolean,
          relu: boolean,
        ): Promise<Layer<CompiledKernel>> => {
          const [forward, backWeights, backInput, forwardSparse, backWeightsSparse] =
            await Promise.all([
              compile(denseForwardKernel(shape, relu, tuning)),
              compile(denseBackwardWeightsKernel(shape, tuning)),
              first ? null : compile(denseBackwardInputKernel(shape)),
              first && sparse ? compile(denseForwardSparseKernel(shape, relu)) : null,
              first && sparse ? compile(denseBackwardWeightsSparseKernel(shape)) : null,
            ]);
          return { forward, backWeights, backInput, forwardSparse, backWeightsSparse };
        };
        const [layers, head] = await Promise.all([
          Promise.all(shapes.map((s, l) => compileLayer(s, l === 0, l + 1 < shapes.length))),
          compile(softmaxCrossEntropyKernel(classes)),
        ]);
        return { bind: (bind) => bindDense(layers, head, sparse, inputs, bind) };
      },
    };
  },
};

function bindDense(
  compiled: readonly Layer<CompiledKernel>[],
  headC: CompiledKernel,
  sparse: SparseInputEncoder | null,
  inputs: number,
  bind: BindRegion,
): ModelPasses {
  const step = bind('step');
  const params = bind('params');
  const grad = bind('grad');
  const layers = compiled.map((c, l): Layer<Pass> => {
    const x = l === 0 ? bind('input') : bind(`act${l - 1}`);
    const y = bind(`act${l}`);
    const dy = bind(`delta${l}`);
    return {
      forward: bindPass(c.forward, { step, x, params, y }),
      backWeights: bindPass(c.backWeights, { step, x, dy, grad }),
      backInput: c.backInput
        ? bindPass(c.backInput, { step, a: x, dy, params, dx: bind(`delta${l - 1}`) })
        : null,
      forwardSparse: c.forwardSparse
        ? bindPass(c.forwardSparse, {
            step,
            rowStart: bind('csrRows'),
            entries: bind('csrEntries'),
            params,
            y,
          })
        : null,
      backWeightsSparse: c.backWeightsSparse
        ? bindPass(c.backWeightsSparse, {
            colStart: bind('cscCols'),
            entries: bind('cscEntries'),
            dy,
            grad,
          })
        : null,
    };
  });
  const last = layers.length - 1;
  const head = bindPass(headC, {
    step,
    logits: bind(`act${last}`),
    labels: bind('labels'),
    dlogits: bind(`delta${last}`),
    sampleLoss: bind('sampleLoss'),
  });
  /** Whether this step's first layer reads the sparse lists. */
  let sparseStep = false;
  return {
    upload(batch: Batch, rows: number, upload: UploadRegion): InputPath {
      const lists = sparse?.encode(batch.x, rows) ?? null;
      if (lists) {
        upload('csrRows', lists.csrRows);
        upload('csrEntries', lists.csrEntries);
        upload('cscCols', lists.cscCols);
        upload('cscEntries', lists.cscEntries);
      } else {
        upload('input', batch.x.subarray(0, rows * inputs));
      }
      sparseStep = lists !== null;
      upload('labels', batch.labels!.subarray(0, rows));
      return sparseStep ? 'sparse' : 'dense';
    },
    encodeLoss(run: RunPass): void {
      layers.forEach((layer, l) => {
        run(l === 0 && sparseStep ? layer.forwardSparse! : layer.forward);
      });
      run(head);
    },
    encodeGradient(run: RunPass): void {
      for (let l = layers.length - 1; l >= 0; l--) {
        const layer = layers[l]!;
        // dX reads W_l before the update pass changes it; both come before that pass.
        if (layer.backInput) run(layer.backInput);
        run(l === 0 && sparseStep ? layer.backWeightsSparse! : layer.backWeights);
      }
    },
  };
}
