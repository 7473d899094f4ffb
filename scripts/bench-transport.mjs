// `npm run bench:transport`: meshgrad's state exchange against a raw RTCDataChannel between two
// Chromium tabs (docs/benchmarks.md, "Transport"). The code lives in e2e/p2p/.
import { runBundledMain } from './bundled-main.mjs';

await runBundledMain('bench', 'e2e/p2p/bench-transport.ts');
