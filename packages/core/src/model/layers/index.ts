export * from './types.ts';
export { planLayers, planOf, flattenNodes, MAX_LAYERS, MAX_ACTIVATION } from './graph.ts';
export type { LayersPlan, PlanNode, PlannedTensor } from './graph.ts';
export { LayersNetwork } from './network.ts';
export type { LayersScore } from './network.ts';
export type { FloatArray } from './gemm.ts';
