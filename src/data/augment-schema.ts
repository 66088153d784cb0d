/**
 * Config schema for training-time augmentation, presizing, evaluation crops, label smoothing, weight EMA,
 * class balance and named recipes. Parameter names and defaults follow the anchors so a user can carry
 * settings across: torchvision's transforms (RandomResizedCrop, RandomAffine, ColorJitter, RandomErasing),
 * timm's RandAugment string (`rand-m9-mstd0.5`), Mixup class and ModelEmaV3, and fastai's presizing.
 * Every transform is off unless configured; with none configured, `auto` lets the measured rule in
 * src/data/augment-rule.ts add RandomResizedCrop and colour jitter to small training sets.
 */
import { z } from 'zod';

/** A probability: the message names the range so the one-line error says what is allowed. */
export const probability = z.number().min(0, { error: 'a probability must be in [0, 1]' }).max(1, { error: 'a probability must be in [0, 1]' });

/**
 * A [min, max] range of positive numbers, as torchvision writes scale and ratio ranges. Both checks live here so
 * every range in the schema reports the same way.
 */
export function positiveRange(defaults: [number, number]) {
  return z
    .tuple([z.number(), z.number()])
    .superRefine(([lo, hi], ctx) => {
      if (lo <= 0 || hi <= 0) ctx.addIssue({ code: 'custom', message: `range [${lo}, ${hi}] must be > 0 at both ends` });
      else if (lo > hi) ctx.addIssue({ code: 'custom', message: `range [${lo}, ${hi}] has min > max` });
    })
    .default(defaults);
}

/** torchvision RandomResizedCrop: area fraction and aspect ratio of the crop taken before resizing to the input size. */
export const RandomResizedCropSchema = z
  .object({
    scale: positiveRange([0.08, 1]).refine(([, hi]) => hi <= 1, { error: 'scale is a fraction of the image area: max must be ≤ 1' }),
    ratio: positiveRange([3 / 4, 4 / 3]),
  })
  .strict();

/**
 * One affine (torchvision RandomAffine), sampled per image and applied with a single interpolation so a rotation
 * followed by a zoom does not blur twice; pixels from outside the image come from reflection (fastai's default).
 */
export const AffineSchema = z
  .object({
    p: probability.default(1),
    /** Rotation drawn uniformly in [−degrees, degrees]. */
    degrees: z.number().min(0).max(180).default(0),
    /** Maximum shift as a fraction of width and height. */
    translate: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0, 0]),
    /** Zoom factor range (1 = none). */
    scale: positiveRange([1, 1]),
    /** Shear drawn uniformly in [−shear, shear] degrees, along x. */
    shear: z.number().min(0).lt(90).default(0),
  })
  .strict();

/** torchvision ColorJitter: each factor drawn uniformly in [max(0, 1 − v), 1 + v]; hue shift in [−hue, hue] turns. */
export const ColorJitterSchema = z
  .object({
    brightness: z.number().min(0).default(0),
    contrast: z.number().min(0).default(0),
    saturation: z.number().min(0).default(0),
    hue: z.number().min(0).max(0.5).default(0),
  })
  .strict();

/** timm RandAugment: n ops per image at magnitude m of 10, magnitude jittered by a normal of std mstd. */
export const RandAugmentSchema = z
  .object({
    n: z.number().int().min(1).max(14).default(2),
    m: z.number().min(0).max(10).default(9),
    mstd: z.number().min(0).default(0.5),
  })
  .strict();

/** torchvision RandomErasing: one rectangle of area fraction `scale` and aspect `ratio`, filled with `value` or noise. */
export const RandomErasingSchema = z
  .object({
    p: probability.default(0.5),
    scale: positiveRange([0.02, 0.33]).refine(([, hi]) => hi <= 1, { error: 'scale is a fraction of the image area: max must be ≤ 1' }),
    ratio: positiveRange([0.3, 3.3]),
    /** A fill value in the network's input range, or `random` (per-pixel normal noise, timm's `pixel` mode). */
    value: z.union([z.number(), z.literal('random')]).default(0),
  })
  .strict();

const positiveAlpha = z.number().gt(0, { error: 'alpha must be > 0 (it parameterises a Beta distribution)' });

/**
 * timm Mixup: per batch, with probability `prob`, mix images by MixUp or CutMix (CutMix with probability
 * `switchProb` when both are configured) and their targets by the same λ ~ Beta(alpha, alpha).
 */
export const MixSchema = z
  .object({
    mixupAlpha: positiveAlpha.optional(),
    cutmixAlpha: positiveAlpha.optional(),
    prob: probability.default(1),
    switchProb: probability.default(0.5),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.mixupAlpha === undefined && m.cutmixAlpha === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mixupAlpha'], message: 'give mixupAlpha, cutmixAlpha or both' });
    }
  });

/** Training transforms, applied to whole batches in the order listed. Absent = off. */
export const AugmentSchema = z
  .object({
    randomResizedCrop: RandomResizedCropSchema.optional(),
    /** Probability of a left-right flip; absent: `data.flip` decides (0.5 or 0). */
    hflip: probability.optional(),
    vflip: probability.default(0),
    affine: AffineSchema.optional(),
    colorJitter: ColorJitterSchema.optional(),
    /** torchvision RandomGrayscale probability. */
    grayscale: probability.default(0),
    randAugment: RandAugmentSchema.optional(),
    /** torchvision TrivialAugmentWide: one op at a uniform magnitude per image. */
    trivialAugment: z.boolean().default(false),
    randomErasing: RandomErasingSchema.optional(),
    mix: MixSchema.optional(),
    /**
     * With a frozen prefix and augmented images: how many augmented views of each image have their prefix outputs
     * cached (epoch e trains on view e mod K); 0 recomputes the prefix on a fresh view every batch. The default 4
     * is measured (scripts/measure-prefix-cache.ts, README "Augmentation, label smoothing and recipes"): on flowers5
     * it matched recomputing every view at 8 and 16 epochs in well under the time. See src/data/cached-views.ts.
     */
    cachedViews: z
      .number()
      .int({ error: 'cachedViews counts views per image: a whole number (0 = off)' })
      .nonnegative({ error: 'cachedViews counts views per image: 0 (off) or more' })
      .default(4),
    /**
     * With no pixel transform configured here or by a recipe: let the measured rule choose by training images per
     * class and epochs (src/data/augment-rule.ts): RandomResizedCrop 0.35–1 and colour jitter 0.2 at 20 or fewer
     * images per class in runs of 16 epochs or more, flips only otherwise. false: only what is configured.
     */
    auto: z.boolean().default(true),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.randAugment && a.trivialAugment) {
      ctx.addIssue({ code: 'custom', path: ['trivialAugment'], message: 'choose one of randAugment or trivialAugment' });
    }
  });

export const LossSchema = z
  .object({
    /** Target (1 − ε) on the true class and ε/K on every class (PyTorch's and tfjs's convention). */
    labelSmoothing: z.number().min(0).lt(1).default(0),
  })
  .strict();

/**
 * How validation, `evaluate` and `predict` turn an image into the input square. `fill`: the whole image squashed
 * to the square (what every earlier export did). `center`: short side resized to size / cropPct, then the centre
 * size × size (timm's crop_pct, 0.875 by default).
 */
export const EvalSchema = z
  .object({
    crop: z.enum(['fill', 'center']).default('fill'),
    cropPct: z.number().gt(0).max(1).default(0.875),
  })
  .strict();

/** Weight EMA as timm's ModelEmaV3: decay, optionally warmed up as min(decay, (1 + t)/(10 + t)). */
export const EmaSchema = z
  .object({
    decay: z.number().gt(0).lt(1).default(0.9998),
    warmup: z.boolean().default(true),
    /** Which weights the export holds. Validation runs on the EMA weights either way. */
    export: z.enum(['ema', 'raw']).default('ema'),
  })
  .strict();

export const RECIPES = ['classic', 'fastai', 'timm'] as const;
export type RecipeName = (typeof RECIPES)[number];

export type AugmentConfig = z.infer<typeof AugmentSchema>;
export type AffineConfig = z.infer<typeof AffineSchema>;
export type ColorJitterConfig = z.infer<typeof ColorJitterSchema>;
export type RandAugmentConfig = z.infer<typeof RandAugmentSchema>;
export type MixConfig = z.infer<typeof MixSchema>;
export type LossConfig = z.infer<typeof LossSchema>;
export type EvalConfig = z.infer<typeof EvalSchema>;
export type EmaConfig = z.infer<typeof EmaSchema>;
