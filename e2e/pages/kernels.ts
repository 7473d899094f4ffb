/** Kernel checks page: the shaders package's own WGSL-vs-float64 checks, run on this browser's adapter. */
import { requestBackendDevice, runKernelChecks } from '@meshgrad/shaders';
import { adapterSummary, expose, requireAdapter } from './_common.ts';
import type { AdapterSummary } from './_common.ts';

export interface KernelCheck {
  readonly name: string;
  readonly maxRelError: number;
  readonly bound: number;
  readonly passed: boolean;
  readonly detail?: string;
}

export interface KernelChecksResult {
  readonly adapter: AdapterSummary;
  readonly checks: KernelCheck[];
  readonly seconds: number;
}

async function kernelChecks(): Promise<KernelChecksResult> {
  const adapter = await requireAdapter();
  const device = await requestBackendDevice(adapter);
  const started = performance.now();
  try {
    const checks = await runKernelChecks(device);
    return {
      adapter: adapterSummary(adapter),
      // Copied field by field so only plain data crosses page.evaluate.
      checks: checks.map((c) => ({
        name: c.name,
        maxRelError: c.maxRelError,
        bound: c.bound,
        passed: c.passed,
        ...(c.detail === undefined ? {} : { detail: c.detail }),
      })),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    device.destroy();
  }
}

expose({ kernelChecks });
