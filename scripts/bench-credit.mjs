// `npm run bench:credit`: what spot checks cost the volunteer and the server (docs/benchmarks.md,
// section Credit), in bench/credit/. Arguments pass through: `npm run bench:credit -- --rounds=3`.
import { runBundledBench } from './bench-bundle.mjs';

await runBundledBench('credit', process.argv.slice(2));
