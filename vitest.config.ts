import { defineConfig } from 'vitest/config';

// Unit tests run in Node. WebGPU tests use Dawn (the `webgpu` package) on SwiftShader's Vulkan
// driver, which ships with Debian's chromium package (docs/recipes.md).
export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'scripts/*.test.mjs',
      'e2e/bench/**/*.test.ts',
    ],
    env: {
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
    },
    // The server's worker thread cannot load TypeScript: bundle its entry once per run.
    globalSetup: ['apps/server/src/workers/bundle-entry.test-support.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
