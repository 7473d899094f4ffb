/**
 * K-Means in its SGD form on the WebGPU backend: one pass finds each sample's nearest centre and
 * its loss, a second sums the pull of the samples on their centres into the gradient.
 */
import type { Batch, KMeansSpec, ParameterLayout } from '@meshgrad/core';
import { kmeansAssignKernel, kmeansGradKernel } from '../../kernels/programs.ts';
import type {
  CompileKernel,
  CompiledModel,
  InputPath,
  ModelKind,
  PreparedModel,
  RegionOptions,
  RegionSink,
  UploadRegion,
} from '../model-kind.ts';
import { bindPass } from '../model-kind.ts';

function kmeansSpec(layout: ParameterLayout): KMeansSpec {
  const spec = layout.spec;
  if (spec.kind !== 'kmeans') throw new RangeError(`not a kmeans model: ${spec.kind}`);
  return spec;
}

export const kmeansModel: ModelKind = {
  takesKernel: false,

  regions(_layout: ParameterLayout, options: RegionOptions, add: RegionSink): void {
    add.work('nearest', options.maxBatch * 4);
  },

  prepare(layout: ParameterLayout): PreparedModel {
    const { dims, clusters } = kmeansSpec(layout);
    return {
      sparseEntries: 0,
      async compile(compile: CompileKernel): Promise<CompiledModel> {
        const [assignC, gradC] = await Promise.all([
          compile(kmeansAssignKernel(dims, clusters)),
          compile(kmeansGradKernel(dims, clusters)),
        ]);
        return {
          bind(bind) {
            const common = { step: bind('step'), x: bind('input'), params: bind('params') };
            const assign = bindPass(assignC, {
              ...common,
              nearest: bind('nearest'),
              sampleLoss: bind('sampleLoss'),
            });
            const grad = bindPass(gradC, {
              ...common,
              nearest: bind('nearest'),
              grad: bind('grad'),
            });
            return {
              upload(batch: Batch, rows: number, upload: UploadRegion): InputPath {
                upload('input', batch.x.subarray(0, rows * dims));
                return 'dense';
              },
              encodeLoss: (run) => run(assign),
              encodeGradient: (run) => run(grad),
            };
          },
        };
      },
    };
  },
};
