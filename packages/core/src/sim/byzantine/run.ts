/**
 * One attacked run of the scaling simulator: the attack harness on the last `fraction` of the
 * workers, every worker on the clients' guarded merge, and the result judged on the honest
 * workers only (the mean of their final qualities: what any honest volunteer's upload would
 * make of the model).
 */
import type { BlockGuard, GuardMode } from '../../asgd/robust.ts';
import { runScaleAsgd, type ScaleAsgdConfig, type ScaleRunResult } from '../scale/asgd-engine.ts';
import type { EngineView } from '../scale/asgd-engine.ts';
import { AttackHarness, type AttackKind } from './attacks.ts';
import { emptyLedger, guardedMerge, type MergeLedger } from './guarded-merge.ts';
import { PARZEN_MERGE_RULE, type MergeRule } from '../../model/merge-rule.ts';
import { outerMomentum } from '../scale/merge/outer-momentum.ts';
import type { MergeStrategy } from '../scale/merge/strategy.ts';

/** `inner` with the rule's outer momentum around it, or `inner` when the rule has none. */
function withOuterMomentum(inner: MergeStrategy, rule: MergeRule): MergeStrategy {
  return rule.momentum > 0 ? outerMomentum(inner, rule.momentum, rule.momentumPeriod) : inner;
}

export interface ByzantineRunConfig extends Omit<
  ScaleAsgdConfig,
  'strategy' | 'outgoing' | 'probeAverage'
> {
  /** 'none' runs without attackers whatever `fraction` says. */
  readonly attack: AttackKind | 'none';
  readonly fraction: number;
  readonly guard: GuardMode;
  /** The clients' merge rule (default the first: step-then-average, Parzen hard, no momentum). */
  readonly merge?: MergeRule;
}

export interface ByzantineRunResult {
  readonly run: ScaleRunResult;
  /** Mean final quality over the honest workers. */
  readonly honestQuality: number;
  /** Worst final quality over the honest workers. */
  readonly worstHonestQuality: number;
  /**
   * Honest workers most of whose incoming links come from attackers (strictly more than
   * half): no defence that weighs peers against peers can tell them which side is honest.
   */
  readonly outnumbered: number;
  /** Mean final quality over the honest workers that are not outnumbered (NaN if none). */
  readonly majorityQuality: number;
  readonly attackers: number;
  readonly ledger: MergeLedger;
  /** Attackers that at least one honest worker held in quarantine at the end. */
  readonly attackersQuarantined: number;
  /** Honest workers that at least one honest worker held in quarantine at the end. */
  readonly honestQuarantined: number;
}

export async function runByzantine(config: ByzantineRunConfig): Promise<ByzantineRunResult> {
  const fraction = config.attack === 'none' ? 0 : config.fraction;
  const harness = new AttackHarness({
    kind: config.attack === 'none' ? 'sign-flip' : config.attack,
    fraction,
    seed: config.seed,
  });
  let view: EngineView | null = null;
  const ledger = emptyLedger();
  const guards = new Map<number, BlockGuard<number>>();
  const merge = config.merge ?? PARZEN_MERGE_RULE;
  const run = await runScaleAsgd({
    ...config,
    strategy: withOuterMomentum(
      guardedMerge({
        guard: config.guard,
        isAttacker: (i) => harness.isAttacker(i),
        ledger,
        guards,
        rule: merge,
      }),
      merge,
    ),
    outgoing: {
      attach(v) {
        view = v;
        harness.attach(v);
      },
      outgoing: (from, to, state, nowS) => harness.outgoing(from, to, state, nowS),
    },
  });
  const honest = harness.honest();
  const qualities = honest.map((i) => config.workload.quality(view!.state(i)));
  const worse = config.workload.higherIsBetter ? Math.min : Math.max;
  const forgedIn = new Int32Array(config.workers);
  const allIn = new Int32Array(config.workers);
  for (let i = 0; i < config.workers; i++) {
    for (const j of view!.neighbours(i)) {
      allIn[j]!++;
      if (harness.isAttacker(i)) forgedIn[j]!++;
    }
  }
  const kept = honest
    .map((i, at) => ({ i, q: qualities[at]! }))
    .filter(({ i }) => 2 * forgedIn[i]! <= allIn[i]!);
  const suspected = new Set<number>();
  for (const i of honest) for (const p of guards.get(i)?.distrusted() ?? []) suspected.add(p);
  let attackersQuarantined = 0;
  for (const p of suspected) if (harness.isAttacker(p)) attackersQuarantined++;
  return {
    run,
    honestQuality: qualities.reduce((a, b) => a + b, 0) / qualities.length,
    worstHonestQuality: worse(...qualities),
    outnumbered: honest.length - kept.length,
    majorityQuality: kept.reduce((a, k) => a + k.q, 0) / kept.length,
    attackers: harness.stats.attackers,
    ledger,
    attackersQuarantined,
    honestQuarantined: suspected.size - attackersQuarantined,
  };
}
