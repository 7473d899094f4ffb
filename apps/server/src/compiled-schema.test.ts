import { statsSchema, validate } from '@meshgrad/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compileSchema } from './compiled-schema.ts';

const checkStats = compileSchema(statsSchema);

/** A seeded generator (mulberry32), so a failure names the case that shows it. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values a field may be given: the valid, the edge and the wrong. */
const ODD_VALUES: readonly unknown[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  1e308,
  Infinity,
  -Infinity,
  NaN,
  '',
  'w-1',
  'a'.repeat(64),
  'a'.repeat(65),
  'w 1',
  'é',
  '😀',
  '😀'.repeat(40),
  '1',
  'direct',
  'relay',
  true,
  false,
  null,
  undefined,
  [],
  [1],
  {},
  { peer: 'x' },
  new Uint8Array(4),
];

function validLink(r: () => number, k: number): Record<string, unknown> {
  const link: Record<string, unknown> = {
    peer: `w-${k}`,
    relayed: r() < 0.5,
    goodputBytesPerSec: r() * 1e6,
    backlogBytes: Math.floor(r() * 1e5),
    blocksSent: Math.floor(r() * 1e4),
    blocksReceived: Math.floor(r() * 1e4),
    overwritten: Math.floor(r() * 10),
    rejected: Math.floor(r() * 10),
    skippedSends: Math.floor(r() * 10),
  };
  if (r() < 0.5) link.rttMs = r() * 200;
  if (r() < 0.5) link.acceptanceRate = r();
  if (r() < 0.3) link.route = ['direct', 'turn', 'server'][Math.floor(r() * 3)];
  return link;
}

function validStats(r: () => number): Record<string, unknown> {
  const stats: Record<string, unknown> = {
    jobId: 'job-1',
    samples: Math.floor(r() * 1e6),
    samplesPerSec: r() * 500,
    offered: Math.floor(r() * 100),
    accepted: Math.floor(r() * 100),
    paused: r() < 0.1,
    links: Array.from({ length: Math.floor(r() * 6) }, (_, k) => validLink(r, k)),
  };
  if (r() < 0.7) stats.loss = r() * 3;
  if (r() < 0.5) stats.sendBusyFraction = r();
  return stats;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

/** A valid report with up to three things changed: a field set to an odd value, dropped, or added. */
function mutated(r: () => number): Record<string, unknown> {
  const stats = validStats(r);
  const changes = Math.floor(r() * 4);
  for (let c = 0; c < changes; c++) {
    const links = Array.isArray(stats.links) ? (stats.links as Array<Record<string, unknown>>) : [];
    const candidate = links.length > 0 && r() < 0.5 ? pick(r, links) : stats;
    const target = typeof candidate === 'object' && candidate !== null ? candidate : stats;
    const keys = Object.keys(target);
    const what = r();
    if (what < 0.6) target[pick(r, keys)] = pick(r, ODD_VALUES);
    else if (what < 0.8) delete target[pick(r, keys)];
    else
      target[pick(r, ['extra', 'route', 'loss', '__proto__', 'constructor'])] = pick(r, ODD_VALUES);
  }
  if (r() < 0.02) stats.links = Array.from({ length: 65 }, (_, k) => validLink(r, k));
  return stats;
}

describe('compileSchema', () => {
  it('decides every statistics report as Zod does, with the same value and the same message', () => {
    const r = rng(12345);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const payload = i % 4 === 0 ? validStats(r) : mutated(r);
      // Zod first, on a copy: the compiled check drops unknown keys from the payload itself.
      const copy = structuredClone(payload);
      const zod = validate(statsSchema, copy);
      const fast = checkStats(payload);
      expect(fast.ok, `case ${i}: ${JSON.stringify(copy)}`).toBe(zod.ok);
      expect(fast, `case ${i}`).toEqual(zod);
      if (fast.ok) accepted++;
    }
    // Both verdicts were exercised.
    expect(accepted).toBeGreaterThan(5_000);
    expect(accepted).toBeLessThan(18_000);
  });

  it('refuses what JSON carries past Zod: a number too large for a double, a key named __proto__', () => {
    const text = (samples: string) =>
      `{"jobId":"j","samples":${samples},"samplesPerSec":1,"offered":0,"accepted":0,"paused":false,"links":[]}`;
    const infinite = checkStats(JSON.parse(text('1e400')));
    expect(infinite).toEqual({ ok: false, message: expect.stringMatching(/^samples: /) });
    const proto = JSON.parse(text('1').replace('"links"', '"__proto__":{"x":1},"links"'));
    const r = checkStats(proto);
    expect(r.ok).toBe(true);
    if (r.ok) expect(Object.keys(r.value)).not.toContain('__proto__');
  });

  it('refuses to compile a schema whose JSON Schema would accept more than Zod', () => {
    expect(() => compileSchema(z.object({ a: z.number().refine((v) => v > 1) }))).toThrow(
      /\(payload\)\.a: the check custom/,
    );
    expect(() => compileSchema(z.object({ a: z.string().transform((s) => s.length) }))).toThrow(
      /\(payload\)\.a: a Zod pipe/,
    );
    expect(() => compileSchema(z.strictObject({ a: z.number() }))).toThrow(/unknown keys/);
    expect(() => compileSchema(z.object({ a: z.array(z.custom<Uint8Array>()) }))).toThrow(
      /\(payload\)\.a\[\]: a Zod custom/,
    );
  });
});
