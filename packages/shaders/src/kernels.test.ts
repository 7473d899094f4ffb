import { describe, expect, it } from 'vitest';
import { runKernelChecks } from './checks/kernel-checks.ts';
import { dawnDevice } from './dawn.test-support.ts';

describe('WGSL kernels on Dawn (SwiftShader)', () => {
  it('every kernel check passes against its float64 reference', async () => {
    // No adapter is a failure with a message naming what is missing, never a skip.
    const device = await dawnDevice();
    const lines: string[] = [];
    const results = await runKernelChecks(device, { log: (line) => lines.push(line) });
    console.log(lines.join('\n'));
    // 26 checks of the older kinds and 25 of the layers kind.
    expect(results.length).toBeGreaterThanOrEqual(51);
    for (const r of results) {
      expect.soft(r.passed, `${r.name}: ${r.maxRelError} > ${r.bound}; ${r.detail}`).toBe(true);
    }
    device.destroy();
  });
});
