// `npm run bench:scale`: the scaling experiment (docs/benchmarks.md, section Scaling), in
// bench/scale/. Arguments pass through: `npm run bench:scale -- --quick`.
import { runBundledBench } from './bench-bundle.mjs';

await runBundledBench('scale', process.argv.slice(2));
