/**
 * The layer-graph kind (`layers`, core's layers/) on the WebGPU backend. The plan is lowered once
 * into a list of forward and backward dispatches over named buffer regions (one activation and
 * one gradient region per layer output), all recorded into the step's single compute pass, so a
 * step stays one submission with no readback (docs/design.md §2, §3). The update is the
 * backend's shared SGD + Parzen pass, exactly as CpuBackend documents it.
 *
 * Lowering rules:
 * - flatten is free: its output is its input's region (row-major either way);
 * - a ReLU right after a dense or conv2d layer is fused into that product's epilogue; its
 *   backward then reads the ReLU's output, which is positive exactly where its input is;
 * - a residual block runs its inner layers, then adds; its last inner layer takes the block's
 *   upstream gradient region directly, and the backward adds the two paths into the block's dx;
 * - the first layer computes no input gradient (nothing reads it), as in core's LayersNetwork;
 * - every parameter tensor belongs to one layer, whose backward kernel overwrites its gradient,
 *   so the gradient buffer needs no clearing between steps;
 * - an embedding reads its token ids in place from the input region (stride: floats per sample),
 *   and the next-token loss reads its targets there too, so the upload is the batch as it is;
 * - attention is its two projections as dense GEMMs around the fused core of attention.wgsl.
 *
 * Every layer type and both losses are wired. What still refuses, with a RangeError naming it
 * before anything is allocated, are degenerate models (no layer with parameters, a residual
 * block of flatten layers only); those train on the CPU backend.
 */
import type {
  AttentionNode,
  Batch,
  Conv2dNode,
  DenseNode,
  LayersPlan,
  ParameterLayout,
  PlanNode,
} from '@meshgrad/core';
import { planOf, tensorOffsets } from '@meshgrad/core';
import type { Kernel } from '../../kernels/programs.ts';
import { softmaxCrossEntropyKernel } from '../../kernels/programs.ts';
import type { Activation } from '../../kernels/layers/programs.ts';
import {
  layersConvBackwardInputKernel,
  layersConvBackwardWeightsKernel,
  layersConvForwardKernel,
  layersDenseBackwardInputKernel,
  layersDenseBackwardWeightsKernel,
  layersDenseForwardKernel,
  layersElementwiseKernel,
  layersEmbeddingBackwardKernel,
  layersEmbeddingForwardKernel,
  layersAttentionKernel,
  layersNextTokenSampleKernel,
  layersNextTokenScoreKernel,
  attentionRegionSizes,
  layersLayerNormBackwardInputKernel,
  layersLayerNormBackwardParamsKernel,
  layersLayerNormForwardKernel,
  layersPoolBackwardKernel,
  layersPoolForwardKernel,
  LAYERNORM_STATS_PER_ROW,
} from '../../kernels/layers/programs.ts';
import type {
  BindRegion,
  CompileKernel,
  CompiledKernel,
  CompiledModel,
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

/** One dispatch: a kernel and, per binding name (besides `step`), the region it binds. */
interface Dispatch {
  readonly kernel: Kernel;
  readonly regions: Readonly<Record<string, string>>;
}

/** A layer output as the next layer sees it: its region and its gradient's region. */
interface Tensor {
  readonly out: string;
  /** Where ∂loss/∂out goes; null when nothing upstream needs it (before the first product). */
  readonly dOut: string | null;
}

interface Lowered {
  /** Work regions and their floats per sample. */
  readonly regions: ReadonlyMap<string, number>;
  readonly forward: readonly Dispatch[];
  /** In execution order. */
  readonly backward: readonly Dispatch[];
  /** The loss: per-sample losses into `sampleLoss`, ∂(mean loss)/∂logits. */
  readonly head: readonly Dispatch[];
  readonly features: number;
  /** `classify` (labels uploaded) or `next-token` (targets read from the input). */
  readonly classify: boolean;
}

/** The refusal for a model this backend cannot run yet, naming what is missing. */
function notWired(what: string): RangeError {
  return new RangeError(
    `layers models with ${what} are not wired into the WebGPU backend yet: train them on the CPU backend`,
  );
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Workgroups per grid dimension every WebGPU device allows (the spec's default limit); a model
 * whose grids at maxBatch exceed it is refused at create rather than failing validation mid-run.
 */
const MAX_WORKGROUPS_PER_DIMENSION = 65535;

class Lowering {
  readonly regions = new Map<string, number>();
  readonly forward: Dispatch[] = [];
  /** Backward dispatches in reverse execution order (pushed while walking forward). */
  readonly backwardReversed: Dispatch[] = [];

  constructor(
    private readonly offsets: readonly number[],
    /** Floats per sample in the input region (the embedding reads its token ids there). */
    private readonly features: number,
  ) {}

  region(name: string, perSample: number): string {
    this.regions.set(name, perSample);
    return name;
  }

  /**
   * Lowers `nodes` reading `input`. `lastDOut`, when set, is the gradient region the last
   * producing layer must use (a residual block's own).
   */
  sequence(nodes: readonly PlanNode[], input: Tensor, lastDOut: string | null): Tensor {
    let last = -1;
    nodes.forEach((n, i) => {
      if (n.op !== 'flatten') last = i;
    });
    let cur = input;
    let fusedRelu = false;
    nodes.forEach((node, i) => {
      const dOutName = i === last && lastDOut !== null ? lastDOut : `${node.name}.dOut`;
      const perSample = size(node.outShape);
      const next = nodes[i + 1];
      switch (node.op) {
        case 'flatten':
          return;
        case 'dense':
        case 'conv2d': {
          fusedRelu = next?.op === 'relu';
          // A fused ReLU's output region is the product's output.
          const out = this.region(`${fusedRelu ? next!.name : node.name}.out`, perSample);
          const dOut = this.region(dOutName, perSample);
          this.product(node, cur, out, dOut, fusedRelu ? 'relu' : 'none');
          cur = { out, dOut };
          return;
        }
        case 'relu':
        case 'gelu': {
          const dOut = this.region(dOutName, perSample);
          if (node.op === 'relu' && fusedRelu) {
            fusedRelu = false;
            // cur.out already holds ReLU(x); ReLU'(x) = [ReLU(x) > 0].
            if (cur.dOut !== null) {
              this.backwardReversed.push({
                kernel: layersElementwiseKernel('relu', true, perSample),
                regions: { src: cur.out, aux: dOut, dst: cur.dOut },
              });
            }
            cur = { out: cur.out, dOut };
            return;
          }
          const out = this.region(`${node.name}.out`, perSample);
          this.forward.push({
            kernel: layersElementwiseKernel(node.op, false, perSample),
            regions: { src: cur.out, aux: cur.out, dst: out },
          });
          if (cur.dOut !== null) {
            this.backwardReversed.push({
              kernel: layersElementwiseKernel(node.op, true, perSample),
              regions: { src: cur.out, aux: dOut, dst: cur.dOut },
            });
          }
          cur = { out, dOut };
          return;
        }
        case 'maxpool2d':
        case 'avgpool2d': {
          const out = this.region(`${node.name}.out`, perSample);
          const dOut = this.region(dOutName, perSample);
          const max = node.op === 'maxpool2d';
          // Average pooling binds a minimal winner region it never touches.
          const winner = this.region(`${node.name}.winner`, max ? perSample : 0);
          const geometry = { ...node, max };
          this.forward.push({
            kernel: layersPoolForwardKernel(geometry),
            regions: { x: cur.out, y: out, winner },
          });
          if (cur.dOut !== null) {
            this.backwardReversed.push({
              kernel: layersPoolBackwardKernel(geometry),
              regions: { dy: dOut, winner, dx: cur.dOut },
            });
          }
          cur = { out, dOut };
          return;
        }
        case 'residual': {
          if (!node.inner.some((n) => n.op !== 'flatten')) {
            throw notWired(`a residual block of flatten layers only (${node.path})`);
          }
          const out = this.region(`${node.name}.out`, perSample);
          const dOut = this.region(dOutName, perSample);
          const dInner = cur.dOut === null ? null : this.region(`${node.name}.dInner`, perSample);
          // Pushed before the inner layers' backward, so it runs after them once reversed.
          if (cur.dOut !== null) {
            this.backwardReversed.push({
              kernel: layersElementwiseKernel('add', true, perSample),
              regions: { src: dOut, aux: dInner!, dst: cur.dOut },
            });
          }
          const f = this.sequence(node.inner, { out: cur.out, dOut: dInner }, dOut);
          this.forward.push({
            kernel: layersElementwiseKernel('add', false, perSample),
            regions: { src: cur.out, aux: f.out, dst: out },
          });
          cur = { out, dOut };
          return;
        }
        case 'layernorm': {
          const out = this.region(`${node.name}.out`, perSample);
          const dOut = this.region(dOutName, perSample);
          const stats = this.region(`${node.name}.stats`, node.positions * LAYERNORM_STATS_PER_ROW);
          const g = {
            ...node,
            weight: this.offsets[node.weight]!,
            bias: this.offsets[node.bias]!,
          };
          this.forward.push({
            kernel: layersLayerNormForwardKernel(g),
            regions: { x: cur.out, params: 'params', y: out, stats },
          });
          if (cur.dOut !== null) {
            this.backwardReversed.push({
              kernel: layersLayerNormBackwardInputKernel(g),
              regions: { x: cur.out, dy: dOut, params: 'params', stats, dx: cur.dOut },
            });
          }
          this.backwardReversed.push({
            kernel: layersLayerNormBackwardParamsKernel(g),
            regions: { x: cur.out, dy: dOut, stats, grad: 'grad' },
          });
          cur = { out, dOut };
          return;
        }
        case 'embedding': {
          const out = this.region(`${node.name}.out`, perSample);
          const dOut = this.region(dOutName, perSample);
          const g = {
            ...node,
            stride: this.features,
            token: this.offsets[node.token]!,
            position: this.offsets[node.position]!,
          };
          // The kernel file has both entry points and so both layouts bind every buffer.
          const regions = { tokens: cur.out, params: 'params', dy: dOut, out, grad: 'grad' };
          this.forward.push({ kernel: layersEmbeddingForwardKernel(g), regions });
          this.backwardReversed.push({ kernel: layersEmbeddingBackwardKernel(g), regions });
          // The first layer (plan rule): token ids have no gradient.
          cur = { out, dOut };
          return;
        }
        case 'attention':
          cur = this.attention(node, cur, dOutName);
          return;
      }
    });
    return cur;
  }

  /**
   * Causal self-attention: the fused q|k|v projection and the output projection as dense GEMMs
   * over positions, the core (scores, softmax, context and their gradients) in attention.wgsl.
   */
  private attention(node: AttentionNode, input: Tensor, dOutName: string): Tensor {
    const sizes = attentionRegionSizes(node);
    const r = (suffix: string, perSample: number) =>
      this.region(`${node.name}.${suffix}`, perSample);
    const qkv = r('qkv', sizes.qkv);
    const dQkv = r('dQkv', sizes.qkv);
    const probs = r('probs', sizes.probs);
    const dScores = r('dScores', sizes.probs);
    const context = r('context', sizes.context);
    const dContext = r('dContext', sizes.context);
    const out = r('out', sizes.context);
    const dOut = this.region(dOutName, sizes.context);
    const dense = (inWidth: number, outWidth: number, weight: number, bias: number) => ({
      positions: node.positions,
      inWidth,
      outWidth,
      weight: this.offsets[weight]!,
      bias: this.offsets[bias]!,
    });
    const d = node.width;
    const qkvProj = dense(d, 3 * d, node.qkvWeight, node.qkvBias);
    const outProj = dense(d, d, node.projWeight, node.projBias);
    const core = { qkv, probs, context, dContext, dScores, dQkv };
    this.forward.push(
      {
        kernel: layersDenseForwardKernel(qkvProj, 'none'),
        regions: { x: input.out, params: 'params', y: qkv },
      },
      { kernel: layersAttentionKernel(node, 'forward'), regions: core },
      {
        kernel: layersDenseForwardKernel(outProj, 'none'),
        regions: { x: context, params: 'params', y: out },
      },
    );
    // Reverse of execution: proj ∂W and dContext, query then key pass, qkv ∂W and dx.
    if (input.dOut !== null) {
      this.backwardReversed.push({
        kernel: layersDenseBackwardInputKernel(qkvProj),
        regions: { dy: dQkv, params: 'params', dx: input.dOut },
      });
    }
    this.backwardReversed.push(
      {
        kernel: layersDenseBackwardWeightsKernel(qkvProj),
        regions: { dy: dQkv, x: input.out, grad: 'grad' },
      },
      { kernel: layersAttentionKernel(node, 'backward_key'), regions: core },
      { kernel: layersAttentionKernel(node, 'backward_query'), regions: core },
      {
        kernel: layersDenseBackwardInputKernel(outProj),
        regions: { dy: dOut, params: 'params', dx: dContext },
      },
      {
        kernel: layersDenseBackwardWeightsKernel(outProj),
        regions: { dy: dOut, x: context, grad: 'grad' },
      },
    );
    return { out, dOut };
  }

  /** Forward and backward dispatches of a dense or conv2d layer. */
  private product(
    node: DenseNode | Conv2dNode,
    input: Tensor,
    out: string,
    dOut: string,
    act: Activation,
  ): void {
    const weight = this.offsets[node.weight]!;
    const bias = this.offsets[node.bias]!;
    const kernels =
      node.op === 'dense'
        ? {
            forward: layersDenseForwardKernel({ ...node, weight, bias }, act),
            input: layersDenseBackwardInputKernel({ ...node, weight, bias }),
            weights: layersDenseBackwardWeightsKernel({ ...node, weight, bias }),
          }
        : {
            forward: layersConvForwardKernel({ ...node, weight, bias }, act),
            input: layersConvBackwardInputKernel({ ...node, weight, bias }),
            weights: layersConvBackwardWeightsKernel({ ...node, weight, bias }),
          };
    this.forward.push({
      kernel: kernels.forward,
      regions: { x: input.out, params: 'params', y: out },
    });
    // dx reads W and both read dOut; all of it runs before the update pass changes W.
    if (input.dOut !== null) {
      this.backwardReversed.push({
        kernel: kernels.input,
        regions: { dy: dOut, params: 'params', dx: input.dOut },
      });
    }
    this.backwardReversed.push({
      kernel: kernels.weights,
      regions: { dy: dOut, x: input.out, grad: 'grad' },
    });
  }
}

function lower(layout: ParameterLayout): Lowered {
  if (layout.spec.kind !== 'layers') {
    throw new RangeError(`not a layers model: ${layout.spec.kind}`);
  }
  const plan: LayersPlan = planOf(layout.spec);
  const l = new Lowering(tensorOffsets(layout), plan.features);
  const logits = l.sequence(plan.nodes, { out: 'input', dOut: null }, null);
  if (logits.dOut === null) throw notWired('no layer with parameters');
  const scoring = { logits: logits.out, dlogits: logits.dOut, sampleLoss: 'sampleLoss' };
  const head: Dispatch[] =
    plan.loss === 'classify'
      ? [
          {
            kernel: softmaxCrossEntropyKernel(plan.classes),
            regions: { ...scoring, labels: l.region('labels', 1) },
          },
        ]
      : (() => {
          const t = plan.scoredPositions;
          const regions = {
            ...scoring,
            tokens: 'input',
            positionLoss: l.region('loss.positions', t),
          };
          return [
            { kernel: layersNextTokenScoreKernel(t, plan.classes), regions },
            { kernel: layersNextTokenSampleKernel(t, plan.classes), regions },
          ];
        })();
  return {
    regions: l.regions,
    forward: l.forward,
    head,
    backward: l.backwardReversed.slice().reverse(),
    features: plan.features,
    classify: plan.loss === 'classify',
  };
}

const lowered = new WeakMap<ParameterLayout, Lowered>();

/** `lower`, once per layout (the buffer plan and the model both ask). */
function loweredOf(layout: ParameterLayout): Lowered {
  let l = lowered.get(layout);
  if (!l) {
    l = lower(layout);
    lowered.set(layout, l);
  }
  return l;
}

export const layersModel: ModelKind = {
  takesKernel: false,

  regions(layout: ParameterLayout, options: RegionOptions, add: RegionSink): void {
    const l = loweredOf(layout);
    for (const [name, perSample] of l.regions) add.work(name, options.maxBatch * perSample * 4);
  },

  prepare(layout: ParameterLayout, options: ModelKindOptions): PreparedModel {
    const l = loweredOf(layout);
    for (const d of [...l.forward, ...l.head, ...l.backward]) {
      const grid = d.kernel.grid(options.maxBatch);
      if (Math.max(...grid) > MAX_WORKGROUPS_PER_DIMENSION) {
        throw new RangeError(
          `${d.kernel.program.name} needs a ${grid.join(' × ')} grid at maxBatch ${options.maxBatch}, more than ${MAX_WORKGROUPS_PER_DIMENSION} workgroups per dimension; lower maxBatch`,
        );
      }
    }
    return {
      sparseEntries: 0,
      async compile(compile: CompileKernel): Promise<CompiledModel> {
        const all = (list: readonly Dispatch[]) => Promise.all(list.map((d) => compile(d.kernel)));
        const [forward, backward, head] = await Promise.all([
          all(l.forward),
          all(l.backward),
          all(l.head),
        ]);
        return { bind: (bind) => bindLayers(l, forward, backward, head, bind) };
      },
    };
  },
};

function bindLayers(
  l: Lowered,
  forwardC: readonly CompiledKernel[],
  backwardC: readonly CompiledKernel[],
  headC: readonly CompiledKernel[],
  bind: BindRegion,
): ModelPasses {
  const step = bind('step');
  const bindAll = (d: Dispatch, c: CompiledKernel): Pass => {
    const resources: Record<string, GPUBufferBinding> = { step };
    for (const [binding, region] of Object.entries(d.regions)) resources[binding] = bind(region);
    return bindPass(c, resources);
  };
  const forward = l.forward.map((d, i) => bindAll(d, forwardC[i]!));
  const backward = l.backward.map((d, i) => bindAll(d, backwardC[i]!));
  const head = l.head.map((d, i) => bindAll(d, headC[i]!));
  return {
    upload(batch: Batch, rows: number, upload: UploadRegion) {
      upload('input', batch.x.subarray(0, rows * l.features));
      if (l.classify) upload('labels', batch.labels!.subarray(0, rows));
      return 'dense';
    },
    encodeLoss(run: RunPass): void {
      for (const p of forward) run(p);
      for (const p of head) run(p);
    },
    encodeGradient(run: RunPass): void {
      for (const p of backward) run(p);
    },
  };
}
