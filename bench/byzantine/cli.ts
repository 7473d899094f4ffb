/**
 * `npm run bench:byzantine`: what malicious volunteers do to training, with and without the
 * receive-path guards (docs/design.md §8). For each guard, attack and attacker fraction it runs
 * the scaling simulator's ASGD on the clients' merge (norm bound, guard, then the job's merge
 * rule: by default a job's default, step-then-average with the Parzen test; `--merge scaling`
 * for the scaling benchmark's average-then-step with the test off and outer momentum) and reports the honest workers' final K-Means objective against the same seed's
 * attack-free run without a guard; then each guard's time to target with no attacker. Writes
 * CSV and a Markdown table; the last line printed is the JSON summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  SCALING_MERGE_RULE,
  ATTACK_FRACTIONS,
  ATTACKS,
  ADOPTED_GUARD,
  GUARD_MODES,
  PARZEN_MERGE_RULE,
  runByzantine,
  scaleLinks,
  streamedKMeans,
  type AttackKind,
  type ByzantineRunResult,
  type GuardMode,
} from '@meshgrad/core';

/** The guard the receive path adopts (`AsgdWorker`'s default). */
const ADOPTED: GuardMode = ADOPTED_GUARD;
const WORKERS = 20;
/**
 * η: one worker's best on this workload with the first merge, and the scaling rule's best at
 * 16 workers on LAN (docs/scale/summary.md).
 */
const LEARNING_RATE = 1;
const MERGES = { first: PARZEN_MERGE_RULE, scaling: SCALING_MERGE_RULE } as const;
type MergeName = keyof typeof MERGES;
const EVAL_INTERVAL_S = 0.5;
/** Fixed random out-neighbours per worker (the engine's default). */
const NEIGHBOURS = 4;
/** Loss of more than this many points (K-Means: % of objective) counts as not held. */
const HELD_PTS = 1;

interface Options {
  readonly quick: boolean;
  readonly seeds: number;
  readonly guards: GuardMode[];
  readonly horizonS: number;
  readonly neighbours: number;
  readonly merge: MergeName;
  readonly out: string;
}

function parse(args: readonly string[]): Options {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const quick = args.includes('--quick');
  const guards = (value('--guards') ?? (quick ? `off,${ADOPTED}` : GUARD_MODES.join(','))).split(
    ',',
  ) as GuardMode[];
  for (const g of guards) {
    if (!GUARD_MODES.includes(g)) throw new RangeError(`unknown guard ${g}`);
  }
  if (!guards.includes('off') || !guards.includes(ADOPTED)) {
    throw new RangeError(`--guards must include off and ${ADOPTED}`);
  }
  const merge = (value('--merge') ?? 'first') as MergeName;
  if (!(merge in MERGES)) throw new RangeError(`--merge must be first or scaling, got ${merge}`);
  const seeds = Number(value('--seeds') ?? 3);
  if (!(seeds >= 1)) throw new RangeError('--seeds must be ≥ 1');
  return {
    quick,
    seeds,
    guards,
    horizonS: Number(value('--horizon') ?? (quick ? 6 : 10)),
    neighbours: Number(value('--neighbours') ?? NEIGHBOURS),
    merge,
    out:
      value('--out') ??
      (quick ? `bench-results/byzantine-quick-${merge}` : `docs/byzantine/${merge}`),
  };
}

const log = (line: string) => process.stdout.write(line + '\n');
const pct = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '—');

interface Cell {
  guard: GuardMode;
  attack: AttackKind | 'none';
  fraction: number;
  /** Per seed: 100 × (honest mean objective / the seed's attack-free, unguarded one − 1). */
  lossPts: number[];
  worstPts: number[];
  /** The same over honest workers with a local honest majority of incoming links. */
  majorityPts: number[];
  results: ByzantineRunResult[];
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : 0.5 * (s[m - 1]! + s[m]!);
};

export async function main(args: readonly string[]): Promise<void> {
  const options = parse(args);
  const started = performance.now();
  mkdirSync(options.out, { recursive: true });
  const workload = streamedKMeans();
  const seeds = Array.from({ length: options.seeds }, (_, i) => i + 1);
  const base = {
    workload,
    workers: WORKERS,
    links: scaleLinks('lan'),
    learningRate: LEARNING_RATE,
    neighbours: options.neighbours,
    evalIntervalS: EVAL_INTERVAL_S,
    maxTimeS: options.horizonS,
    stopAtTarget: false,
    merge: MERGES[options.merge],
  };
  log(
    `bench:byzantine — ${workload.name}, ${WORKERS} workers on LAN with ` +
      `${options.neighbours} neighbours each, η ${LEARNING_RATE}, ` +
      `${options.horizonS} s simulated, seeds ${seeds.join(',')}, guards ${options.guards.join(',')}, ` +
      `merge ${options.merge} (${MERGES[options.merge].order}, Parzen ${MERGES[options.merge].parzen}, momentum ${MERGES[options.merge].momentum})`,
  );
  log('MNIST MLP: not run (K-Means only in this version)');

  const reference = new Map<number, number>();
  for (const seed of seeds) {
    const r = await runByzantine({ ...base, seed, attack: 'none', fraction: 0, guard: 'off' });
    reference.set(seed, r.honestQuality);
  }
  const cells: Cell[] = [];
  for (const guard of options.guards) {
    for (const fraction of ATTACK_FRACTIONS) {
      for (const attack of fraction === 0 ? (['none'] as const) : ATTACKS) {
        const cell: Cell = {
          guard,
          attack,
          fraction,
          lossPts: [],
          worstPts: [],
          majorityPts: [],
          results: [],
        };
        for (const seed of seeds) {
          const r = await runByzantine({ ...base, seed, attack, fraction, guard });
          const ref = reference.get(seed)!;
          cell.lossPts.push(100 * (r.honestQuality / ref - 1));
          cell.worstPts.push(100 * (r.worstHonestQuality / ref - 1));
          cell.majorityPts.push(100 * (r.majorityQuality / ref - 1));
          cell.results.push(r);
        }
        cells.push(cell);
        const l = cell.results.map((r) => r.ledger);
        const sum = (k: keyof (typeof l)[number]) => l.reduce((a, x) => a + x[k], 0);
        log(
          `${guard.padEnd(10)} ${attack.padEnd(16)} f=${fraction.toFixed(1)}  loss ` +
            `${pct(mean(cell.lossPts))} pts (worst honest ${pct(Math.max(...cell.worstPts))}, ` +
            `local majority ${pct(mean(cell.majorityPts))}; outnumbered ` +
            `${mean(cell.results.map((r) => r.outnumbered)).toFixed(1)})  ` +
            `attacker blocks offered ${sum('attackerOffered')} merged ${sum('attackerMerged')} ` +
            `clipped ${sum('attackerClipped')} dropped ${sum('attackerDropped')}  quarantined ` +
            `${mean(cell.results.map((r) => r.attackersQuarantined)).toFixed(1)} attackers, ` +
            `${mean(cell.results.map((r) => r.honestQuarantined)).toFixed(1)} honest`,
        );
      }
    }
  }

  // Sanity: without a guard the attackers' blocks must reach honest merges, or the harness
  // measures nothing.
  const unreached = cells.filter(
    (c) =>
      c.guard === 'off' &&
      c.fraction > 0 &&
      c.results.reduce((a, r) => a + r.ledger.attackerMerged, 0) === 0,
  );
  if (unreached.length > 0) {
    throw new Error(
      `attackers' blocks never reached an honest merge: ${unreached.map((c) => `${c.attack}@${c.fraction}`).join(', ')}`,
    );
  }
  const offMerged = cells
    .filter((c) => c.guard === 'off' && c.fraction > 0)
    .reduce((a, c) => a + c.results.reduce((s, r) => s + r.ledger.attackerMerged, 0), 0);
  log(`sanity: ${offMerged} attacker blocks merged by honest workers in the unguarded runs`);

  // Time to target with no attacker, per guard.
  const ttt = new Map<GuardMode, (number | null)[]>();
  for (const guard of options.guards) {
    const times: (number | null)[] = [];
    for (const seed of seeds) {
      const r = await runByzantine({
        ...base,
        evalIntervalS: 0.05,
        maxTimeS: 4 * options.horizonS,
        stopAtTarget: true,
        seed,
        attack: 'none',
        fraction: 0,
        guard,
      });
      times.push(r.run.timeToTargetS);
    }
    ttt.set(guard, times);
    log(
      `time to target (${workload.target}), no attacker, ${guard}: ${times.map((t) => (t === null ? 'never' : t.toFixed(2))).join(', ')} s`,
    );
  }
  // Paired by seed: a seed on which either run missed the target within the cap says nothing
  // about the guard's cost.
  const ratios: number[] = [];
  ttt.get(ADOPTED)!.forEach((t, i) => {
    const off = ttt.get('off')![i];
    if (t !== null && off !== null && off !== undefined) ratios.push(t / off);
  });
  const noAttackCost = ratios.length > 0 ? median(ratios) - 1 : NaN;
  log(
    `no-attack time-to-target cost of ${ADOPTED}: ${pct(100 * noAttackCost)}% ` +
      `(median of ${ratios.length} seeds paired with off: ${ratios.map((r) => r.toFixed(3)).join(', ')})`,
  );

  // CSV and the Markdown table.
  const csv = [
    'guard,attack,fraction,seed,loss_pts,worst_honest_pts,majority_pts,outnumbered,attacker_merged,attacker_clipped,attacker_dropped,attackers_quarantined,honest_quarantined',
  ];
  for (const c of cells) {
    c.results.forEach((r, i) => {
      csv.push(
        [
          c.guard,
          c.attack,
          c.fraction,
          seeds[i],
          c.lossPts[i]!.toFixed(3),
          c.worstPts[i]!.toFixed(3),
          c.majorityPts[i]!.toFixed(3),
          r.outnumbered,
          r.ledger.attackerMerged,
          r.ledger.attackerClipped,
          r.ledger.attackerDropped,
          r.attackersQuarantined,
          r.honestQuarantined,
        ].join(','),
      );
    });
  }
  writeFileSync(`${options.out}/kmeans.csv`, csv.join('\n') + '\n');
  const md: string[] = [];
  const fractions = ATTACK_FRACTIONS.filter((f) => f > 0);
  md.push(
    `| guard | attack | ${fractions.map((f) => `${Math.round(100 * f)}%`).join(' | ')} |`,
    `|---|---|${fractions.map(() => '---:').join('|')}|`,
  );
  for (const guard of options.guards) {
    const none = cells.find((c) => c.guard === guard && c.fraction === 0)!;
    md.push(`| ${guard} | none (0%) | ${pct(mean(none.lossPts))} | | | |`);
    for (const attack of ATTACKS) {
      const row = fractions.map((f) => {
        const c = cells.find((x) => x.guard === guard && x.attack === attack && x.fraction === f)!;
        return `${pct(mean(c.lossPts))} (${pct(Math.max(...c.worstPts))})`;
      });
      md.push(`| ${guard} | ${attack} | ${row.join(' | ')} |`);
    }
  }
  writeFileSync(`${options.out}/kmeans.md`, md.join('\n') + '\n');
  for (const line of md) log(line);

  const adopted = cells.filter((c) => c.guard === ADOPTED);
  const at30 = adopted.filter((c) => c.fraction === 0.3);
  const worst30 = at30.reduce((a, c) => (mean(c.lossPts) > mean(a.lossPts) ? c : a));
  let held = 0;
  for (const f of ATTACK_FRACTIONS) {
    if (adopted.filter((c) => c.fraction === f).every((c) => mean(c.lossPts) <= HELD_PTS)) {
      held = f;
    } else break;
  }
  for (const attack of ATTACKS) {
    let a = 0;
    for (const f of fractions) {
      const c = adopted.find((x) => x.attack === attack && x.fraction === f)!;
      if (mean(c.lossPts) <= HELD_PTS) a = f;
      else break;
    }
    log(`held within ${HELD_PTS} pt by ${ADOPTED}: ${attack} up to ${Math.round(100 * a)}%`);
  }
  const majority30 = Math.max(...at30.map((c) => mean(c.majorityPts)));
  log(
    `${ADOPTED} at 30%: worst attack ${pct(mean(worst30.lossPts))} pts over all honest workers, ` +
      `${pct(majority30)} pts over those with a local honest majority (outnumbered per run: ` +
      `${mean(at30.flatMap((c) => c.results.map((r) => r.outnumbered))).toFixed(1)})`,
  );
  log(`wall ${((performance.now() - started) / 1000).toFixed(0)} s`);
  log(
    JSON.stringify({
      bench: 'byzantine',
      worst_loss_pts_30: Number(mean(worst30.lossPts).toFixed(3)),
      worst_attack_30: worst30.attack,
      max_fraction_within_1pt: held,
      no_attack_time_cost: Number.isFinite(noAttackCost) ? Number(noAttackCost.toFixed(3)) : null,
    }),
  );
}
