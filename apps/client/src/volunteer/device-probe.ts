/**
 * The capability probe, run once after consent: which adapter this browser offers and which
 * backend to use. A software adapter (SwiftShader) runs WGSL hundreds of times slower than the
 * CPU backend (DESIGN §7), so `auto` picks the CPU backend there and says why.
 */
import { probeWebGpu } from '@meshgrad/shaders';
import type { DeviceInfo, JobInfo } from '@meshgrad/core';
import type { BackendChoice } from './messages.ts';

export interface BackendDecision {
  readonly backend: 'webgpu' | 'cpu';
  readonly reason: string | undefined;
  readonly device: DeviceInfo;
}

/** `job` is the job the page showed before consent: a custom-WGSL job needs WebGPU. */
export async function chooseBackend(
  choice: BackendChoice,
  job: JobInfo | null,
): Promise<BackendDecision> {
  const result = await probeWebGpu((navigator as Navigator & { gpu?: GPU }).gpu);
  const adapter = result.ok ? result.adapterInfo : undefined;
  const base = {
    userAgent: navigator.userAgent.slice(0, 512),
    ...(adapter ? { adapter, software: result.software } : {}),
  };
  const decide = (backend: 'webgpu' | 'cpu', reason: string | undefined): BackendDecision => ({
    backend,
    reason,
    device: { ...base, backend, ...(reason ? { backendReason: reason.slice(0, 256) } : {}) },
  });
  if (choice === 'cpu') return decide('cpu', 'chosen by the backend=cpu URL parameter');
  if (!result.ok) return decide('cpu', result.reason ?? 'no WebGPU adapter');
  if (job?.kernel) {
    // The host's own WGSL kernel has no CPU implementation: even a software adapter must run it.
    return decide('webgpu', 'this job runs its own WGSL kernel, which needs WebGPU');
  }
  if (choice === 'webgpu') return decide('webgpu', 'chosen by the backend=webgpu URL parameter');
  if (result.software) {
    const name = adapter?.architecture || adapter?.description || 'fallback';
    return decide('cpu', `software adapter (${name}) is slower than the CPU backend`);
  }
  return decide('webgpu', undefined);
}
