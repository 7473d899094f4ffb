/**
 * `npm run bench:transport [-- --models=N --rounds=N]`
 *
 * Goodput of meshgrad's state exchange against a raw RTCDataChannel blast of the same bytes,
 * between the same two Chromium tabs in one run (pages/transport.ts says what each side does).
 * The model is the MNIST MLP 784-128-10 (101,770 float32 parameters, 7 blocks of 16,384).
 * Prints one line per trial and, as its very last line, one JSON object:
 * `{"bench":"transport","raw_MBps":…,"meshgrad_MBps":…,"ratio":…,"f16_ratio":…,"int8_ratio":…}`
 * where the ratios are parameter throughput (float32 bytes of parameters moved per second)
 * over the raw channel's; full results go to bench-results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_BLOCK_SIZE } from '@meshgrad/core';
import { buildPages, REPO_DIR } from '../harness/build.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../harness/chromium.ts';
import { startTestServer } from '../harness/server.ts';
import type { TransportBenchOptions, TransportBenchResult, TrialKind } from '../pages/transport.ts';

const USAGE = 'usage: npm run bench:transport -- [--models=30] [--rounds=7]';

export function parseArgs(argv: readonly string[]): TransportBenchOptions {
  const o = { hidden: [128], blockSize: DEFAULT_BLOCK_SIZE, modelsPerTrial: 30, rounds: 7 };
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?];
    const n = Number(value);
    const positive = Number.isInteger(n) && n >= 1;
    if (key === '--models' && positive) o.modelsPerTrial = n;
    else if (key === '--rounds' && positive) o.rounds = n;
    else if (key === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`bad argument ${arg}\n${USAGE}`);
  }
  return o;
}

const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round3 = (v: number) => Number(v.toFixed(3));

export function summarize(result: TransportBenchResult): Record<string, string | number> {
  const mbps = (kind: TrialKind, of: 'usefulBytes' | 'wireBytes') =>
    median(result.trials.filter((t) => t.kind === kind).map((t) => t[of] / 1e6 / t.seconds));
  const raw = mbps('raw', 'wireBytes');
  const f32 = mbps('f32', 'usefulBytes');
  return {
    bench: 'transport',
    raw_MBps: round3(raw),
    meshgrad_MBps: round3(f32),
    ratio: round3(f32 / raw),
    f16_ratio: round3(mbps('f16', 'usefulBytes') / raw),
    int8_ratio: round3(mbps('int8', 'usefulBytes') / raw),
  };
}

export async function main(argv: readonly string[]): Promise<void> {
  const options = parseArgs(argv);
  console.log('[bench] building the transport page');
  const pages = await buildPages(['transport', 'transport-worker']);
  for (const p of pages) if (p.error !== null) throw new Error(p.error);
  if (pages.length !== 2) throw new Error('the transport pages are missing');
  const server = await startTestServer(async () => undefined);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
  try {
    // Two tabs of one context: same origin, so they signal over a BroadcastChannel.
    const context = await browser.newContext();
    const tabs = await Promise.all([context.newPage(), context.newPage()]);
    for (const [i, tab] of tabs.entries()) {
      tab.on('console', (msg) => console.log(`[tab ${i ? 'b' : 'a'}] ${msg.text()}`));
      tab.on('pageerror', (err) => console.log(`[tab ${i ? 'b' : 'a'}:error] ${err.message}`));
      await tab.goto(`${server.url}/transport.html`);
      await tab.waitForFunction(() => 'e2e' in window, undefined, { timeout: 60_000 });
    }
    console.log(
      `[bench] ${options.rounds} rounds of raw, f32, f16 and int8, ${options.modelsPerTrial} models each`,
    );
    type Api = { run(role: 'a' | 'b', o: TransportBenchOptions): Promise<TransportBenchResult> };
    const [result] = await Promise.all(
      (['a', 'b'] as const).map((role, i) =>
        tabs[i]!.evaluate(([r, o]) => (window as unknown as { e2e: Api }).e2e.run(r, o), [
          role,
          options,
        ] as const),
      ),
    );
    if (!result) throw new Error('no result');
    const summary = summarize(result);
    const dir = join(REPO_DIR, 'bench-results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `transport-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          userAgent: await tabs[0]!.evaluate(() => navigator.userAgent),
          options,
          result,
          summary,
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`[bench] results in ${file}`);
    console.log(JSON.stringify(summary));
  } finally {
    await browser.close();
    await server.close();
  }
}
