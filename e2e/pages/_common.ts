/**
 * Helpers shared by the test pages. Pages expose their entry points on `window.e2e`; specs call
 * them with `page.evaluate` and get plain JSON back.
 */

/** What `adapterSummary` reports; plain data so it crosses `page.evaluate`. */
export interface AdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly features: string[];
  readonly isFallbackAdapter: boolean | null;
  readonly maxStorageBufferBindingSize: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
}

/**
 * The WebGPU adapter, or an error that says exactly what is missing: a missing adapter is a test
 * failure, never a skip (docs/recipes.md).
 */
export async function requireAdapter(gpu: GPU | undefined = navigator.gpu): Promise<GPUAdapter> {
  if (!gpu) {
    const context =
      typeof isSecureContext === 'boolean' && !isSecureContext ? ' (not a secure context)' : '';
    throw new Error(
      `navigator.gpu is missing${context}: WebGPU is not exposed. Launch full Chromium (not the ` +
        `headless shell) with --enable-unsafe-webgpu and load the page from http://127.0.0.1.`,
    );
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      'navigator.gpu.requestAdapter() returned null: no WebGPU adapter. Chromium needs ' +
        '--enable-unsafe-webgpu and a Vulkan driver (SwiftShader ships with it).',
    );
  }
  return adapter;
}

export function adapterSummary(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  // `isFallbackAdapter` moved from the adapter to its info; read whichever this browser has.
  const fallback =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    null;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    features: [...adapter.features].sort(),
    isFallbackAdapter: fallback,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
  };
}

/** One line naming the adapter, as the bench prints it. */
export function describeAdapter(a: AdapterSummary): string {
  return `${a.vendor || '?'} / ${a.architecture || '?'} / ${a.description || a.device || '?'}`;
}

/** Fetches a dataset the test server encoded in Node (`GET /data/<name>.bin`). */
export async function fetchBytes(name: string): Promise<Uint8Array> {
  const res = await fetch(`/data/${name}.bin`);
  if (!res.ok) throw new Error(`GET /data/${name}.bin: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Logs to the console (forwarded by the specs and the bench) and to the page body. */
export function log(message: string): void {
  console.log(message);
  const pre = document.getElementById('log');
  if (pre) pre.textContent += message + '\n';
}

/** Publishes a page's entry points and marks the page ready for `waitForFunction`. */
export function expose(api: object): void {
  (window as unknown as { e2e: object }).e2e = api;
}
