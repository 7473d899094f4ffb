// `npm run bench:balance`: the balancer experiment (docs/benchmarks.md, section Balancer), in
// bench/balance/. Arguments pass through: `npm run bench:balance -- --quick`.
import { runBundledBench } from './bench-bundle.mjs';

await runBundledBench('balance', process.argv.slice(2));
