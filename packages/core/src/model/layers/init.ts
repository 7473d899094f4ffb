/**
 * Seeded initialisation of a `layers` model, per layer type, walking the tensors in layout order
 * with one generator so every worker and the server start from the same w given the seed.
 *
 * - dense and conv2d weights: He-normal N(0, 2/fan_in) (suits ReLU and GELU); the layer that
 *   produces the logits Glorot-uniform U(±√(6/(fan_in + fan_out))), as for the MLP.
 * - attention: query/key/value and output projections N(0, 1/width), so scores start near
 *   uniform and the residual stream keeps its scale.
 * - embedding: token and position tables N(0, 0.02²), GPT-2's choice.
 * - layer norm: gain 1, bias 0. Every bias starts at 0.
 */
import type { Rng } from '../../util/rng.ts';
import type { LayersPlan, PlanNode } from './graph.ts';
import { flattenNodes } from './graph.ts';

const EMBEDDING_STD = 0.02;

export function initLayers(
  plan: LayersPlan,
  offsets: readonly number[],
  params: Float32Array,
  rng: Rng,
): void {
  const sizes = plan.tensors.map((t) => t.shape.reduce((a, b) => a * b, 1));
  const normal = (tensor: number, std: number) => {
    const o = offsets[tensor]!;
    for (let i = o; i < o + sizes[tensor]!; i++) params[i] = std * rng.normal();
  };
  const uniform = (tensor: number, limit: number) => {
    const o = offsets[tensor]!;
    for (let i = o; i < o + sizes[tensor]!; i++) params[i] = limit * (2 * rng.next() - 1);
  };
  const head: PlanNode | undefined = plan.nodes[plan.nodes.length - 1];
  for (const node of flattenNodes(plan.nodes)) {
    switch (node.op) {
      case 'dense':
        if (node === head) uniform(node.weight, Math.sqrt(6 / (node.inWidth + node.outWidth)));
        else normal(node.weight, Math.sqrt(2 / node.inWidth));
        break;
      case 'conv2d': {
        const fanIn = node.channels * node.kernel * node.kernel;
        if (node === head) {
          const fanOut = node.filters * node.kernel * node.kernel;
          uniform(node.weight, Math.sqrt(6 / (fanIn + fanOut)));
        } else normal(node.weight, Math.sqrt(2 / fanIn));
        break;
      }
      case 'attention':
        normal(node.qkvWeight, Math.sqrt(1 / node.width));
        normal(node.projWeight, Math.sqrt(1 / node.width));
        break;
      case 'embedding':
        normal(node.token, EMBEDDING_STD);
        normal(node.position, EMBEDDING_STD);
        break;
      case 'layernorm':
        params.fill(1, offsets[node.weight]!, offsets[node.weight]! + node.width);
        break;
      default:
        break;
    }
  }
}
