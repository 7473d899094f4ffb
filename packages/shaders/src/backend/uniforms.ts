/**
 * The uniform structs of the WebGPU backend: one field list per struct, from which both the WGSL
 * declaration and the writer come, so the two cannot disagree.
 */
type ScalarType = 'u32' | 'f32';

/** A uniform struct of 4-byte scalars: its WGSL declaration and a writer share one field list. */
export class UniformStruct<Name extends string> {
  /** Size in bytes, a multiple of 16 as uniform buffers require. */
  readonly byteSize: number;

  constructor(
    readonly wgslName: string,
    readonly fields: readonly { readonly name: Name; readonly type: ScalarType }[],
  ) {
    this.byteSize = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  }

  /** `struct Name { field: type, ... }` for a WGSL preamble. */
  wgsl(): string {
    const body = this.fields.map((f) => `  ${f.name}: ${f.type},`).join('\n');
    return `struct ${this.wgslName} {\n${body}\n}\n`;
  }

  /** Writes `values` into `view` at `byteOffset` in the struct's layout. */
  write(view: DataView, values: Readonly<Record<Name, number>>, byteOffset = 0): void {
    this.fields.forEach((f, i) => {
      const at = byteOffset + 4 * i;
      if (f.type === 'u32') view.setUint32(at, values[f.name], true);
      else view.setFloat32(at, values[f.name], true);
    });
  }
}

/** Per-step parameters, written once per step before its command buffer. */
export const STEP_PARAMS = new UniformStruct('StepParams', [
  /** Samples in this step's minibatch. */
  { name: 'batch', type: 'u32' },
  /** Loss ring slot this step's mean loss goes to. */
  { name: 'lossSlot', type: 'u32' },
  /** Mailbox slots in use this step. */
  { name: 'slotCount', type: 'u32' },
  /** η, as float32. */
  { name: 'learningRate', type: 'f32' },
] as const);

/** Parameters of one codec call. */
export const CODEC_PARAMS = new UniformStruct('CodecParams', [
  /** First value of the block in the source buffer (in values, not bytes). */
  { name: 'offset', type: 'u32' },
  /** Values in the block. */
  { name: 'count', type: 'u32' },
] as const);
