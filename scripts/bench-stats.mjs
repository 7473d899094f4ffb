// `npm run bench:stats`: the server's check of one statistics report, Zod's against the compiled
// one (docs/benchmarks.md, "Statistics checked in place"), in bench/stats/. Arguments pass
// through: `npm run bench:stats -- --links=8 --rounds=3`.
import { runBundledBench } from './bench-bundle.mjs';

await runBundledBench('stats', process.argv.slice(2));
