/**
 * Config schema for learning-rate scaling, the base schedule, warmup and reduce-on-plateau.
 * The main job schema (src/config/schema.ts) composes `LrScheduleSchema` (or spreads its `.shape`).
 *
 * Units: every rate here (`lr.base`, `minLr`) is an absolute rate on the *reference* scale, i.e. the
 * scale that `lr.base` is written in. Layer groups carry their own rates; the schedule only produces a
 * multiplier, so the floors become the same fraction of every group and group ratios hold.
 */
import { z } from 'zod';
import { zodToConfigError } from '../config/parse';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
/** Time unit a schedule reads: the epoch counter or the global optimizer-step counter. */
const per = z.enum(['epoch', 'step']).default('epoch');
/** A decay factor: 1 means no decay; > 1 would grow the rate, which no schedule here intends. */
const decay = z.number().gt(0).lte(1);

export const ConstantScheduleSchema = z.object({ type: z.literal('constant') }).strict();

/** lr0 · gamma^floor(t / stepSize) */
export const StepScheduleSchema = z.object({ type: z.literal('step'), stepSize: positiveInt, gamma: decay.default(0.1), per }).strict();

/** lr0 · gamma^(number of milestones ≤ t) */
export const MultiStepScheduleSchema = z
  .object({
    type: z.literal('multistep'),
    milestones: z
      .array(nonNegativeInt)
      .min(1)
      .superRefine((m, ctx) => {
        for (let i = 1; i < m.length; i++) {
          if (m[i] <= m[i - 1]) {
            ctx.addIssue({
              code: 'custom',
              message: `must be strictly increasing, got ${m[i - 1]} then ${m[i]} in [${m.join(', ')}]`,
            });
            return;
          }
        }
      }),
    gamma: decay.default(0.1),
    per,
  })
  .strict();

/** lr0 · e^(−k t), or lr0 · decayRate^t (the "α *= 0.96 every iteration" form). Exactly one of k / decayRate. */
export const ExponentialScheduleSchema = z
  .object({
    type: z.literal('exponential'),
    k: z.number().nonnegative().optional(),
    decayRate: decay.optional(),
    per,
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.k === undefined) === (s.decayRate === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['k'], message: 'give exactly one of k (lr0·e^(−kt)) or decayRate (lr0·decayRate^t)' });
    }
  });

/** lr0 / (1 + k t) */
export const InverseTimeScheduleSchema = z.object({ type: z.literal('inverseTime'), k: z.number().nonnegative(), per }).strict();

/** Caffe "inv": lr0 · (1 + gamma t)^(−power) */
export const InvScheduleSchema = z.object({ type: z.literal('inv'), gamma: z.number().nonnegative(), power: z.number().nonnegative(), per }).strict();

/** Caffe "poly": lr0 · (1 − t/maxSteps)^power, 0 from maxSteps on. maxSteps is in `per` units; default: the run's length. */
export const PolyScheduleSchema = z
  .object({ type: z.literal('poly'), power: z.number().positive().default(0.9), maxSteps: positiveInt.optional(), per })
  .strict();

/** minLr + (lr0 − minLr)(1 + cos(π t / tMax))/2, held at minLr from tMax on. tMax in `per` units; default: the run's length. */
export const CosineScheduleSchema = z
  .object({ type: z.literal('cosine'), tMax: positiveInt.optional(), minLr: z.number().nonnegative().default(0), per })
  .strict();

/**
 * PyTorch OneCycleLR over optimizer steps: from peak/divFactor up to the peak over pctStart of the run, then down to
 * peak/(divFactor·finalDivFactor). It rises on its own, so it takes no separate warmup. Defaults are PyTorch's, except
 * momentum cycling (`cycleMomentum`: momentum, or Adam's beta1, from maxMomentum down to baseMomentum at the peak and
 * back), which is off so that one-cycle runs from before it existed keep their results.
 */
export const OneCycleScheduleSchema = z
  .object({
    type: z.literal('onecycle'),
    pctStart: z.number().gt(0).lt(1).default(0.3),
    divFactor: z.number().gt(0).default(25),
    finalDivFactor: z.number().gt(0).default(1e4),
    annealStrategy: z.enum(['cos', 'linear']).default('cos'),
    threePhase: z.boolean().default(false),
    cycleMomentum: z.boolean().default(false),
    baseMomentum: z.number().min(0).lt(1).default(0.85),
    maxMomentum: z.number().min(0).lt(1).default(0.95),
    /** Length of the cycle in optimizer steps; default: the run's length. */
    totalSteps: positiveInt.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.baseMomentum > s.maxMomentum) {
      ctx.addIssue({ code: 'custom', path: ['baseMomentum'], message: `${s.baseMomentum} is above maxMomentum ${s.maxMomentum}` });
    }
  });

export const BaseScheduleSchema = z.discriminatedUnion('type', [
  OneCycleScheduleSchema,
  ConstantScheduleSchema,
  StepScheduleSchema,
  MultiStepScheduleSchema,
  ExponentialScheduleSchema,
  InverseTimeScheduleSchema,
  InvScheduleSchema,
  PolyScheduleSchema,
  CosineScheduleSchema,
]);

/**
 * Warmup in front of any schedule. `linear`: from startFactor·target to target, rising by a constant each step
 * (target = the scheduled rate at the end of warmup). `constant`: startFactor·target for the whole warmup, then a jump.
 * startFactor default: 1/scale when linear scaling raised the peak (Goyal et al. 2017: start at the unscaled base —
 * exactly the base when the schedule has not decayed by the end of warmup, as with step/multistep), else 0.1 (He et al. 2016's constant warmup for ResNet-110: 0.01 before 0.1).
 */
export const WarmupSchema = z
  .object({
    type: z.enum(['linear', 'constant', 'none']).default('linear'),
    epochs: z.number().positive().optional(),
    steps: positiveInt.optional(),
    startFactor: z.number().min(0).max(1).optional(),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (w.type === 'none') return;
    if ((w.epochs === undefined) === (w.steps === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['epochs'], message: `give exactly one of epochs or steps for a ${w.type} warmup` });
    }
  });

/** Linear scaling rule: peak = base · (effective batch / baseBatch) (or its square root). */
export const LrSchema = z
  .object({
    /** The reference rate, meant at baseBatch. */
    base: z.number().positive().default(0.1),
    baseBatch: positiveInt.default(256),
    scaling: z.enum(['linear', 'sqrt', 'none']).default('linear'),
  })
  .strict();

/**
 * Reduce-on-plateau, a stage that multiplies the schedule (PyTorch ReduceLROnPlateau semantics), plus a stop
 * rule PyTorch lacks: on a plateau where `maxReductions` are used up or the next rate would be ≤ stopAtFraction · peak,
 * training ends after that epoch. `null` switches either stop condition off.
 */
export const PlateauSchema = z
  .object({
    /** Name of the epoch metric to watch. */
    monitor: z.string().min(1).default('val_loss'),
    mode: z.enum(['min', 'max']).default('min'),
    factor: z.number().gt(0, { error: 'must be > 0' }).lt(1, { error: 'must be < 1: a factor ≥ 1 would never reduce the rate' }).default(0.1),
    patience: nonNegativeInt.default(10),
    threshold: z.number().nonnegative().default(1e-4),
    thresholdMode: z.enum(['rel', 'abs']).default('rel'),
    cooldown: nonNegativeInt.default(0),
    /** Absolute floor on the reference scale (read against the peak rate). */
    minLr: z.number().nonnegative().default(0),
    /** Reductions smaller than this (absolute, reference scale) are skipped, as in PyTorch. */
    eps: z.number().nonnegative().default(1e-8),
    maxReductions: nonNegativeInt.nullable().default(null),
    stopAtFraction: z
      .number()
      .gt(0)
      .lt(1)
      .nullable()
      .default(1 / 1024),
  })
  .strict();

export const LrScheduleSchema = z
  .object({
    lr: LrSchema.prefault({}),
    schedule: BaseScheduleSchema.prefault({ type: 'constant' }),
    /** Absent: automatic (gradual 5-epoch warmup when scaling raises the rate, none otherwise). */
    warmup: WarmupSchema.optional(),
    plateau: PlateauSchema.optional(),
  })
  .strict();

/**
 * Early stopping with Keras semantics: stop when `monitor` has not improved by more than `minDelta` for `patience`
 * epochs; `baseline` must also be beaten before the wait resets; `restoreBestWeights` puts the best epoch's weights
 * back when training ends. mode `auto`: max for names containing acc (or ending in auc), min otherwise (as Keras 2).
 */
export const EarlyStoppingSchema = z
  .object({
    monitor: z.string().min(1).default('val_loss'),
    mode: z.enum(['auto', 'min', 'max']).default('auto'),
    patience: nonNegativeInt.default(0),
    minDelta: z.number().nonnegative().default(0),
    baseline: z.number().nullable().default(null),
    restoreBestWeights: z.boolean().default(false),
    startFromEpoch: nonNegativeInt.default(0),
  })
  .strict();

export type BaseScheduleConfig = z.infer<typeof BaseScheduleSchema>;
export type WarmupConfig = z.infer<typeof WarmupSchema>;
export type LrConfig = z.infer<typeof LrSchema>;
export type PlateauConfig = z.infer<typeof PlateauSchema>;
export type LrScheduleConfig = z.infer<typeof LrScheduleSchema>;
export type LrScheduleInput = z.input<typeof LrScheduleSchema>;
export type PlateauInput = z.input<typeof PlateauSchema>;
export type EarlyStoppingConfig = z.infer<typeof EarlyStoppingSchema>;
export type EarlyStoppingInput = z.input<typeof EarlyStoppingSchema>;

export { zodToConfigError } from '../config/parse';

/** Parse an lr/schedule/warmup/plateau config; bad input throws ConfigError with the field path. */
export function parseLrScheduleConfig(input: unknown, prefix = ''): LrScheduleConfig {
  const r = LrScheduleSchema.safeParse(input);
  if (!r.success) throw zodToConfigError(r.error, prefix);
  return r.data;
}
