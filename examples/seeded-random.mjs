// The seeded random numbers the examples' data generators share, so each file they write is the
// same on every machine.

/** mulberry32 (the PRNG meshgrad itself uses) from `seed`, with a standard normal beside it. */
export function seededRandom(seed) {
  let state = seed;
  function random() {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  // Box–Muller.
  function normal() {
    let u = 0;
    while (u === 0) u = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  return { random, normal };
}
