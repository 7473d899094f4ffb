/**
 * The clients' receive path and merge in the scaling simulator, block by block as a volunteer
 * runs them: the norm bound of `AsgdWorker.receive` (docs/design.md §3.3), then the robust guard
 * of `asgd/robust.ts` around the local block, then the Parzen test and today's merge of
 * `CpuBackend` by the job's merge rule (§3.1: the order, the Parzen test on or off; outer
 * momentum is wrapped around this strategy by the caller). With guard `off` and the first rule
 * this is `stepThenAverage('hard')` behind the norm bound, and with the adopted rule
 * `averageThenStep('off')`: the merge under attack as deployed.
 */
import { BlockGuard, blockDistance, clipToward, DROP, type GuardMode } from '../../asgd/robust.ts';
import { NORM_BOUND_FACTOR, NORM_FLOOR } from '../../asgd/worker.ts';
import type { MergeRule } from '../../model/merge-rule.ts';
import { parzenWeight } from '../scale/merge/parzen.ts';
import type { MergeInput, MergeStrategy, WorkerMerge } from '../scale/merge/strategy.ts';

/** Most peer blocks one step merges per index (the engine's inbox and the mailbox hold 8). */
const MAX_MERGED = 16;

/** What the honest workers' merges took from whom, summed over the run. */
export interface MergeLedger {
  /** Peer blocks offered to honest workers' merges, from attackers. */
  attackerOffered: number;
  /** …rejected by the norm bound. */
  attackerNormRejected: number;
  /** …dropped by the guard (trimmed or quarantined). */
  attackerDropped: number;
  /** …clipped by the guard. */
  attackerClipped: number;
  /** …that passed the Parzen test and were merged. */
  attackerMerged: number;
  honestOffered: number;
  honestDropped: number;
  honestClipped: number;
  honestMerged: number;
}

export function emptyLedger(): MergeLedger {
  return {
    attackerOffered: 0,
    attackerNormRejected: 0,
    attackerDropped: 0,
    attackerClipped: 0,
    attackerMerged: 0,
    honestOffered: 0,
    honestDropped: 0,
    honestClipped: 0,
    honestMerged: 0,
  };
}

export interface GuardedMergeOptions {
  readonly guard: GuardMode;
  /** Which workers attack; only honest receivers' merges are booked in the ledger. */
  readonly isAttacker: (index: number) => boolean;
  readonly ledger: MergeLedger;
  /** Each worker's guard, for reports (e.g. whom it quarantined). */
  readonly guards?: Map<number, BlockGuard<number>>;
  /** The merge's order and Parzen test (default the first rule: step-then-average, hard). */
  readonly rule?: Pick<MergeRule, 'order' | 'parzen'>;
}

export function guardedMerge(options: GuardedMergeOptions): MergeStrategy {
  const { ledger, isAttacker } = options;
  const order = options.rule?.order ?? 'step-then-average';
  const parzen = options.rule?.parzen ?? 'hard';
  const averageFirst = order === 'average-then-step';
  return {
    name: `client/${options.guard}/${order}/${parzen}`,
    parzen,
    create(size: number, index = -1): WorkerMerge {
      const sum = new Float64Array(size);
      const scratch = new Float32Array(size);
      let guard: BlockGuard<number> | null = null;
      const book = !isAttacker(index);
      return {
        apply({ w, g, eta, inbox, blockSize, from }: MergeInput): number {
          guard ??= new BlockGuard(options.guard, Math.ceil(w.length / blockSize));
          options.guards?.set(index, guard);
          guard.tick();
          let merged = 0;
          const count = Math.min(inbox.length, MAX_MERGED);
          for (let start = 0, k = 0; start < w.length; start += blockSize, k++) {
            const end = Math.min(start + blockSize, w.length);
            const local = w.subarray(start, end);
            const localNorm = norm(local);
            const bound = NORM_BOUND_FACTOR * Math.max(localNorm, NORM_FLOOR);
            for (let i = start; i < end; i++) sum[i] = averageFirst ? w[i]! : w[i]! - eta * g[i]!;
            let total = 0;
            for (let r = 0; r < count; r++) {
              const sender = from?.[r] ?? -1;
              const bad = isAttacker(sender);
              if (book) ledger[bad ? 'attackerOffered' : 'honestOffered']++;
              let v = inbox[r]!.subarray(start, end);
              if (!(norm(v) <= bound)) {
                if (book && bad) ledger.attackerNormRejected++;
                continue;
              }
              const verdict = guard.judge(sender, k, blockDistance(local, v), localNorm);
              if (verdict === DROP) {
                if (book) ledger[bad ? 'attackerDropped' : 'honestDropped']++;
                continue;
              }
              if (verdict < 1) {
                if (book) ledger[bad ? 'attackerClipped' : 'honestClipped']++;
                // The inbox is shared with other receivers: clip a private copy.
                const c = scratch.subarray(start, end);
                c.set(v);
                clipToward(local, c, verdict);
                v = c;
              }
              const a = parzenWeight(parzen, w, g, v, start, end, eta);
              if (a > 0) {
                if (book) ledger[bad ? 'attackerMerged' : 'honestMerged']++;
                for (let i = start, t = 0; i < end; i++, t++) sum[i]! += v[t]!;
              }
              total += a;
            }
            const inv = 1 / (1 + total);
            if (averageFirst) for (let i = start; i < end; i++) w[i] = sum[i]! * inv - eta * g[i]!;
            else for (let i = start; i < end; i++) w[i] = sum[i]! * inv;
            merged += total;
          }
          return merged;
        },
      };
    },
  };
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}
