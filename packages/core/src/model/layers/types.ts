/**
 * The `layers` model kind: a sequence of layers, as a host writes it in a job spec (DESIGN §6).
 *
 * Shapes are per sample, without the batch dimension: `[channels, height, width]` for images,
 * `[positions, width]` for token sequences, `[width]` for vectors. Every layer may carry a
 * `name`; without one it is named by its type and a 1-based count over the whole model
 * (`conv1`, `conv2`, `dense1`, `ln1`, `attn1`, `embed1`), and its tensors are
 * `<name>.weight`, `<name>.bias`, … in PyTorch's layout (see `layerTensors` in graph.ts).
 */

/** y = x·Wᵀ + b over the last dimension; W is `[units, in]` (PyTorch's `nn.Linear`). */
export interface DenseLayer {
  readonly type: 'dense';
  readonly units: number;
  readonly name?: string | undefined;
}

/** 2-D convolution of a `[C, H, W]` input; W is `[filters, C, kernel, kernel]` (`nn.Conv2d`). */
export interface Conv2dLayer {
  readonly type: 'conv2d';
  readonly filters: number;
  /** Square kernel side. */
  readonly kernel: number;
  /** Default 1. */
  readonly stride?: number | undefined;
  /** Zeros added on every side; default 0. */
  readonly padding?: number | undefined;
  readonly name?: string | undefined;
}

/** Max or average over square windows of each channel of a `[C, H, W]` input. */
export interface PoolLayer {
  readonly type: 'maxpool2d' | 'avgpool2d';
  /** Window side. */
  readonly size: number;
  /** Default: `size` (windows do not overlap). */
  readonly stride?: number | undefined;
  readonly name?: string | undefined;
}

/** Any shape to `[product]`, in row-major order (`torch.flatten(x, 1)`). */
export interface FlattenLayer {
  readonly type: 'flatten';
  readonly name?: string | undefined;
}

/** ReLU (ReLU'(0) = 0) or GELU in its tanh form (`nn.GELU(approximate='tanh')`). */
export interface ActivationLayer {
  readonly type: 'relu' | 'gelu';
  readonly name?: string | undefined;
}

/** Layer norm over the last dimension with a gain and a bias (`nn.LayerNorm`). */
export interface LayerNormLayer {
  readonly type: 'layernorm';
  /** Added to the variance; default 1e-5 (PyTorch's). */
  readonly epsilon?: number | undefined;
  readonly name?: string | undefined;
}

/**
 * Token + position embedding: the input is `[positions]` token ids (integers stored as floats),
 * the output `[positions, dim]` = token[x_t] + position[t].
 */
export interface EmbeddingLayer {
  readonly type: 'embedding';
  /** Number of distinct tokens. */
  readonly vocab: number;
  readonly dim: number;
  readonly name?: string | undefined;
}

/**
 * Causal multi-head self-attention on `[positions, width]`: a fused `[3·width, width]` query,
 * key and value projection, softmax(q·kᵀ/√(width/heads)) over earlier and current positions
 * only, and an output projection `[width, width]`.
 */
export interface AttentionLayer {
  readonly type: 'attention';
  readonly heads: number;
  readonly name?: string | undefined;
}

/** x + f(x) where f is the inner layers; f must give back the shape it was given. */
export interface ResidualLayer {
  readonly type: 'residual';
  readonly layers: readonly LayerSpec[];
  readonly name?: string | undefined;
}

export type LayerSpec =
  | DenseLayer
  | Conv2dLayer
  | PoolLayer
  | FlattenLayer
  | ActivationLayer
  | LayerNormLayer
  | EmbeddingLayer
  | AttentionLayer
  | ResidualLayer;

export type LayerType = LayerSpec['type'];

/**
 * What the loss compares the last layer's output with.
 * - `classify`: the output is `[classes]` logits; softmax cross-entropy against the label.
 * - `next-token`: the output is `[positions, vocab]` logits; a sample holds positions + 1
 *   token ids, the model reads the first `positions`, and position t is scored on token t + 1
 *   (mean softmax cross-entropy over positions).
 */
export type LayersLoss = 'classify' | 'next-token';

export interface LayersSpec {
  readonly kind: 'layers';
  /**
   * Floats per sample, as for every model kind: the features for `classify`; positions + 1
   * token ids for `next-token`.
   */
  readonly inputs: number;
  /** Classes for `classify`; the vocabulary (logits per position) for `next-token`. */
  readonly classes: number;
  /**
   * Shape of one sample as the first layer sees it, e.g. `[1, 28, 28]` for MNIST; default
   * `[inputs]` (`[inputs − 1]` for next-token).
   */
  readonly inputShape?: readonly number[] | undefined;
  readonly layers: readonly LayerSpec[];
  /** Default `classify`. */
  readonly loss?: LayersLoss | undefined;
}
