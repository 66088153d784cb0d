/**
 * The training loop's config sections (checkpoints, divergence guard), apart from the code that runs them so
 * that the job schema stays free of tfjs.
 */
import { z } from 'zod';

export const CheckpointSchema = z
  .object({
    /** Keep `checkpoints/last` current after every epoch: what `train --resume` continues from. */
    last: z.boolean().default(true),
    /** Also keep `checkpoints/epoch-NNNN` every this many epochs (0: never). */
    everyEpochs: z.number().int().nonnegative().default(0),
    /** Keep `checkpoints/best`, the epoch with the best monitored metric. */
    best: z.boolean().default(true),
    /**
     * The metric `best` follows: loss, accuracy, val_loss, val_accuracy. Default: earlyStopping.monitor when early
     * stopping is on (then `best` is exactly the weights restoreBestWeights puts back), else val_loss (loss without
     * validation images).
     */
    monitor: z.string().min(1).optional(),
    mode: z.enum(['auto', 'min', 'max']).default('auto'),
  })
  .strict();

export type CheckpointConfig = z.infer<typeof CheckpointSchema>;

/** Divergence guard: roll back and cut the rates on NaN/Inf or a loss spike (src/train/guard.ts). */
export const GuardSchema = z
  .object({
    /** Off: a non-finite loss stops training at once with a TrainingError (nothing applied, nothing written). */
    enabled: z.boolean().default(true),
    /** A loss above spikeFactor × max(running median of recent losses, chance-level loss ln K) is a spike. */
    spikeFactor: z.number().gt(1).default(10),
    /** Recent accepted losses the median is taken over. */
    window: z.number().int().positive().default(20),
    /** Accepted losses needed before spikes are judged at all. */
    minHistory: z.number().int().positive().default(1),
    /** Also check every gradient for NaN/Inf (one fused reduction per step). */
    checkGradients: z.boolean().default(true),
    /** Each divergence multiplies every group's rate by this. */
    lrCut: z.number().gt(0).lt(1).default(0.1),
    /** Divergences tolerated; one more stops training. */
    maxRetries: z.number().int().nonnegative().default(3),
    /** Steps between refreshes of the rollback copy (it is also refreshed at every epoch start). */
    snapshotEvery: z.number().int().positive().default(25),
  })
  .strict();

export type GuardConfig = z.infer<typeof GuardSchema>;
