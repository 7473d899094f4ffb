// Writes rings.csv: three noisy concentric rings in the plane, labelled by name. Seeded, so the
// file is the same on every machine: `node make-rings.mjs`.
import { writeFileSync } from 'node:fs';
import { URL } from 'node:url';

const SAMPLES = 1500;
const RADII = { inner: 1, middle: 2, outer: 3 };
const NOISE = 0.2;

// mulberry32, the PRNG meshgrad itself uses.
let state = 20240611;
function random() {
  let t = (state = (state + 0x6d2b79f5) >>> 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function normal() {
  let u = 0;
  while (u === 0) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const names = Object.keys(RADII);
const rows = ['x,y,ring'];
for (let i = 0; i < SAMPLES; i++) {
  const ring = names[i % names.length];
  const angle = 2 * Math.PI * random();
  const r = RADII[ring] + NOISE * normal();
  rows.push(`${(r * Math.cos(angle)).toFixed(4)},${(r * Math.sin(angle)).toFixed(4)},${ring}`);
}
writeFileSync(new URL('./rings.csv', import.meta.url), rows.join('\n') + '\n');
