/**
 * Capability probe and device creation for the WebGPU backend (DESIGN §2 data flow, §7).
 */
import { DeviceMonitor, WebGpuError } from './errors.ts';

/** What a volunteer's adapter says about itself. */
export interface WebGpuAdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
}

/** Result of `probeWebGpu`. */
export interface WebGpuProbe {
  /** True when an adapter was found and it meets `REQUIRED_LIMITS`. */
  readonly ok: boolean;
  /** Present whenever an adapter was found, also when it is not good enough. */
  readonly adapterInfo?: WebGpuAdapterSummary;
  /**
   * True for a software adapter (SwiftShader, or one the browser marks as a fallback): far slower
   * than the CPU backend (DESIGN §7).
   */
  readonly software: boolean;
  /** The adapter's features, sorted (e.g. `shader-f16`, `subgroups`, `timestamp-query`). */
  readonly features: readonly string[];
  /** Why `ok` is false. */
  readonly reason?: string;
}

/**
 * Limits below which meshgrad's kernels cannot run at all; every WebGPU adapter meets the
 * spec defaults, which are at least these.
 */
export const REQUIRED_LIMITS = {
  /** The step kernels bind at most 6 storage buffers. */
  maxStorageBuffersPerShaderStage: 6,
  /** Workgroup tiles of the dense forward kernel and reductions stay under 16 KiB. */
  maxComputeWorkgroupStorageSize: 16_384,
  /** Largest workgroup the kernels use. */
  maxComputeInvocationsPerWorkgroup: 256,
} as const;

function summarize(adapter: GPUAdapter): { summary: WebGpuAdapterSummary; software: boolean } {
  // `info` is the current API; older browsers have neither it nor `isFallbackAdapter` on it.
  const info = (adapter as { info?: Partial<GPUAdapterInfo> }).info ?? {};
  const summary = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    description: info.description ?? '',
  };
  const legacyFallback = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const software =
    info.isFallbackAdapter === true ||
    legacyFallback ||
    /swiftshader/i.test(summary.architecture) ||
    /swiftshader|llvmpipe|lavapipe/i.test(summary.description);
  return { summary, software };
}

function limitShortfall(adapter: GPUAdapter): string | undefined {
  for (const [name, needed] of Object.entries(REQUIRED_LIMITS)) {
    const has = adapter.limits[name as keyof typeof REQUIRED_LIMITS];
    if (has < needed) return `adapter limit ${name} is ${has}, meshgrad needs ${needed}`;
  }
  return undefined;
}

/**
 * Asks `gpu` (usually `navigator.gpu`) for an adapter and describes it. Never throws: a missing
 * API, a refused request or a weak adapter come back as `ok: false` with a `reason`.
 */
export async function probeWebGpu(gpu: GPU | undefined): Promise<WebGpuProbe> {
  if (!gpu) {
    return {
      ok: false,
      software: false,
      features: [],
      reason: 'this browser has no WebGPU (navigator.gpu is missing)',
    };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (err) {
    return {
      ok: false,
      software: false,
      features: [],
      reason: `requestAdapter failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  if (!adapter) {
    return { ok: false, software: false, features: [], reason: 'no WebGPU adapter available' };
  }
  const { summary, software } = summarize(adapter);
  const features = [...adapter.features].sort();
  const shortfall = limitShortfall(adapter);
  return shortfall === undefined
    ? { ok: true, adapterInfo: summary, software, features }
    : { ok: false, adapterInfo: summary, software, features, reason: shortfall };
}

/** Options of `requestBackendDevice`. */
export interface BackendDeviceOptions {
  /** Device label (default `meshgrad`). */
  readonly label?: string;
  /** Ask for `shader-f16` when the adapter has it (default true). */
  readonly f16?: boolean;
}

/**
 * Opens a device for `WebGpuBackend`: requests the adapter's full storage-buffer and workgroup
 * limits explicitly (the defaults, e.g. 128 MiB per binding, would cap model size) and
 * `shader-f16` where the adapter has it. Installs the device's `DeviceMonitor` at once, so no
 * error escapes before a backend exists. Throws `WebGpuError` `ERR_NO_ADAPTER` for a missing or
 * insufficient adapter or a refused device.
 */
export async function requestBackendDevice(
  adapter: GPUAdapter | null | undefined,
  options: BackendDeviceOptions = {},
): Promise<GPUDevice> {
  if (!adapter) throw new WebGpuError('ERR_NO_ADAPTER', 'no WebGPU adapter');
  const shortfall = limitShortfall(adapter);
  if (shortfall !== undefined) throw new WebGpuError('ERR_NO_ADAPTER', shortfall);
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  const requiredFeatures: GPUFeatureName[] = [];
  if ((options.f16 ?? true) && adapter.features.has('shader-f16')) {
    requiredFeatures.push('shader-f16');
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: options.label ?? 'meshgrad',
      requiredLimits,
      requiredFeatures,
    });
  } catch (err) {
    throw new WebGpuError(
      'ERR_NO_ADAPTER',
      `the adapter refused a device: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  DeviceMonitor.of(device);
  return device;
}
