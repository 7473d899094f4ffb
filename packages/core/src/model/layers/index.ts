export * from './types.ts';
export { planLayers, planOf, flattenNodes, MAX_LAYERS, MAX_ACTIVATION } from './graph.ts';
export type { LayersPlan, PlanNode, PlannedTensor } from './graph.ts';
export { LayersNetwork } from './network.ts';
export type { LayersScore } from './network.ts';
export type { FloatArray } from './gemm.ts';
// The per-layer ops, for references that run one layer alone (the WebGPU kernel checks).
export { DenseOp, ElementwiseOp } from './op.ts';
export type { Op, MakeArray, TensorOffsets } from './op.ts';
export { Conv2dOp, PoolOp } from './spatial.ts';
export { AttentionOp, EmbeddingOp, LayerNormOp } from './sequence.ts';
export type {
  AttentionNode,
  Conv2dNode,
  DenseNode,
  EmbeddingNode,
  ElementwiseNode,
  LayerNormNode,
  PoolNode,
  ResidualNode,
} from './graph.ts';
