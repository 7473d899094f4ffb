/**
 * `npm run bench:kernels [-- --env=browser|node|both --steps=N --reps=N --warmup=N
 *  --sync-every=N --only=id,id]`
 *
 * Training-step throughput of the 784-128-10 MLP at batch 64 on real MNIST batches: meshgrad's
 * backends against TF.js's on the same adapter, model and batches, in headless Chromium and/or
 * in Node through Dawn. Prints progress, a table, and as its very last line one JSON object
 * (the summary); writes the full results to bench-results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildNodeEntry, buildPages, REPO_DIR } from '../harness/build.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../harness/chromium.ts';
import type { TestServer } from '../harness/server.ts';
import { runNodeSuite } from './node.ts';
import { pairedRatio } from './paired.ts';
import { BACKEND_IDS, DEFAULT_BENCH_OPTIONS, WORKLOADS } from './types.ts';
import type { Workload } from './types.ts';
import type { BackendResult, BenchOptions, SuiteResult } from './types.ts';

type Env = 'browser' | 'node';

interface CliArgs {
  readonly envs: Env[];
  readonly options: BenchOptions;
}

const USAGE =
  'usage: npm run bench:kernels -- [--env=browser|node|both] [--steps=50] [--reps=5] ' +
  `[--warmup=5] [--sync-every=10] [--models=${WORKLOADS.join(',')}] ` +
  `[--only=${BACKEND_IDS.join(',')}]`;

export function parseArgs(argv: readonly string[]): CliArgs {
  let envs: Env[] = ['browser'];
  const o: { -readonly [K in keyof BenchOptions]: BenchOptions[K] } = { ...DEFAULT_BENCH_OPTIONS };
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?];
    const int = (): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`${key} needs a positive integer\n${USAGE}`);
      return n;
    };
    switch (key) {
      case '--env':
        if (value === 'both') envs = ['browser', 'node'];
        else if (value === 'browser' || value === 'node') envs = [value];
        else throw new Error(`--env must be browser, node or both\n${USAGE}`);
        break;
      case '--steps':
        o.steps = int();
        break;
      case '--reps':
        o.reps = int();
        break;
      case '--warmup':
        o.warmupSteps = int();
        break;
      case '--sync-every':
        o.syncEvery = int();
        break;
      case '--only': {
        const ids = value.split(',').filter(Boolean);
        const bad = ids.filter((id) => !(BACKEND_IDS as readonly string[]).includes(id));
        if (bad.length) throw new Error(`unknown backend ${bad.join(', ')}\n${USAGE}`);
        o.only = ids;
        break;
      }
      case '--models': {
        const names = value.split(',').filter(Boolean);
        const bad = names.filter((m) => !(WORKLOADS as readonly string[]).includes(m));
        if (bad.length || names.length === 0)
          throw new Error(`unknown model ${bad.join(', ')}\n${USAGE}`);
        o.models = names as Workload[];
        break;
      }
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return { envs, options: o };
}

async function runBrowser(options: BenchOptions): Promise<SuiteResult> {
  console.log('[bench] building pages');
  const [page] = await buildPages(['bench']);
  if (!page || page.error !== null) throw new Error(page?.error ?? 'no bench page');
  const serveEntry = await buildNodeEntry('e2e/harness/serve.ts');
  const { startServer } = (await import(pathToFileURL(serveEntry).href)) as {
    startServer(): Promise<TestServer>;
  };
  const server = await startServer();
  const { chromium } = await import('playwright-core');
  // Developer features make adapter.info carry the driver's description, which the bench prints.
  const args = [...CHROMIUM_ARGS, '--enable-webgpu-developer-features'];
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args, headless: true });
  try {
    const page = await browser.newPage();
    page.on('console', (msg) => console.log(`[browser] ${msg.text()}`));
    page.on('pageerror', (err) => console.log(`[browser:error] ${err.message}`));
    await page.goto(`${server.url}/bench.html`);
    await page.waitForFunction(() => 'e2e' in window, undefined, { timeout: 60_000 });
    return await page.evaluate(
      (opts) =>
        (window as unknown as { e2e: { bench(o: BenchOptions): Promise<SuiteResult> } }).e2e.bench(
          opts,
        ),
      options,
    );
  } finally {
    await browser.close();
    await server.close();
  }
}

type Summary = Record<string, string | number | null | Record<string, [number, number] | null>>;

/** The one-line summary the brief asks for; null where a backend did not run. */
export function summarize(suite: SuiteResult): Summary {
  const sps = (id: string): number | null =>
    suite.results.find((r) => r.id === id)?.samplesPerSecond ?? null;
  const ratio = (a: number | null, b: number | null): number | null =>
    a === null || b === null || b === 0 ? null : round(a / b, 3);
  // The fastest TF.js backend of one workload (ids `tfjs-…` or `cnn-tfjs-…`).
  const fastest = (prefix: string): BackendResult | null =>
    suite.results
      .filter((r) => r.id.startsWith(prefix) && r.samplesPerSecond !== null)
      .reduce<BackendResult | null>(
        (a, r) => (a === null || (r.samplesPerSecond ?? 0) > (a.samplesPerSecond ?? 0) ? r : a),
        null,
      );
  const best = fastest('tfjs-');
  const bestCnn = fastest('cnn-tfjs-');
  const meshgradWebgpu = sps('meshgrad-webgpu');
  const meshgradCpu = sps('meshgrad-cpu');
  const rounds = (id: string): number[] => {
    const r = suite.results.find((x) => x.id === id);
    return r && r.samplesPerSecond !== null ? r.repetitions : [];
  };
  // Paired per-round ratios (paired.ts): each the median over rounds, its interval beside it.
  const intervals: Record<string, [number, number] | null> = {};
  const paired = (name: string, a: string, b: string | undefined): number | null => {
    const r = b === undefined ? null : pairedRatio(rounds(a), rounds(b));
    intervals[name] = r?.interval ? [round(r.interval[0], 3)!, round(r.interval[1], 3)!] : null;
    return r ? round(r.median, 3) : null;
  };
  const bestTfjs = best?.id;
  const headline = {
    // The dense kernels (sparse path off) do the same dense products TF.js does.
    dense_ratio_vs_tfjs_best: paired('dense_ratio_vs_tfjs_best', 'meshgrad-webgpu-dense', bestTfjs),
    dense_ratio_vs_tfjs_webgpu: paired(
      'dense_ratio_vs_tfjs_webgpu',
      'meshgrad-webgpu-dense',
      'tfjs-webgpu',
    ),
    dense_cpu_ratio_vs_tfjs_wasm: paired(
      'dense_cpu_ratio_vs_tfjs_wasm',
      'meshgrad-cpu',
      'tfjs-wasm',
    ),
    // The sparse first layer on raw MNIST (81% zeros) against TF.js's dense products: its own row.
    sparse_ratio_vs_tfjs_best: paired('sparse_ratio_vs_tfjs_best', 'meshgrad-webgpu', bestTfjs),
    loop_vs_step_webgpu: paired('loop_vs_step_webgpu', 'meshgrad-webgpu-loop', 'meshgrad-webgpu'),
    loop_vs_step_cpu: paired('loop_vs_step_cpu', 'meshgrad-cpu-loop', 'meshgrad-cpu'),
    // The MNIST CNN (examples/mnist-cnn), dense inputs, against the same net in TF.js ops.
    cnn_ratio_vs_tfjs_webgpu: paired(
      'cnn_ratio_vs_tfjs_webgpu',
      'cnn-meshgrad-webgpu',
      'cnn-tfjs-webgpu',
    ),
    cnn_ratio_vs_tfjs_best: paired('cnn_ratio_vs_tfjs_best', 'cnn-meshgrad-webgpu', bestCnn?.id),
    cnn_cpu_ratio_vs_tfjs_wasm: paired(
      'cnn_cpu_ratio_vs_tfjs_wasm',
      'cnn-meshgrad-cpu',
      'cnn-tfjs-wasm',
    ),
  };
  return {
    bench: 'kernels',
    adapter: suite.adapter,
    meshgrad_webgpu_sps: round(meshgradWebgpu, 1),
    tfjs_webgpu_sps: round(sps('tfjs-webgpu'), 1),
    ratio_vs_tfjs_webgpu: ratio(meshgradWebgpu, sps('tfjs-webgpu')),
    tfjs_best_backend: best ? best.id.slice('tfjs-'.length) : null,
    ratio_vs_tfjs_best: ratio(meshgradWebgpu, best?.samplesPerSecond ?? null),
    meshgrad_cpu_sps: round(meshgradCpu, 1),
    tfjs_cpu_sps: round(sps('tfjs-cpu'), 1),
    ratio_cpu_vs_tfjs_cpu: ratio(meshgradCpu, sps('tfjs-cpu')),
    ratio_cpu_vs_tfjs_wasm: ratio(meshgradCpu, sps('tfjs-wasm')),
    cnn_meshgrad_webgpu_sps: round(sps('cnn-meshgrad-webgpu'), 1),
    cnn_meshgrad_cpu_sps: round(sps('cnn-meshgrad-cpu'), 1),
    cnn_tfjs_best_backend: bestCnn ? bestCnn.id.slice('cnn-tfjs-'.length) : null,
    cnn_tfjs_best_sps: round(bestCnn?.samplesPerSecond ?? null, 1),
    ...headline,
    ratio_interval: intervals,
    rounds: suite.options.reps,
    env: suite.env,
  };
}

function round(v: number | null, digits: number): number | null {
  return v === null ? null : Number(v.toFixed(digits));
}

function printTable(suite: SuiteResult): void {
  console.log(`\n[bench] ${suite.env}: ${suite.adapter}`);
  console.log(`[bench] ${suite.userAgent}`);
  const o = suite.options;
  console.log(
    `[bench] 784-${o.hidden.join('-')}-10 MLP and (cnn-…) the examples/mnist-cnn net, batch ${o.batchSize}, lr ${o.learningRate}, ` +
      `${o.warmupSteps} warm-up + ${o.steps} timed steps, median of ${o.reps}`,
  );
  console.log(
    `${'backend'.padEnd(21)} ${'samples/s'.padStart(9)}   ${'repetitions'.padEnd(34)} note`,
  );
  for (const r of suite.results) {
    const value = r.samplesPerSecond === null ? 'n/a' : r.samplesPerSecond.toFixed(1);
    const reps = r.repetitions.map((v) => v.toFixed(0)).join(', ');
    const note = (r.error ?? r.note).split('\n')[0] ?? '';
    console.log(`${r.id.padEnd(21)} ${value.padStart(9)}   ${reps.padEnd(34)} ${note}`);
  }
}

async function writeResults(suites: SuiteResult[], summaries: Summary[]): Promise<string> {
  const dir = join(REPO_DIR, 'bench-results');
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const json = join(dir, `kernels-${stamp}.json`);
  await writeFile(
    json,
    JSON.stringify({ date: new Date().toISOString(), suites, summaries }, null, 2) + '\n',
  );
  const rows = ['env,adapter,backend,samples_per_second,repetitions,last_loss,note,error'];
  const csvField = (v: unknown) => `"${String(v ?? '').replace(/"/g, '""')}"`;
  for (const s of suites) {
    for (const r of s.results) {
      rows.push(
        [
          s.env,
          s.adapter,
          r.id,
          r.samplesPerSecond ?? '',
          r.repetitions.map((v) => v.toFixed(1)).join(' '),
          r.lastLoss ?? '',
          r.note,
          r.error ?? '',
        ]
          .map(csvField)
          .join(','),
      );
    }
  }
  await writeFile(json.replace(/\.json$/, '.csv'), rows.join('\n') + '\n');
  return json;
}

export async function main(argv: readonly string[]): Promise<void> {
  const { envs, options } = parseArgs(argv);
  const suites: SuiteResult[] = [];
  for (const env of envs) {
    console.log(`[bench] === ${env} ===`);
    const started = performance.now();
    const suite =
      env === 'browser'
        ? await runBrowser(options)
        : await runNodeSuite(options, (l) => console.log(`[node] ${l}`));
    console.log(`[bench] ${env} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    suites.push(suite);
  }
  suites.forEach(printTable);
  const summaries = suites.map(summarize);
  const file = await writeResults(suites, summaries);
  console.log(`\n[bench] full results: ${file} (and .csv)`);
  // With --env=both the Node summary comes first; the last line is the first environment's.
  for (const s of summaries.slice(1)) console.log(JSON.stringify(s));
  console.log(JSON.stringify(summaries[0]));
}
