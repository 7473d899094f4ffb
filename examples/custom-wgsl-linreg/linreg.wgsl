// Linear regression as a custom meshgrad kernel (docs/custom-wgsl.md): y ≈ x·w + b with the
// squared loss ½(x·w + b − y)². Each row of x holds the 8 features and then the target y (the
// CSV's last column, read as a feature because the spec sets "labelColumn": null).
//
// One invocation per parameter writes that parameter's gradient, the mean over the minibatch;
// one invocation per sample writes that sample's loss. The platform does the rest: the SGD step,
// the Parzen merge with the blocks other volunteers send, the exchange and the balancing.

struct Batch {
  size: u32,      // samples in this minibatch
  features: u32,  // floats per row of x: 8 features + the target
  params: u32,    // parameters: 8 weights + 1 bias
  classes: u32,   // 0: this job has no class labels
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;

// Prediction minus target for sample i.
fn residual(i: u32) -> f32 {
  let inputs = batch.features - 1u;
  let row = i * batch.features;
  var prediction = params[inputs]; // the bias follows the weights
  for (var j = 0u; j < inputs; j++) {
    prediction += params[j] * x[row + j];
  }
  return prediction - x[row + inputs];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let k = id.x;
  let inputs = batch.features - 1u;
  if (k < batch.size) {
    let r = residual(k);
    loss[k] = 0.5 * r * r;
  }
  if (k < batch.params) {
    // d/dw_k = r·x_k; d/db = r (the bias multiplies a constant 1).
    var g = 0.0;
    for (var i = 0u; i < batch.size; i++) {
      let xk = select(1.0, x[i * batch.features + k], k < inputs);
      g += residual(i) * xk;
    }
    grad[k] = g / f32(batch.size);
  }
}
