/**
 * The default augmentation, chosen by how many training images each class has. When a job configures no pixel
 * transform of its own (in `data.augment` or through a recipe), the measured rule decides between flips only and
 * RandomResizedCrop (scale 0.35–1) with colour jitter 0.2 on top of the flips.
 *
 * The measurement (scripts/recipe-campaign.ts, README "Choosing the defaults"): flowers5, MobileNet v1 0.25 at 224,
 * the classic recipe, seeds 1–3, read at 8, 16 and 32 epochs. With 10 and 20 training images per class the
 * augmented runs were ahead at every epoch count; with 30 and 48 the difference stayed inside the spread between
 * seeds, and at 48 it was negative at 8 and 16 epochs. A check on the packaged 120-photo sample (19 per class,
 * seeds 1–3) went the other way at 8 epochs (−0.053) and not at 16 (+0.027), so 8-epoch runs keep flips only.
 */
import type { AugmentConfig } from './augment-schema';
import { augmentsPixels } from './augment';

/** The largest measured images-per-class count at which the augmented runs were ahead at every epoch count. */
export const AUGMENT_MAX_IMAGES_PER_CLASS = 20;
/** The shortest measured run at which the gain held on both folders. */
export const AUGMENT_MIN_EPOCHS = 16;

/** The transforms the rule adds, the "classic + strong" runs of the measurement. */
export const MEASURED_AUGMENT = {
  randomResizedCrop: { scale: [0.35, 1] as [number, number], ratio: [3 / 4, 4 / 3] as [number, number] },
  colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0 },
};

export interface AugmentChoice {
  augment: AugmentConfig;
  /** Which rule applied, for `plan` and the run log. */
  why: string;
}

/**
 * The training transforms a job runs with. `imagesPerClass` is the training set's mean per class (train images /
 * classes). Pure: the job's own config is returned unchanged unless the rule adds to it.
 */
export function chooseAugment(a: AugmentConfig, flip: boolean, imagesPerClass: number, epochs: number): AugmentChoice {
  if (augmentsPixels(a)) return { augment: a, why: 'as configured' };
  if (!a.auto) return { augment: a, why: 'data.augment.auto is off: only what is configured' };
  if (!flip) return { augment: a, why: 'data.flip is off and no transform is configured: none' };
  const n = Number(imagesPerClass.toFixed(1));
  if (imagesPerClass > AUGMENT_MAX_IMAGES_PER_CLASS) {
    return {
      augment: a,
      why:
        `default rule: ${n} training images per class > ${AUGMENT_MAX_IMAGES_PER_CLASS}, so flips only: more augmentation ` +
        'measured no better at 30 and 48 per class; configure data.augment to choose yourself',
    };
  }
  if (epochs < AUGMENT_MIN_EPOCHS) {
    return {
      augment: a,
      why:
        `default rule: ${epochs} epochs < ${AUGMENT_MIN_EPOCHS}, so flips only: at 8 epochs the measured gain on small folders ` +
        'was not consistent; configure data.augment to choose yourself',
    };
  }
  return {
    augment: { ...a, ...MEASURED_AUGMENT },
    why:
      `default rule: ${n} training images per class ≤ ${AUGMENT_MAX_IMAGES_PER_CLASS} and ${epochs} epochs ≥ ${AUGMENT_MIN_EPOCHS}, ` +
      'so RandomResizedCrop 0.35–1 and colour jitter 0.2 are added, measured to pay there; data.augment.auto: false keeps flips only',
  };
}
