// Flat indices over the 2-D grids of programs.ts groupGrid: grid.x workgroups per row of the
// grid, so large counts stay under the per-dimension dispatch limit. Needs `override WG`.
//
// Prepended by the driver to the kernels dispatched on such a grid.

// This workgroup's index in the grid; uniform, so a workgroup may leave on it before barriers.
fn groupIndex(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wid.y * groups.x + wid.x;
}

// This invocation's index: the element it owns in the one-thread-per-element kernels.
fn elementIndex(lid: u32, wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return groupIndex(wid, groups) * WG + lid;
}
