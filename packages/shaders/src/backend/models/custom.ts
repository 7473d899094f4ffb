/**
 * A host's own model on the WebGPU backend (docs/custom-wgsl.md): its WGSL kernel writes the
 * per-sample losses and the whole gradient in one pass, bound by the contract's names
 * (core's CUSTOM_KERNEL_BINDINGS), not by names the host chose.
 */
import type { Batch, ParameterLayout } from '@meshgrad/core';
import { CUSTOM_KERNEL_BATCH_BYTES, customKernelBatchInfo, inputSize } from '@meshgrad/core';
import { customGradKernel } from '../../kernels/programs.ts';
import type {
  CompileKernel,
  CompiledModel,
  InputPath,
  ModelKind,
  ModelKindOptions,
  PreparedModel,
  RegionOptions,
  RegionSink,
  UploadRegion,
} from '../model-kind.ts';
import { bindPass } from '../model-kind.ts';

export const customModel: ModelKind = {
  takesKernel: true,

  regions(_layout: ParameterLayout, options: RegionOptions, add: RegionSink): void {
    add.work('labels', options.maxBatch * 4);
    // The kernel's Batch uniform, beside the step parameters.
    add.uniform('batchInfo', CUSTOM_KERNEL_BATCH_BYTES);
  },

  prepare(layout: ParameterLayout, options: ModelKindOptions): PreparedModel {
    const source = options.customKernel;
    if (!source) throw new RangeError('a custom model needs options.customKernel');
    const inputs = inputSize(layout.spec);
    return {
      sparseEntries: 0,
      async compile(compile: CompileKernel): Promise<CompiledModel> {
        const gradC = await compile(customGradKernel(layout, source));
        return {
          bind(bind) {
            const grad = bindPass(gradC, {
              batch: bind('batchInfo'),
              params: bind('params'),
              grad: bind('grad'),
              x: bind('input'),
              labels: bind('labels'),
              loss: bind('sampleLoss'),
            });
            return {
              upload(batch: Batch, rows: number, upload: UploadRegion): InputPath {
                upload('input', batch.x.subarray(0, rows * inputs));
                // Unlabelled data reaches the kernel as all-zero labels.
                upload('labels', batch.labels?.subarray(0, rows) ?? new Uint32Array(rows));
                upload('batchInfo', customKernelBatchInfo(layout, rows));
                return 'dense';
              },
              encodeLoss: (run) => run(grad),
              // The kernel wrote the gradient with the losses.
              encodeGradient: () => undefined,
            };
          },
        };
      },
    };
  },
};
