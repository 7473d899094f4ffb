import type { PlanNode } from './layers/graph.ts';
import { planOf } from './layers/graph.ts';
import type { ModelSpec } from './spec.ts';

/** A short human-readable description of a model, e.g. `MLP 784-128-10`, for pages and logs. */
export function describeModel(m: ModelSpec): string {
  switch (m.kind) {
    case 'mlp':
      return `MLP ${[m.inputs, ...m.hidden, m.classes].join('-')}`;
    case 'softmax':
      return `softmax regression ${m.inputs}-${m.classes}`;
    case 'kmeans':
      return `K-Means, ${m.clusters} centres in ${m.dims} dimensions`;
    case 'custom':
      return `custom WGSL model, ${m.tensors.length} tensor${m.tensors.length === 1 ? '' : 's'}`;
    case 'layers': {
      const plan = planOf(m);
      const params = plan.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      const head = plan.loss === 'next-token' ? 'next-token' : `${plan.classes} classes`;
      return `layers [${plan.inputShape.join('×')}]: ${plan.nodes.map(describeNode).join(', ')}; ${head}, ${params.toLocaleString('en-US')} parameters`;
    }
  }
}

function describeNode(n: PlanNode): string {
  switch (n.op) {
    case 'dense':
      return `dense ${n.outWidth}`;
    case 'conv2d':
      return `conv2d ${n.filters} ${n.kernel}×${n.kernel}${n.stride > 1 ? ` /${n.stride}` : ''}`;
    case 'maxpool2d':
    case 'avgpool2d':
      return `${n.op} ${n.size}`;
    case 'embedding':
      return `embedding ${n.vocab}×${n.dim}`;
    case 'attention':
      return `attention ${n.heads} heads`;
    case 'residual':
      return `residual(${n.inner.map(describeNode).join(', ')})`;
    default:
      return n.op;
  }
}

/**
 * Training FLOPs credited per sample for a model of `parameters` parameters: 6 × P, the usual
 * estimate of one forward and backward pass (Kaplan et al. 2020, "Scaling Laws for Neural
 * Language Models", §2.1: about 2P for the forward multiply-adds and 4P for the backward). It
 * is exact up to biases and activations for dense stacks and softmax regression; it counts a
 * K-Means sample's k·d distance and update work at about the same order; convolutions and
 * attention reuse weights, so they compute more than this counts. One formula for every kind
 * keeps credit comparable across jobs (DESIGN §9).
 */
export function trainingFlopsPerSample(parameters: number): number {
  return 6 * parameters;
}
