import { describe, expect, it } from 'vitest';
import { runKernelChecks } from './checks/kernel-checks.ts';
import { dawnDevice } from './dawn.test-support.ts';

describe('WGSL kernels of the layers kind on Dawn (SwiftShader)', () => {
  it('every layers kernel check passes against core float64 layer ops', async () => {
    const device = await dawnDevice();
    const lines: string[] = [];
    const results = await runKernelChecks(device, {
      only: ['layers-', 'backend-layers'],
      log: (line) => lines.push(line),
    });
    console.log(lines.join('\n'));
    expect(results.length).toBeGreaterThanOrEqual(25);
    for (const r of results) {
      expect.soft(r.passed, `${r.name}: ${r.maxRelError} > ${r.bound}; ${r.detail}`).toBe(true);
    }
    device.destroy();
  });
});
