export { WebGpuError, isWebGpuError, DeviceMonitor } from './gpu/errors.ts';
export type { WebGpuErrorCode } from './gpu/errors.ts';
export { probeWebGpu, requestBackendDevice, REQUIRED_LIMITS } from './gpu/probe.ts';
export type { WebGpuProbe, WebGpuAdapterSummary, BackendDeviceOptions } from './gpu/probe.ts';
export {
  ComputeProgram,
  CompiledProgram,
  compileProgram,
  compileProgramNow,
  setShaderDebug,
  parseBindings,
  programListing,
} from './gpu/program.ts';
export type { ProgramSpec, ProgramBinding, OverrideValues } from './gpu/program.ts';
export {
  WebGpuBackend,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAILBOX_SLOTS,
  DEFAULT_LOSS_RING,
} from './backend/webgpu-backend.ts';
export { SPARSE_MAX_DENSITY } from './backend/models/dense.ts';
export type { WebGpuBackendOptions } from './backend/webgpu-backend.ts';
export { HARDWARE_TUNING, SOFTWARE_TUNING, tuningFor } from './kernels/programs.ts';
export type { KernelTuning } from './kernels/programs.ts';
export { GpuBlockCodec } from './backend/block-codec.ts';
export type { GpuBlockCodecOptions } from './backend/block-codec.ts';
export { BufferPlan } from './backend/buffers.ts';
export { STEP_PARAMS, CODEC_PARAMS } from './backend/uniforms.ts';
export type { BufferRole, Region, BufferPlanOptions } from './backend/buffers.ts';
export { runKernelChecks } from './checks/kernel-checks.ts';
export type { KernelCheckResult, KernelCheckOptions } from './checks/kernel-checks.ts';
