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
  }
}
