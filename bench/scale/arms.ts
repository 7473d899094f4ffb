/**
 * The merge rules bench:scale compares (one `MergeStrategy` each, plus how many peers a step's
 * state goes to and whether η warms up). `today` is the rule CpuBackend and the WGSL kernel run.
 */
import {
  averageThenStep,
  outerMomentum,
  stepThenAverage,
  type MergeStrategy,
} from '@meshgrad/core';

export interface Arm {
  readonly key: string;
  readonly label: string;
  readonly strategy: MergeStrategy;
  readonly pushesPerStep: number;
  /** Fraction of the ideal bound's time over which η warms up linearly; 0 for none. */
  readonly warmupFraction: number;
  /** Workers whose mean state is evaluated (capped at N); 1 = worker 0 alone. */
  readonly probeAverage: number;
}

/** The server's checkpoint average: the mean of this many volunteers' latest states. */
export const CHECKPOINT_AVERAGE = 64;

const arm = (
  key: string,
  label: string,
  strategy: MergeStrategy,
  pushesPerStep: number,
  extra: Partial<Pick<Arm, 'warmupFraction' | 'probeAverage'>> = {},
): Arm => ({
  key,
  label,
  strategy,
  pushesPerStep,
  warmupFraction: extra.warmupFraction ?? 0,
  probeAverage: extra.probeAverage ?? CHECKPOINT_AVERAGE,
});

export const ARMS: readonly Arm[] = [
  arm('today-1w', "today's rule, 1 push, one worker's model", stepThenAverage('hard'), 1, {
    probeAverage: 1,
  }),
  arm('today', "today's rule (step-then-average, Parzen hard), 1 push", stepThenAverage('hard'), 1),
  arm('sta-off-4', 'step-then-average, Parzen off, 4 pushes', stepThenAverage('off'), 4),
  arm('ats-hard-4', 'average-then-step, Parzen hard, 4 pushes', averageThenStep('hard'), 4),
  arm('ats-soft-4', 'average-then-step, Parzen soft, 4 pushes', averageThenStep('soft'), 4),
  arm('ats-off-1', 'average-then-step, Parzen off, 1 push', averageThenStep('off'), 1),
  arm('ats-off-4', 'average-then-step, Parzen off, 4 pushes', averageThenStep('off'), 4),
  arm(
    'ats-off-4-mom',
    'average-then-step, off, 4 pushes, outer momentum 0.5 every 4 steps',
    outerMomentum(averageThenStep('off'), 0.5, 4),
    4,
  ),
  arm('ats-off-4-warm', 'average-then-step, off, 4 pushes, η warm-up', averageThenStep('off'), 4, {
    warmupFraction: 0.25,
  }),
];

export const armByKey = (key: string): Arm => {
  const found = ARMS.find((a) => a.key === key);
  if (!found)
    throw new RangeError(`unknown arm ${key}; known: ${ARMS.map((a) => a.key).join(', ')}`);
  return found;
};
