/**
 * Named recipes: each is a set of job values laid under the job's own, so any field the job (file or flag) sets
 * wins over the recipe's, field by field. A job value that contradicts the recipe is reported, never silent.
 */
import type { RecipeName } from '../data/augment-schema';

export const RECIPE_VALUES: Record<RecipeName, Record<string, unknown>> = {
  /** Today's defaults: three groups at 0.001/0.01/0.1 meant at batch 256, biases at 2x, SGD with momentum, flips. */
  classic: {},
  /**
   * fastai's fine_tune (a head-only one-cycle phase, then everything unfrozen with discriminative rates and a second
   * one-cycle) needs a two-phase run; recipes.ts lists no values for it until that lands, and the job refuses it.
   */
  fastai: {},
  /**
   * timm's fine-tuning defaults as far as they apply here: RandomResizedCrop (scale 0.08–1, ratio 3/4–4/3), colour
   * jitter 0.4 (brightness, contrast, saturation, as timm's `--color-jitter 0.4`), label smoothing 0.1, AdamW with
   * weight decay 0.05, cosine per step after a 1-epoch linear warmup (timm's 5 epochs would not fit short runs), and
   * layer decay 0.75 from a top rate of 0.001 scaled by the square root of the batch (timm's rule for adaptive
   * optimizers).
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
    groups: { strategy: 'layerDecay', lr: 0.001, decay: 0.75 },
    lr: { base: 0.001, baseBatch: 256, scaling: 'sqrt' },
    schedule: { type: 'cosine', per: 'step' },
    warmup: { type: 'linear', epochs: 1 },
  },
};

/**
 * `--lr` and `groups.top` name the top group's rate, which the layer-decay strategy calls `groups.lr`. Under a
 * recipe that chose layer decay, a job's `groups.top` (with no strategy of its own) is that same rate, not a
 * stepped-strategy field to merge into it.
 */
function topRateAlias(path: string, base: unknown, over: unknown): unknown {
  if (path !== 'groups' || !isPlainObject(base) || !isPlainObject(over)) return over;
  if (base.strategy !== 'layerDecay' || 'strategy' in over || !('top' in over)) return over;
  const { top, ...rest } = over;
  return { ...rest, lr: top };
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
