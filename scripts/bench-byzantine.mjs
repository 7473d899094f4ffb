// `npm run bench:byzantine`: malicious volunteers against the receive-path guards
// (docs/benchmarks.md, section Byzantine volunteers), in bench/byzantine/. Arguments pass
// through: `npm run bench:byzantine -- --quick`.
import { runBundledBench } from './bench-bundle.mjs';

await runBundledBench('byzantine', process.argv.slice(2));
