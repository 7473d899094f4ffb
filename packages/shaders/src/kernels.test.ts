import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKernelChecks } from './checks/kernel-checks.ts';
import { dawnDevice } from './dawn.test-support.ts';

describe('WGSL kernels on Dawn (SwiftShader)', () => {
  let device: GPUDevice;

  beforeAll(async () => {
    device = await dawnDevice();
  });

  afterAll(() => {
    device?.destroy();
  });

  it('every kernel check passes against its float64 reference', async () => {
    const lines: string[] = [];
    const results = await runKernelChecks(device, { log: (line) => lines.push(line) });
    console.log(lines.join('\n'));
    expect(results.length).toBeGreaterThanOrEqual(21);
    for (const r of results) {
      expect.soft(r.passed, `${r.name}: ${r.maxRelError} > ${r.bound}; ${r.detail}`).toBe(true);
    }
  });
});
