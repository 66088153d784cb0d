/**
 * Named recipes: each is a set of job values laid under the job's own, so any field the job (file or flag) sets
 * wins over the recipe's, field by field. A job value that contradicts the recipe is reported, never silent.
 */
import type { RecipeName } from '../data/augment-schema';

export const RECIPE_VALUES: Record<RecipeName, Record<string, unknown>> = {
  /** Today's defaults: three groups at 0.001/0.01/0.1 meant at batch 256, biases at 2x, SGD with momentum, flips. */
  classic: {},
  /**
   * fastai's `fine_tune(epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5)` with a cnn_learner's
   * defaults: one epoch of one-cycle on the head (train.freezeEpochs, src/train/fine-tune.ts), then `train.epochs`
   * unfrozen, the three groups at slice(base_lr/2/lr_mult, base_lr/2) = 1e-5 … 1e-3 (fastai does not scale rates by
   * batch), one-cycle pct_start 0.3, div 5 and div_final 1e5 (PyTorch's final_div_factor 1e5/5), momentum 0.95 → 0.85
   * → 0.95 (Adam's beta1), AdamW (fastai's Adam: betas 0.9/0.99, eps 1e-5, true weight decay 0.01), no decay and no
   * rate multiplier on biases and BatchNorm (wd_bn_bias=False), BatchNorm on batch statistics (train_bn=True).
   * aug_transforms as far as the transforms exist: flips (p 0.5); rotation ±10° and zoom 1–1.1 as one affine with
   * p 0.75 and reflect padding (fastai draws rotation and zoom each with p 0.75, and moves the zoom's centre inside
   * the image); lighting 0.2 as brightness/contrast jitter 0.2 (torchvision's multiplicative jitter, applied to every
   * image, where fastai shifts in logit space with p 0.75). Not applied: its perspective warp (0.2), which has no
   * transform here.
   */
  fastai: {
    data: { flip: true, augment: { affine: { p: 0.75, degrees: 10, scale: [1, 1.1] }, colorJitter: { brightness: 0.2, contrast: 0.2 } } },
    optimizer: { algorithm: 'adamw', weightDecay: 0.01, betas: [0.9, 0.99], eps: 1e-5 },
    groups: { strategy: 'geometric', lo: 1e-5, hi: 1e-3, groups: 3, biasLrMult: 1, biasDecayMult: 0, normLrMult: 1, normDecayMult: 0 },
    lr: { scaling: 'none' },
    schedule: { type: 'onecycle', pctStart: 0.3, divFactor: 5, finalDivFactor: 2e4, cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95 },
    warmup: { type: 'none' },
    model: { batchNorm: 'batch' },
    train: { freezeEpochs: 1 },
  },
  /**
   * timm's fine-tuning defaults as far as they apply here: RandomResizedCrop (scale 0.08–1, ratio 3/4–4/3), colour
   * jitter 0.4 (brightness, contrast, saturation, as timm's `--color-jitter 0.4`), label smoothing 0.1, AdamW with
   * weight decay 0.05, cosine per step after a 1-epoch linear warmup (timm's 5 epochs would not fit short runs), and
   * layer decay 0.75 from a top rate of 0.004 at batch 256 scaled by the square root of the batch (timm's rule for
   * adaptive optimizers), 0.001 at batch 16. The rate is measured (scripts/recipe-campaign.ts, flowers5, 8 epochs,
   * seeds 1-3): 0.001 at batch 256 (0.00025 at 16) left the body's update/weight ratios 15-200x below 1e-3 and
   * reached 0.661 ± 0.059; 0.004 reached 0.800 ± 0.000.
   */
  timm: {
    data: {
      augment: {
        randomResizedCrop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
        colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
      },
    },
    loss: { labelSmoothing: 0.1 },
    optimizer: { algorithm: 'adamw', weightDecay: 0.05 },
    groups: { strategy: 'layerDecay', lr: 0.004, decay: 0.75 },
    lr: { base: 0.004, baseBatch: 256, scaling: 'sqrt' },
    schedule: { type: 'cosine', per: 'step' },
    warmup: { type: 'linear', epochs: 1 },
  },
};

/**
 * `--lr` and `groups.top` name the top group's rate, which the layer-decay strategy calls `groups.lr` and the
 * geometric one `groups.hi`. Under a recipe that chose either, a job's `groups.top` (with no strategy of its own)
 * is that same rate, not a stepped-strategy field to merge into it.
 */
function topRateAlias(path: string, base: unknown, over: unknown): unknown {
  if (path !== 'groups' || !isPlainObject(base) || !isPlainObject(over)) return over;
  if ('strategy' in over || !('top' in over)) return over;
  const { top, ...rest } = over;
  if (base.strategy === 'layerDecay') return { ...rest, lr: top };
  // fastai's slice(base/lr_mult, base): a new top rate keeps the recipe's span unless the job gives lo itself
  if (base.strategy === 'geometric' && typeof top === 'number' && typeof base.lo === 'number' && typeof base.hi === 'number') {
    return { lo: (top * base.lo) / base.hi, ...rest, hi: top };
  }
  return over;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The job with its recipe's values underneath, and one line for every recipe value the job replaced. A job's own
 * subtree replaces the recipe's wholesale where the recipe's is a tagged choice (a `strategy` or `type`), because
 * merging two different strategies' fields would make a config neither meant.
 */
export function applyRecipe(job: Record<string, unknown>): { config: Record<string, unknown>; notes: string[] } {
  const name = job.recipe;
  if (typeof name !== 'string' || !(name in RECIPE_VALUES)) return { config: job, notes: [] };
  const notes: string[] = [];
  const merge = (base: Record<string, unknown>, over: Record<string, unknown>, at: string): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...base };
    for (let [k, v] of Object.entries(over)) {
      if (v === undefined) continue;
      const path = at ? `${at}.${k}` : k;
      v = topRateAlias(path, base[k], v);
      const b = base[k];
      const tagged = isPlainObject(b) && isPlainObject(v) && ['strategy', 'type'].some((t) => t in b && t in v && b[t] !== v[t]);
      if (isPlainObject(b) && isPlainObject(v) && !tagged) {
        out[k] = merge(b, v, path);
        continue;
      }
      if (b !== undefined && JSON.stringify(b) !== JSON.stringify(v)) {
        notes.push(`recipe ${name} sets ${path} = ${JSON.stringify(b)}; the job's ${JSON.stringify(v)} wins`);
      }
      out[k] = v;
    }
    return out;
  };
  return { config: merge(RECIPE_VALUES[name as RecipeName], job, ''), notes };
}
