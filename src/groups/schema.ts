import { z } from 'zod';
import { nonNegative } from '../optim/schema';
import { DECAY_MODES } from '../optim/types';

const rate = nonNegative;
const mult = nonNegative;
const groupCount = z.number().int('groups must be an integer').min(1, 'groups must be >= 1').default(3);

/**
 * One rule: layers whose NAME matches `match` (a JavaScript regex, searched, not anchored) get
 * these settings. Rules are ordered: for each field the first matching rule that sets it wins;
 * two matching rules naming different groups are an error. `lrMult: 0` or `freeze: true` freezes.
 */
export const ruleSchema = z
  .object({
    match: z.string().min(1, 'match must be a non-empty regular expression'),
    group: z.string().min(1).optional(),
    lr: rate('lr').optional(),
    lrMult: mult('lrMult').optional(),
    decayMult: mult('decayMult').optional(),
    decayMode: z.enum(DECAY_MODES).optional(),
    freeze: z.boolean().optional(),
  })
  .strict();

/** Multipliers by role and rule handling, shared by every strategy. */
const common = {
  rules: z.array(ruleSchema).default([]),
  /** A rule that matches no layer is a warning; with strict it is an error. */
  strict: z.boolean().default(false),
  biasLrMult: mult('biasLrMult').default(2),
  biasDecayMult: mult('biasDecayMult').default(0),
  normLrMult: mult('normLrMult').default(1),
  normDecayMult: mult('normDecayMult').default(0),
};

/** 10x steps: group i of n gets top / factor^(n−1−i): 0.001 / 0.01 / 0.1 by default. */
export const steppedSchema = z
  .object({
    strategy: z.literal('stepped'),
    top: rate('top').default(0.1),
    factor: z.number().gt(0, 'factor must be > 0').default(10),
    groups: groupCount,
    ...common,
  })
  .strict();

/** fastai's slice(lo, hi): n learning rates evenly spaced in log space from lo (front) to hi (last). */
export const geometricSchema = z
  .object({
    strategy: z.literal('geometric'),
    lo: rate('lo').default(0.001),
    hi: rate('hi').default(0.1),
    groups: groupCount,
    ...common,
  })
  .strict();

/** Stages split front to back into n groups with the given rates (default: the stepped ones). */
export const autoSchema = z
  .object({
    strategy: z.literal('auto'),
    groups: groupCount,
    lrs: z.array(rate('lrs[]')).optional(),
    ...common,
  })
  .strict();

/** timm layer decay: one group per stage, stage i of depth S gets lr·decay^(S−i); the head (i = S) gets lr. */
export const layerDecaySchema = z
  .object({
    strategy: z.literal('layerDecay'),
    lr: rate('lr').default(0.1),
    decay: z.number().gt(0, 'decay must be in (0, 1]').max(1, 'decay must be in (0, 1]').default(0.75),
    ...common,
  })
  .strict();

/** Everything starts in one group `base` at `lr`; rules move, scale or freeze layers. */
export const rulesOnlySchema = z
  .object({
    strategy: z.literal('rules'),
    lr: rate('lr'),
    ...common,
  })
  .strict();

const union = z.discriminatedUnion('strategy', [steppedSchema, geometricSchema, autoSchema, layerDecaySchema, rulesOnlySchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'unknown strategy; expected one of stepped, geometric, auto, layerDecay, rules' : undefined),
});

/**
 * `groups:` section of a job. Missing or without `strategy`, it is the classic layer-wise recipe: `stepped`,
 * three groups at 0.001 / 0.01 / 0.1 (rates at the reference batch of 256; scaling to the real batch
 * happens elsewhere), biases at 2x without decay, norm parameters at 1x without decay.
 */
export const groupingSchema = z.preprocess((v) => {
  if (v === undefined || v === null) return { strategy: 'stepped' };
  if (typeof v === 'object' && !Array.isArray(v) && !('strategy' in v)) return { ...(v as object), strategy: 'stepped' };
  return v;
}, union);

export type GroupingInput = z.input<typeof union> | Omit<z.input<typeof steppedSchema>, 'strategy'> | undefined;
export type GroupingConfig = z.infer<typeof union>;
export type GroupRule = z.infer<typeof ruleSchema>;
