/**
 * Test-time augmentation for `predict` and `evaluate`: each image becomes a few views, the model scores every view,
 * and the image's probabilities are the mean of its views' softmax outputs.
 *
 * - `flip`: the image and its mirror (what fastai's and timm's flip TTA average).
 * - `crops`: torchvision's FiveCrop (four corners and the centre) of the image resized as the `center` evaluation
 *   crop resizes it, short side ⌊size / cropPct⌋; for `fill` the whole photo squashed to that square. Five fixed
 *   crops rather than fastai's random training augmentations: they need no RNG (the same file always scores the
 *   same), they are the standard multi-crop ImageNet protocol, and under `center` the fifth view is exactly the
 *   single-crop input, so the corners only add evidence from the border the centre crop drops.
 */
import { decodeImage, decodePlanned, flipHorizontal } from './decode';
import { cutRect, type EvalCrop, fiveCropBase, fiveCropRects } from './eval-crop';

export const TTA_MODES = ['none', 'flip', 'crops'] as const;
export type Tta = (typeof TTA_MODES)[number];

/** How many views each mode scores per image. */
export function viewCount(tta: Tta): number {
  return tta === 'none' ? 1 : tta === 'flip' ? 2 : 5;
}

/** The size×size HWC views of one file, in a fixed order (the image first for `flip`, FiveCrop's order for `crops`). */
export async function ttaViews(file: string, size: number, crop: EvalCrop, tta: Tta): Promise<Uint8Array[]> {
  if (tta === 'crops') {
    const base = await decodePlanned(file, undefined, (w, h) => {
      const b = fiveCropBase(w, h, size, crop);
      return { ...b, rect: [0, 0, b.height, b.width] };
    });
    return fiveCropRects(base.width, base.height, size).map((r) => cutRect(base.pixels, base.width, r));
  }
  const px = await decodeImage(file, { size, crop: crop.mode, cropPct: crop.cropPct });
  return tta === 'flip' ? [px, flipHorizontal(px, size)] : [px];
}

/**
 * Row `image` of the mean over views: `probs` holds `views` consecutive rows of `k` probabilities per image.
 * The mean of softmax outputs (not of logits), as fastai's and timm's TTA average.
 */
export function meanOverViews(probs: Float32Array, image: number, views: number, k: number): Float32Array {
  const out = new Float32Array(k);
  for (let v = 0; v < views; v++) {
    const row = (image * views + v) * k;
    for (let j = 0; j < k; j++) out[j] += probs[row + j];
  }
  for (let j = 0; j < k; j++) out[j] /= views;
  return out;
}
