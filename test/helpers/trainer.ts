import type { Prepared } from '../../src/job';
import type { StepOptimizer, TrainerOptions } from '../../src/train/trainer';

/**
 * The options of a Trainer built by hand over a prepared 32 px test job: 2 epochs of batch 4 at seed 1, no flips,
 * every step at the configured rates, nothing cached (no frozen prefix, no feature cache, no spill folder) and no
 * norm monitoring. A test names what it is about in `overrides` (the optimizer always); everything else is these.
 */
export function tinyTrainerOptions(
  p: Pick<Prepared, 'network' | 'data' | 'trainableVars'>,
  overrides: Partial<TrainerOptions> & { optimizer: StepOptimizer },
): TrainerOptions {
  return {
    network: p.network,
    data: p.data,
    vars: p.trainableVars,
    lr: { factor: () => 1 },
    epochs: 2,
    batch: 4,
    size: 32,
    flip: false,
    seed: 1,
    cacheBytes: 0,
    spillDir: null,
    monitorNorms: false,
    prefix: null,
    suffix: p.network.train,
    ...overrides,
  };
}
