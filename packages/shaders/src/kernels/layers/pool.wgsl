// What the pooling kernels share (pool-forward.wgsl, pool-backward.wgsl): the geometry of core's
// layers/spatial.ts PoolOp, a [batch, C, IH, IW] input and a [batch, C, OH, OW] output.
//
// Prepended by the driver: struct StepParams, grid.wgsl.

override MAX: bool;
override C: u32;
override IH: u32;
override IW: u32;
override OH: u32;
override OW: u32;
override SIZE: u32;
override STRIDE: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;

// (sample, channel, y, x) of element e of a [batch, C, height, width] tensor.
fn pixelOf(e: u32, height: u32, width: u32) -> vec4<u32> {
  let perSample = C * height * width;
  let local = e % perSample;
  return vec4<u32>(e / perSample, local / (height * width), (local / width) % height, local % width);
}
