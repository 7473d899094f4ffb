/** Smoke page: is WebGPU there, and which adapter is it. */
import { adapterSummary, expose, requireAdapter } from './_common.ts';
import type { AdapterSummary } from './_common.ts';

export interface SmokeResult {
  readonly secureContext: boolean;
  readonly crossOriginIsolated: boolean;
  readonly userAgent: string;
  readonly adapter: AdapterSummary;
  /** A device was created and ran a trivial compute pass whose result was read back. */
  readonly computeWorks: boolean;
}

async function smoke(): Promise<SmokeResult> {
  const adapter = await requireAdapter();
  const device = await adapter.requestDevice();
  // A one-dispatch round trip proves compute and readback work, not just adapter enumeration.
  const module = device.createShaderModule({
    label: 'smoke',
    code: `@group(0) @binding(0) var<storage, read_write> data: array<u32>;
      @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
        if (id.x < arrayLength(&data)) { data[id.x] = id.x * 3u + 1u; }
      }`,
  });
  const pipeline = device.createComputePipeline({
    label: 'smoke',
    layout: 'auto',
    compute: { module },
  });
  const n = 256;
  const storage = device.createBuffer({
    size: n * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const readback = device.createBuffer({
    size: n * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: storage } }],
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(n / 64);
  pass.end();
  enc.copyBufferToBuffer(storage, 0, readback, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  device.destroy();
  return {
    secureContext: isSecureContext,
    crossOriginIsolated,
    userAgent: navigator.userAgent,
    adapter: adapterSummary(adapter),
    computeWorks: out.every((v, i) => v === i * 3 + 1),
  };
}

expose({ smoke });
