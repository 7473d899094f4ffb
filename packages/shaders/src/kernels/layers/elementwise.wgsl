// One thread per element of a [batch, N_PER_SAMPLE] activation, for the layers kind:
// OP 0: dst = ReLU(src), or with BACKWARD dst = aux · ReLU'(src)   (src: the layer input x, or
//       its output when the ReLU was fused into the producer: ReLU(x) > 0 exactly when x > 0);
// OP 1: dst = GELU(src), or with BACKWARD dst = aux · GELU'(src)   (src: the layer input x);
// OP 2: dst = src + aux                                            (residual: x + f(x), and
//       its backward dOut + ∂f-path).
// The grid is 2-D (grid.wgsl) so large activations stay under the per-dimension dispatch limit.
//
// Prepended by the driver: struct StepParams, grid.wgsl, the activations (activation.wgsl).

override OP: u32;
override BACKWARD: bool = false;
override N_PER_SAMPLE: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = elementIndex(lid, wid, groups);
  if (i >= step.batch * N_PER_SAMPLE) { return; }
  let v = src[i];
  if (OP == 2u) {
    dst[i] = v + aux[i];
  } else if (BACKWARD) {
    // ReLU'(0) = 0: select, not a product, so a NaN or ∞ upstream gradient stays masked too.
    dst[i] = select(aux[i] * geluSlope(v), select(0.0, aux[i], v > 0.0), OP == 0u);
  } else {
    dst[i] = select(gelu(v), relu(v), OP == 0u);
  }
}
