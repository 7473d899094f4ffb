// What the K-Means kernels share (kmeans-assign.wgsl, kmeans-grad.wgsl): x is [batch, DIMS];
// the centres are [CLUSTERS, DIMS] at C_OFF in the parameter vector.
//
// Prepended by the driver: struct StepParams.

override DIMS: u32;
override CLUSTERS: u32;
override C_OFF: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> step: StepParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
