// Writes data.csv: 2,000 samples of y = x·w + b + noise with 8 standard-normal features, fixed
// weights and noise of standard deviation 0.1. Seeded, so the file is the same on every machine:
// `node make-data.mjs`.
import { writeFileSync } from 'node:fs';
import { URL } from 'node:url';
import { seededRandom } from '../seeded-random.mjs';

const SAMPLES = 2000;
const WEIGHTS = [0.8, -1.2, 0.5, 0, 2, -0.7, 0.3, 1.1];
const BIAS = 0.5;
const NOISE = 0.1;

const { normal } = seededRandom(4242);

const rows = [[...WEIGHTS.map((_, j) => `x${j + 1}`), 'y'].join(',')];
for (let i = 0; i < SAMPLES; i++) {
  const x = WEIGHTS.map(() => normal());
  const y = x.reduce((sum, v, j) => sum + v * WEIGHTS[j], BIAS) + NOISE * normal();
  rows.push([...x, y].map((v) => v.toFixed(4)).join(','));
}
writeFileSync(new URL('./data.csv', import.meta.url), rows.join('\n') + '\n');
