/**
 * Compute programs: one small object per kernel variant, with a cache key built from everything
 * that changes its source, and pipelines compiled once per device and key.
 *
 * A program's WGSL is a `.wgsl` file plus, where the structure of the code changes (vector width,
 * the step-parameter struct), a generated preamble. Static numbers (sizes, offsets, workgroup
 * shape, flags) are WGSL `override` constants and part of the key, not of the text.
 */
import { DeviceMonitor, WebGpuError } from './errors.ts';

/** How a kernel binds one buffer (all bindings are in group 0). */
export interface ProgramBinding {
  readonly binding: number;
  /** The WGSL variable name; bind groups are built by name. */
  readonly name: string;
  readonly type: GPUBufferBindingType;
}

/** Override values as WebGPU takes them (booleans as 0/1). */
export type OverrideValues = Readonly<Record<string, number | boolean>>;

export interface ProgramSpec {
  /** Kernel name, used as label of every GPU object made for it (e.g. `dense-forward`). */
  readonly name: string;
  /** The `.wgsl` file's text. */
  readonly body: string;
  /** Generated declarations placed before `body` (default none). */
  readonly preamble?: string;
  /** Values of the kernel's `override` constants. */
  readonly overrides?: OverrideValues;
  /** Entry point (default `main`). */
  readonly entryPoint?: string;
  /**
   * The bind group layout, when it is fixed by a contract rather than read from the source
   * (a host's custom kernel: its variable names are its own). Default: parsed from the source.
   */
  readonly bindings?: readonly ProgramBinding[];
}

/** 32-bit FNV-1a of a string, as 8 hex digits: keys stay short however long the source. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

const BINDING_PATTERN =
  /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(uniform|storage)\s*(?:,\s*(read|read_write)\s*)?>\s*([A-Za-z_]\w*)/g;

/** The group-0 buffer bindings a WGSL source declares. */
export function parseBindings(source: string): ProgramBinding[] {
  const bindings: ProgramBinding[] = [];
  for (const m of source.matchAll(BINDING_PATTERN)) {
    const [, index, space, access, name] = m;
    const type: GPUBufferBindingType =
      space === 'uniform' ? 'uniform' : access === 'read_write' ? 'storage' : 'read-only-storage';
    bindings.push({ binding: Number(index), name: name!, type });
  }
  bindings.sort((a, b) => a.binding - b.binding);
  return bindings;
}

/** One kernel variant: its full WGSL, its override values and its cache key. */
export class ComputeProgram {
  readonly name: string;
  readonly source: string;
  readonly overrides: Readonly<Record<string, number>>;
  readonly bindings: readonly ProgramBinding[];
  readonly entryPoint: string;
  /** Label of the GPU objects made for it: the name, plus the entry point unless `main`. */
  readonly label: string;
  /** Name, entry point, hash of the full source, and the sorted override values. */
  readonly key: string;

  constructor(spec: ProgramSpec) {
    this.name = spec.name;
    this.entryPoint = spec.entryPoint ?? 'main';
    this.label = this.entryPoint === 'main' ? this.name : `${this.name}.${this.entryPoint}`;
    this.source = (spec.preamble ?? '') + spec.body;
    const overrides: Record<string, number> = {};
    for (const name of Object.keys(spec.overrides ?? {}).sort()) {
      const value = spec.overrides![name]!;
      overrides[name] = typeof value === 'boolean' ? Number(value) : value;
    }
    this.overrides = overrides;
    this.bindings = spec.bindings ?? parseBindings(this.source);
    const values = Object.entries(overrides)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    this.key = `${this.name}.${this.entryPoint}#${fnv1a(this.source)}(${values})`;
  }
}

/** Prints generated WGSL when set (see `setShaderDebug`). */
let debugSink: ((text: string) => void) | null = null;

/**
 * Debug switch: with a function (or `true` for `console.log`), the WGSL of every program is
 * printed once, when it is compiled. Off by default.
 */
export function setShaderDebug(sink: boolean | ((text: string) => void)): void {
  // The debug switch's whole purpose is printing; it is off unless asked for.
  // eslint-disable-next-line no-console
  debugSink = sink === true ? (text) => console.log(text) : sink === false ? null : sink;
}

/** A program compiled on one device: its pipeline and bind group layout. */
export class CompiledProgram {
  constructor(
    readonly program: ComputeProgram,
    readonly device: GPUDevice,
    readonly pipeline: GPUComputePipeline,
    readonly layout: GPUBindGroupLayout,
  ) {}

  /** A bind group from buffers (or buffer ranges) named like the WGSL variables. */
  bindGroup(resources: Readonly<Record<string, GPUBuffer | GPUBufferBinding>>): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = this.program.bindings.map((b) => {
      const r = resources[b.name];
      if (r === undefined) {
        throw new RangeError(`${this.program.name}: no buffer given for binding '${b.name}'`);
      }
      return { binding: b.binding, resource: 'buffer' in r ? r : { buffer: r } };
    });
    return this.device.createBindGroup({
      label: this.program.label,
      layout: this.layout,
      entries,
    });
  }

  /** Records one dispatch of this program into `pass`. */
  dispatch(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, x: number, y = 1, z = 1): void {
    if (x === 0 || y === 0 || z === 0) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<CompiledProgram>>>();

/** The text the debug switch prints for a program: its key, then its full WGSL. */
export function programListing(program: ComputeProgram): string {
  return `// ---- ${program.key}\n${program.source}`;
}

function describe(device: GPUDevice, program: ComputeProgram) {
  if (debugSink) debugSink(programListing(program));
  const label = program.label;
  const layout = device.createBindGroupLayout({
    label,
    entries: program.bindings.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.type },
    })),
  });
  const module = device.createShaderModule({ label, code: program.source });
  const descriptor: GPUComputePipelineDescriptor = {
    label,
    layout: device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: program.entryPoint, constants: program.overrides },
  };
  return { layout, module, descriptor };
}

async function compile(device: GPUDevice, program: ComputeProgram): Promise<CompiledProgram> {
  const { layout, module, descriptor } = describe(device, program);
  try {
    const pipeline = await device.createComputePipelineAsync(descriptor);
    return new CompiledProgram(program, device, pipeline, layout);
  } catch (err) {
    const info = await module.getCompilationInfo().catch(() => null);
    const messages = (info?.messages ?? [])
      .map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`)
      .join('; ');
    const reason = (err as { reason?: string }).reason;
    throw new WebGpuError(
      reason === 'internal' ? 'ERR_INTERNAL' : 'ERR_VALIDATION',
      `cannot compile ${program.key}: ${err instanceof Error ? err.message : String(err)}` +
        (messages ? ` (${messages})` : ''),
      { cause: err },
    );
  }
}

/** Compiled programs that finished, per device, for `compileProgramNow`. */
const finished = new WeakMap<GPUDevice, Map<string, CompiledProgram>>();

function remember(compiled: CompiledProgram): CompiledProgram {
  let done = finished.get(compiled.device);
  if (!done) {
    done = new Map();
    finished.set(compiled.device, done);
  }
  done.set(compiled.program.key, compiled);
  return compiled;
}

/**
 * `compileProgram` without waiting: the finished pipeline if there is one, else one compiled
 * synchronously (the GPU process may stall while it compiles). For the rare synchronous caller
 * that meets a program it could not foresee; errors surface through the device's monitor.
 */
export function compileProgramNow(device: GPUDevice, program: ComputeProgram): CompiledProgram {
  DeviceMonitor.of(device).check();
  const done = finished.get(device)?.get(program.key);
  if (done) return done;
  const { layout, descriptor } = describe(device, program);
  return remember(
    new CompiledProgram(program, device, device.createComputePipeline(descriptor), layout),
  );
}

/**
 * The compiled form of `program` on `device`, compiled on first request (asynchronously, with
 * `createComputePipelineAsync`) and cached per device by `program.key`.
 */
export function compileProgram(
  device: GPUDevice,
  program: ComputeProgram,
): Promise<CompiledProgram> {
  DeviceMonitor.of(device).check();
  let cache = caches.get(device);
  if (!cache) {
    cache = new Map();
    caches.set(device, cache);
  }
  let compiled = cache.get(program.key);
  if (!compiled) {
    compiled = compile(device, program).then(remember);
    // A failed compile is not cached: the next request tries again (and fails loudly again).
    compiled.catch(() => cache.delete(program.key));
    cache.set(program.key, compiled);
  }
  return compiled;
}
