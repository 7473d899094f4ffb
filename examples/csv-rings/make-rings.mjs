// Writes rings.csv: three noisy concentric rings in the plane, labelled by name. Seeded, so the
// file is the same on every machine: `node make-rings.mjs`.
import { writeFileSync } from 'node:fs';
import { URL } from 'node:url';
import { seededRandom } from '../seeded-random.mjs';

const SAMPLES = 1500;
const RADII = { inner: 1, middle: 2, outer: 3 };
const NOISE = 0.2;

const { random, normal } = seededRandom(20240611);

const names = Object.keys(RADII);
const rows = ['x,y,ring'];
for (let i = 0; i < SAMPLES; i++) {
  const ring = names[i % names.length];
  const angle = 2 * Math.PI * random();
  const r = RADII[ring] + NOISE * normal();
  rows.push(`${(r * Math.cos(angle)).toFixed(4)},${(r * Math.sin(angle)).toFixed(4)},${ring}`);
}
writeFileSync(new URL('./rings.csv', import.meta.url), rows.join('\n') + '\n');
