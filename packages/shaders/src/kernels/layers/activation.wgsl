// Activations of the layers kind, shared by the GEMM epilogues and the elementwise kernel, with
// the same formulas as core's layers/op.ts: ReLU'(0) = 0, GELU in its tanh form.

const GELU_C: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

// tanh as 1 − 2/(e^{2u} + 1): exp overflows to +∞ for large u and the quotient goes to 0, so
// the result saturates at ±1 instead of the NaN that sinh/cosh would give.
fn tanhSaturating(u: f32) -> f32 {
  return 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
}

fn relu(v: f32) -> f32 { return max(v, 0.0); }

fn gelu(v: f32) -> f32 {
  return 0.5 * v * (1.0 + tanhSaturating(GELU_C * (v + GELU_A * v * v * v)));
}

// dGELU/dv at v.
fn geluSlope(v: f32) -> f32 {
  let t = tanhSaturating(GELU_C * (v + GELU_A * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * v * v);
}
