// `npm run bench:kernels`: the kernel throughput benchmark (docs/benchmarks.md). The code lives
// in e2e/bench/; TF.js is bundled from its ES modules, since its CommonJS Node builds lack the
// gradients.
import { runBundledMain } from './bundled-main.mjs';

await runBundledMain('bench', 'e2e/bench/cli.ts', ['@tensorflow']);
