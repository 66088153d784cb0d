/**
 * `tune:` section of a job: the LR range test, the update/weight-ratio monitor, the search and the rules of
 * thumb. The main job schema composes `TuneSchema` (`tune: TuneSchema.prefault({})`).
 */
import { z } from 'zod';
import { BaseScheduleSchema, WarmupSchema } from '../schedules/schema';

const positive = z.number().positive();

export const LrFindSchema = z
  .object({
    start: positive.default(1e-7),
    end: positive.default(10),
    steps: z.number().int().min(5).default(100),
    /** EMA factor of the smoothed loss (bias-corrected). */
    beta: z.number().min(0).lt(1).default(0.98),
    /** Stop when the smoothed loss exceeds this multiple of its minimum. */
    stopFactor: z.number().gt(1).default(4),
    /** "Clearly decreasing": at least this fraction of the steepest slope (loss per decade). */
    steepFraction: z.number().gt(0).lte(1).default(0.5),
    /** Points each side for the slope. */
    halfWindow: z.number().int().min(1).default(1),
    /** Minimum relative drop of the smoothed loss for any suggestion. */
    minDrop: z.number().min(0).lt(1).default(0.02),
  })
  .strict()
  .refine((v) => v.end > v.start, { message: 'end must be greater than start', path: ['end'] });

export const RatioMonitorSchema = z
  .object({
    low: positive.default(1e-4),
    high: positive.default(1e-2),
    /** Aim of autoAdjust and of the suggested factor. */
    target: positive.default(1e-3),
    /** Consecutive steps outside [low, high] before a warning. */
    patience: z.number().int().min(1).default(20),
    autoAdjust: z.boolean().default(false),
    /** Largest change of a group's rate per adjustment (×/÷). */
    maxStep: z.number().gt(1).default(2),
    /** Bounds on the cumulative multiplier autoAdjust may apply to a group. */
    minMult: positive.default(1e-2),
    maxMult: positive.default(1e2),
  })
  .strict()
  .refine((v) => v.low < v.high && v.target >= v.low && v.target <= v.high, {
    message: 'need low < high and low <= target <= high',
    path: ['target'],
  })
  .refine((v) => v.minMult <= 1 && v.maxMult >= 1, { message: 'need minMult <= 1 <= maxMult', path: ['minMult'] });

/** One searched hyper-parameter. `log` ranges need positive bounds. */
export const RangeSchema = z
  .object({
    min: z.number(),
    max: z.number(),
    scale: z.enum(['log', 'linear']).default('log'),
  })
  .strict();

export const SearchSpaceSchema = z
  .object({
    /** The top group's EFFECTIVE rate at the run's batch (lr-find's unit); the config gets it divided by the batch scaling. */
    lr: RangeSchema.prefault({ min: 1e-5, max: 1e-1 }),
    /** optimizer.weightDecay. null: not searched. */
    weightDecay: RangeSchema.nullable().prefault({ min: 1e-7, max: 1e-1 }),
    /** 1 − momentum, log-uniform: momentum = 1 − 10^U(−3, −1). null: not searched. */
    oneMinusMomentum: RangeSchema.nullable().prefault({ min: 1e-3, max: 1e-1 }),
    /** groups.factor, the spread between consecutive groups. null: not searched. */
    factor: RangeSchema.nullable().prefault({ min: 1, max: 30 }),
  })
  .strict();

export const SearchSchema = z
  .object({
    trials: z.number().int().min(1).default(12),
    /** `random` samples the space; `grid` walks 3x steps (1e-5, 3e-5, 1e-4, ...) of every log range. */
    method: z.enum(['random', 'grid']).default('random'),
    seed: z.number().int().nonnegative().default(0),
    /** k-fold stratified cross-validation; 1 uses the job's own train/val split. */
    folds: z.number().int().min(1).default(1),
    /** Cut a trial whose best score so far is below the median of finished trials at the same epoch. */
    medianStop: z.boolean().default(true),
    /** Finished trials needed before median stopping applies. */
    medianMinTrials: z.number().int().min(1).default(3),
    /** Epochs a trial always runs before it can be cut. */
    medianGraceEpochs: z.number().int().min(0).default(1),
    /** What "better" means: validation accuracy (max) or validation loss (min). */
    metric: z.enum(['val_accuracy', 'val_loss']).default('val_accuracy'),
    space: SearchSpaceSchema.prefault({}),
  })
  .strict();

/** The decay's own schedule: the same base-schedule and warmup stages as the learning rate (no batch scaling). */
export const WdScheduleSchema = z
  .object({
    schedule: BaseScheduleSchema.prefault({ type: 'constant' }),
    warmup: WarmupSchema.optional(),
  })
  .strict();
export type WdScheduleInput = z.input<typeof WdScheduleSchema>;

export const TuneSchema = z
  .object({
    lrFind: LrFindSchema.prefault({}),
    ratioMonitor: RatioMonitorSchema.prefault({}),
    search: SearchSchema.prefault({}),
    /** `wd auto`: λ·Ω(w) is this fraction of the data loss at the start. */
    wdAutoFraction: z.number().gt(0).lt(1).default(0.1),
    /**
     * Multiply every group's weight decay by this schedule's factor before each step (a warmup from a small
     * startFactor: decay that rises; cosine: decay that falls). Absent: the decay stays as configured.
     */
    wdSchedule: WdScheduleSchema.optional(),
  })
  .strict();

export type LrFindInput = z.input<typeof LrFindSchema>;
export type LrFindConfig = z.infer<typeof LrFindSchema>;
export type RatioMonitorInput = z.input<typeof RatioMonitorSchema>;
export type RatioMonitorConfig = z.infer<typeof RatioMonitorSchema>;
export type Range = z.infer<typeof RangeSchema>;
export type SearchSpace = z.infer<typeof SearchSpaceSchema>;
export type SearchInput = z.input<typeof SearchSchema>;
export type SearchConfig = z.infer<typeof SearchSchema>;
export type TuneInput = z.input<typeof TuneSchema>;
export type TuneConfig = z.infer<typeof TuneSchema>;
