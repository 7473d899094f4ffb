/**
 * Typed WebGPU failures. Device loss and uncaptured errors of a device reach one place, its
 * `DeviceMonitor`, and every later or pending call of a backend on that device fails with the
 * first of them.
 */

/** Stable error codes; code that reacts to a failure switches on these, never on messages. */
export type WebGpuErrorCode =
  /** The device was lost (driver reset, `device.destroy()`, tab backgrounded for too long). */
  | 'ERR_DEVICE_LOST'
  /** A validation error: a bug in meshgrad or a limit the adapter does not meet. */
  | 'ERR_VALIDATION'
  /** The device could not allocate a buffer or pipeline. */
  | 'ERR_OUT_OF_MEMORY'
  /** An implementation-internal failure, e.g. a driver that cannot compile a shader. */
  | 'ERR_INTERNAL'
  /** No WebGPU, no adapter, or an adapter that cannot give the device we need. */
  | 'ERR_NO_ADAPTER'
  /** The backend (or codec) was destroyed by its owner. */
  | 'ERR_DESTROYED';

export class WebGpuError extends Error {
  override readonly name = 'WebGpuError';
  readonly code: WebGpuErrorCode;

  constructor(code: WebGpuErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True for a `WebGpuError`, optionally of one code. */
export function isWebGpuError(err: unknown, code?: WebGpuErrorCode): err is WebGpuError {
  return err instanceof WebGpuError && (code === undefined || err.code === code);
}

/** Maps a `GPUError` (uncaptured or popped from an error scope) to a `WebGpuError`. */
export function fromGpuError(error: GPUError, context: string): WebGpuError {
  // Class names instead of instanceof: Dawn in Node and browsers expose different globals.
  const kind = error.constructor.name;
  const code: WebGpuErrorCode =
    kind === 'GPUOutOfMemoryError'
      ? 'ERR_OUT_OF_MEMORY'
      : kind === 'GPUInternalError'
        ? 'ERR_INTERNAL'
        : 'ERR_VALIDATION';
  return new WebGpuError(code, `${context}: ${error.message}`, { cause: error });
}

const monitors = new WeakMap<GPUDevice, DeviceMonitor>();

/**
 * Watches one device for loss and uncaptured errors and remembers the first failure. One per
 * device (`DeviceMonitor.of`), shared by every backend and codec on it.
 */
export class DeviceMonitor {
  private failure: WebGpuError | null = null;
  private readonly waiters = new Set<(err: WebGpuError) => void>();

  private constructor(device: GPUDevice) {
    void device.lost.then((info) => {
      this.fail(
        new WebGpuError(
          'ERR_DEVICE_LOST',
          `WebGPU device lost (${info.reason}): ${info.message || 'no message'}`,
        ),
      );
    });
    device.addEventListener('uncapturederror', (event) => {
      this.fail(fromGpuError((event as GPUUncapturedErrorEvent).error, 'uncaptured WebGPU error'));
    });
  }

  /** The monitor of `device`, created on first use. */
  static of(device: GPUDevice): DeviceMonitor {
    let monitor = monitors.get(device);
    if (!monitor) {
      monitor = new DeviceMonitor(device);
      monitors.set(device, monitor);
    }
    return monitor;
  }

  /** The first failure seen, or null. */
  get error(): WebGpuError | null {
    return this.failure;
  }

  /** Records a failure (the first one wins) and rejects everything waiting in `guard`. */
  fail(err: WebGpuError): void {
    if (this.failure) return;
    this.failure = err;
    for (const reject of this.waiters) reject(err);
    this.waiters.clear();
  }

  /** Throws the recorded failure, if any. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * `work`, unless the device fails first: then the device's failure. A rejection of `work`
   * itself (a map aborted by device loss, say) is reported as the device's failure when there
   * is one, else wrapped by `onError`.
   */
  async guard<T>(work: Promise<T>, onError: (err: unknown) => WebGpuError): Promise<T> {
    this.check();
    let reject: ((err: WebGpuError) => void) | undefined;
    const failed = new Promise<never>((_, rej) => {
      reject = rej;
    });
    const waiter = (err: WebGpuError) => reject?.(err);
    this.waiters.add(waiter);
    try {
      return await Promise.race([work, failed]);
    } catch (err) {
      if (err instanceof WebGpuError) throw err;
      throw this.failure ?? onError(err);
    } finally {
      this.waiters.delete(waiter);
    }
  }
}
