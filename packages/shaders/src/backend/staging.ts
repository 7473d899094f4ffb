/**
 * Readback staging buffers (MAP_READ | COPY_DST), reused after unmapping so a training loop that
 * drains often does not allocate a buffer per drain.
 */
export class StagingPool {
  private readonly free: GPUBuffer[] = [];
  private readonly all = new Set<GPUBuffer>();

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
  ) {}

  /** A staging buffer of at least `bytes` bytes (rounded up to 256 to improve reuse). */
  acquire(bytes: number): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    const i = this.free.findIndex((b) => b.size >= size && b.size <= 4 * size);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    const buffer = this.device.createBuffer({
      label: `${this.label}:staging`,
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.all.add(buffer);
    return buffer;
  }

  /** Returns a buffer (unmapped here if still mapped). */
  release(buffer: GPUBuffer): void {
    if (!this.all.has(buffer)) return;
    if (buffer.mapState === 'mapped') buffer.unmap();
    if (buffer.mapState === 'unmapped') this.free.push(buffer);
  }

  destroy(): void {
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.free.length = 0;
  }
}

/** Copies `bytes` from a mapped staging buffer into a fresh ArrayBuffer. */
export function copyMapped(buffer: GPUBuffer, bytes: number): ArrayBuffer {
  return buffer.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
}
