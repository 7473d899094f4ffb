/**
 * How every e2e spec and the browser half of the benchmark launch Chromium (docs/recipes.md).
 */

/** Debian's full Chromium; Playwright's own downloads cannot be fetched here (no network). */
export const CHROMIUM_PATH = process.env.MESHGRAD_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Extra switches. `--enable-unsafe-webgpu` exposes WebGPU on Linux, where Chromium otherwise
 * blocks it, and yields SwiftShader's software Vulkan adapter on machines without a GPU. The rest
 * keep Chromium from reaching for the (closed) network. Playwright itself already passes one
 * `--enable-features` and one `--disable-features`; Chromium honours only the last of each kind,
 * so no feature switches are added here (merge names into Playwright's if one is ever needed).
 * `--no-sandbox` because the test machines run as root.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
