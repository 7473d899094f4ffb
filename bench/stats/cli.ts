/**
 * `npm run bench:stats`: what the server pays to check one statistics report (every volunteer
 * sends one a second, docs/design.md §5.4), with Zod's parse (`validate(statsSchema, …)`, the baseline)
 * against the compiled check the server uses (apps/server/src/compiled-schema.ts), side by side
 * in this process. Each report is JSON text as a tab sends it, with L links shaped like a tab's,
 * the counters different in each of `--reports` texts; a timed pass parses every text
 * (`JSON.parse`, as socket.io's decoder does) and checks it: the ratio is of those two sums, per
 * round. JSON.parse alone is timed too, to show what the check adds to it. The garbage each
 * check leaves is collected inside the timed passes, as it is in the server. Rounds alternate
 * the order of the three.
 *
 * Options: --links=0,4,8,16 --reports=2000 --passes=10 --rounds=7. Ends with one JSON line.
 */
import { statsSchema, validate } from '@meshgrad/core';
import { compileSchema } from '../../apps/server/src/compiled-schema.ts';

interface Options {
  readonly links: number[];
  readonly reports: number;
  readonly passes: number;
  readonly rounds: number;
}

function parseOptions(args: readonly string[]): Options {
  const get = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const int = (name: string, fallback: number, min = 1) => {
    const raw = get(name);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return v;
  };
  const links = (get('links') ?? '0,4,8,16').split(',').map(Number);
  if (links.some((n) => !Number.isInteger(n) || n < 0 || n > 64)) {
    throw new Error('--links must be integers from 0 to 64, e.g. --links=0,8');
  }
  return {
    links,
    reports: int('reports', 2_000),
    passes: int('passes', 10),
    rounds: int('rounds', 7),
  };
}

/** `n` reports of `links` links each, as JSON text, their counters advancing as a tab's do. */
function reportTexts(n: number, links: number): string[] {
  return Array.from({ length: n }, (_, r) =>
    JSON.stringify({
      jobId: 'bench',
      samples: 640 * r,
      samplesPerSec: 640 + (r % 7),
      loss: 2.3 / (1 + r / 100),
      offered: 4 * r,
      accepted: 3 * r,
      paused: false,
      links: Array.from({ length: links }, (_, k) => ({
        peer: `w-${(0x1000 + k * 7919 + r).toString(16)}`,
        relayed: k % 5 === 0,
        route: k % 5 === 0 ? 'turn' : 'direct',
        goodputBytesPerSec: 20_000 + 13 * r + k,
        rttMs: 20 + (k % 9),
        backlogBytes: (r * k) % 4096,
        blocksSent: 4 * r + k,
        blocksReceived: 4 * r,
        overwritten: r % 3,
        rejected: 0,
        acceptanceRate: 0.9,
        skippedSends: r % 2,
      })),
      sendBusyFraction: 0.25,
    }),
  );
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const fmt = (v: number) => v.toFixed(2);

export async function main(args: readonly string[]): Promise<void> {
  const options = parseOptions(args);
  const out = (line: string) => process.stdout.write(line + '\n');
  const compiled = compileSchema(statsSchema);
  type Way = 'parse' | 'zod' | 'compiled';
  const ways: Record<Way, (text: string) => boolean> = {
    parse: (t) => typeof JSON.parse(t) === 'object',
    zod: (t) => validate(statsSchema, JSON.parse(t)).ok,
    compiled: (t) => compiled(JSON.parse(t)).ok,
  };
  out(
    `bench:stats: ${options.reports} reports × ${options.passes} passes per timing, ${options.rounds} rounds; ` +
      `baseline: Zod's parse of the same texts in this process`,
  );
  const summary: Record<string, number> = {};
  for (const links of options.links) {
    const texts = reportTexts(options.reports, links);
    const bytes = Math.round(texts.reduce((a, t) => a + t.length, 0) / texts.length);
    // Every text passes both checks, or the timing would compare refusals.
    for (const t of texts) {
      if (!ways.zod(t) || !ways.compiled(t)) throw new Error(`a report with ${links} links failed`);
    }
    const perReportUs: Record<Way, number[]> = { parse: [], zod: [], compiled: [] };
    const order: Way[] = ['parse', 'zod', 'compiled'];
    for (let round = -1; round < options.rounds; round++) {
      for (const way of round % 2 === 0 ? order : [...order].reverse()) {
        const f = ways[way];
        const t0 = performance.now();
        let ok = 0;
        for (let p = 0; p < options.passes; p++) for (const t of texts) if (f(t)) ok++;
        const us = ((performance.now() - t0) * 1000) / (options.passes * texts.length);
        if (ok !== options.passes * texts.length) throw new Error(`${way} refused a report`);
        if (round >= 0) perReportUs[way].push(us); // round -1 warms the three up
      }
    }
    const zod = perReportUs.zod;
    const fast = perReportUs.compiled;
    const ratios = zod.map((z, i) => z / (fast[i] as number));
    const range = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
    const parse = median(perReportUs.parse);
    out(
      `links ${String(links).padStart(2)} (${bytes} B of JSON): parse + check with Zod ${fmt(median(zod))} µs (${range(zod)}), ` +
        `compiled ${fmt(median(fast))} µs (${range(fast)}): ${fmt(median(ratios))}× (${range(ratios)}); ` +
        `JSON.parse alone ${fmt(parse)} µs, so the check ≈ ${fmt(median(zod) - parse)} → ${fmt(median(fast) - parse)} µs`,
    );
    summary[`ratio_links_${links}`] = Number(fmt(median(ratios)));
    summary[`compiled_us_links_${links}`] = Number(fmt(median(fast)));
  }
  out(JSON.stringify({ bench: 'stats', ...summary }));
}
