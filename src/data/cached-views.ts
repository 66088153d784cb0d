/**
 * What a frozen prefix's outputs do under augmentation (issue 15): cached once per image when training images are
 * not augmented; with `data.augment.cachedViews: K`, cached for K augmented views of each image; otherwise
 * recomputed on every batch's fresh view.
 *
 * View k of an image is drawn from an RNG of its own, seeded from (run seed, example key, k), not from the run's
 * data-order RNG: the same view comes back every K epochs without storing its draws, a resumed run draws it again
 * from the seed alone, and which views exist does not depend on the order the images came in.
 */
import { augmentsPixels } from './augment';
import type { AugmentConfig } from './augment-schema';
import { Rng } from './rng';

export type PrefixCacheMode = { kind: 'once' } | { kind: 'views'; views: number } | { kind: 'recompute'; why: 'views-off' | 'mix' | 'noise' };

/** Which of the three applies to `a`; pure, so `plan`, the run log and the trainer agree. */
export function prefixCacheMode(a: AugmentConfig): PrefixCacheMode {
  if (!augmentsPixels(a)) return { kind: 'once' };
  if (a.cachedViews === 0) return { kind: 'recompute', why: 'views-off' };
  // MixUp/CutMix blend two images before the prefix: the prefix of a blend is not the blend of two cached prefixes
  if (a.mix) return { kind: 'recompute', why: 'mix' };
  // noise erasing is seeded per batch, so a view's pixels would depend on which batch computed it
  if (a.randomErasing?.value === 'random') return { kind: 'recompute', why: 'noise' };
  return { kind: 'views', views: a.cachedViews };
}

/** K when cached views apply, else 0. */
export function cachedViewsOf(a: AugmentConfig): number {
  const m = prefixCacheMode(a);
  return m.kind === 'views' ? m.views : 0;
}

/** The view epoch `epoch` (from 0) trains on: each view in turn, so every view is used equally often. */
export function viewOfEpoch(epoch: number, views: number): number {
  return epoch % views;
}

/** 32-bit FNV-1a: the key's bytes folded into the view's seed. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The RNG that draws view `view` of the example `key` in a run seeded `seed`: its flip, crop, colour and the rest. */
export function viewRng(seed: number, key: string, view: number): Rng {
  return new Rng(fnv1a(`${seed >>> 0}\u0000${view}\u0000${key}`));
}

/** The cache key of one view of one example (a flip is part of the view's draws). */
export function viewKey(key: string, view: number): string {
  return `${key}#view${view}`;
}

/** What the cache will hold, to say when it does not fit in memory. */
export interface CacheSize {
  /** Bytes of one cached prefix output. */
  entryBytes: number;
  trainImages: number;
  valImages: number;
  /** train.featureCacheMB. */
  budgetMB: number;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MB`;

/**
 * The measured trade-off, one clause: scripts/measure-prefix-cache.ts on flowers5 (MobileNet v1 0.25 at 224, conv1
 * and blocks 1-11 frozen, RandomResizedCrop 0.35-1 + colour jitter 0.2, seeds 1-3; README "Augmentation, label
 * smoothing and recipes").
 */
export const MEASURED = 'measured on flowers5 at 16 epochs: K 4 matched recomputing (val 0.867 ± 0.033 both) in 74 s against 160 s';

/** What happens to a frozen prefix's outputs, and why, for `plan` and the run log. */
export function frozenPrefixRule(a: AugmentConfig, size?: CacheSize): string {
  const m = prefixCacheMode(a);
  if (m.kind === 'once') return `outputs computed once per image and cached${size ? fitClause(1, size) : ''}`;
  if (m.kind === 'recompute') {
    const why = {
      'views-off': 'training images are augmented and data.augment.cachedViews is 0, so each view is seen once',
      mix: 'MixUp/CutMix blend images before the prefix, so a cached view cannot stand for its blend (cachedViews ignored)',
      noise: 'random erasing with value random draws its noise per batch (cachedViews ignored)',
    }[m.why];
    return `outputs recomputed every batch, not cached: ${why}; ${MEASURED}`;
  }
  return (
    `outputs cached for ${m.views} augmented view(s) per image (data.augment.cachedViews), epoch e training on view e mod ${m.views}; ` +
    `${MEASURED}${size ? fitClause(m.views, size) : ''}`
  );
}

/** Empty when the cache fits in train.featureCacheMB, else where the rest goes. */
function fitClause(views: number, s: CacheSize): string {
  const total = s.entryBytes * (views * s.trainImages + s.valImages);
  if (total <= s.budgetMB * 2 ** 20) return '';
  return `; it needs ${mb(total)} ((${views} × ${s.trainImages} train + ${s.valImages} val) × ${mb(s.entryBytes)}), over train.featureCacheMB ${s.budgetMB}: the rest spills to <out>/feature-cache and is read back from disk`;
}
