/**
 * Test support: a WebGPU adapter in Node through Dawn (the `webgpu` package) on SwiftShader's
 * Vulkan driver (docs/recipes.md). Not part of the package's exports.
 */
import { create, globals } from 'webgpu';
import { requestBackendDevice } from './gpu/probe.ts';

Object.assign(globalThis, globals);

/**
 * HACK: dawn.node tears its instance down when the GPU object is garbage-collected, even while
 * adapters and devices made from it live on; later calls then crash or hang the process (seen
 * here as aborts in pthread_mutex_lock and pipelines that never resolve). Keep it reachable for
 * the life of the process.
 */
export const dawnGpu: GPU = create([]);

// Typed loosely: this file is also compiled with the package's browser tsconfig.
const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};

const MISSING =
  'Dawn found no WebGPU adapter. On a machine without a GPU it needs SwiftShader: install ' +
  'libvulkan1 and chromium (which ships /usr/lib/chromium/vk_swiftshader_icd.json), and set ' +
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (the root vitest.config.ts sets it; ' +
  `here it is ${env.VK_ICD_FILENAMES ?? 'unset'}).`;

/** The adapter, or an Error that names what is missing. */
export async function dawnAdapter(): Promise<GPUAdapter> {
  const adapter = await dawnGpu.requestAdapter();
  if (!adapter) throw new Error(MISSING);
  return adapter;
}

/** A fresh backend device on the Dawn adapter. */
export async function dawnDevice(): Promise<GPUDevice> {
  return requestBackendDevice(await dawnAdapter());
}

let shared: Promise<GPUDevice> | undefined;

/**
 * One device shared by a test file, opened on first use. Tests await it themselves, so a
 * missing adapter fails each of them with the message above rather than skipping them.
 */
export function sharedDawnDevice(): Promise<GPUDevice> {
  shared ??= dawnDevice();
  return shared;
}
