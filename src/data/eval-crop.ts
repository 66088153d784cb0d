/**
 * Where evaluation and presized training copies come from in an image: pure geometry, shared by the decoder
 * (src/data/decode.ts), `predict`/`evaluate`, validation during training and test-time augmentation, so each of
 * them cuts the same pixels. The recipe is timm's crop_pct (resize the short side to ⌊size / cropPct⌋, cut the centre),
 * with sharp's rounding: the long side and centre offsets are rounded (half up), where torchvision truncates the
 * long side and rounds offsets half to even, so the two can differ by a pixel. At cropPct 1 this is exactly the
 * centre crop `predict` has always given a plain ImageNet classifier (sharp's `fit: cover`).
 */
import type { EvalConfig } from './augment-schema';

/** How an image becomes the input square: `fill` squashes the whole photo, `center` is timm's crop_pct recipe. */
export interface EvalCrop {
  mode: EvalConfig['crop'];
  cropPct: number;
}

/** Pixel rectangle [top, left, height, width]. */
export type PixelRect = [number, number, number, number];

/**
 * A resize to `width`×`height` followed by cutting out `rect`. `cover`: the resize keeps the aspect and cuts the
 * centre width×height (sharp's `fit: cover`), so the photo's own dimensions are not needed.
 */
export interface CropPlan {
  width: number;
  height: number;
  rect: PixelRect;
  cover?: boolean;
}

/**
 * timm's scale size, ⌊size / cropPct⌋ (256 for 224 at 0.875). The nudge keeps a quotient that is an integer in
 * exact arithmetic (21 / 0.7) from flooring one below it through float rounding.
 */
export function scaleSize(size: number, cropPct: number): number {
  return Math.floor(size / cropPct + 1e-9);
}

/** The short side becomes `short`, the long side keeps the aspect, rounded (as sharp resizes). */
export function shortSideResize(width: number, height: number, short: number): { width: number; height: number } {
  if (width <= height) return { width: short, height: Math.round((height * short) / width) };
  return { width: Math.round((width * short) / height), height: short };
}

/** The centre size×size square of a width×height image, offsets rounded half up (sharp's `position: centre`). */
export function centerRect(width: number, height: number, size: number): PixelRect {
  return [Math.round((height - size) / 2), Math.round((width - size) / 2), size, size];
}

/**
 * The evaluation crop: `fill` resizes the whole photo to size×size; `center` resizes its short side to
 * ⌊size / cropPct⌋, cuts the centre square of that side, then the centre size×size of the square.
 */
export function evalCropPlan(size: number, crop: EvalCrop): CropPlan {
  if (crop.mode === 'fill') return { width: size, height: size, rect: [0, 0, size, size] };
  // the centre ⌊size / cropPct⌋ square of the short-side resize, then its centre size×size
  const s = scaleSize(size, crop.cropPct);
  return { width: s, height: s, cover: true, rect: centerRect(s, s, size) };
}

/**
 * The base image that five-crop test-time augmentation cuts from: what `center` would resize to, or for `fill`
 * the whole photo squashed to a ⌊size / cropPct⌋ square, so the five views zoom in by the same cropPct either way.
 */
export function fiveCropBase(width: number, height: number, size: number, crop: EvalCrop): { width: number; height: number } {
  const s = scaleSize(size, crop.cropPct);
  return crop.mode === 'fill' ? { width: s, height: s } : shortSideResize(width, height, s);
}

/** torchvision FiveCrop order: top-left, top-right, bottom-left, bottom-right, centre. */
export function fiveCropRects(width: number, height: number, size: number): PixelRect[] {
  return [
    [0, 0, size, size],
    [0, width - size, size, size],
    [height - size, 0, size, size],
    [height - size, width - size, size, size],
    centerRect(width, height, size),
  ];
}

/** The default presize: ⌈size × 1.15⌉, in integers so 20 × 1.15 is 23 and not 24 through float rounding. */
export function defaultPresize(size: number): number {
  return Math.ceil((size * 115) / 100);
}

/** A presized copy's dimensions: short side `short`, the long side rounded to keep the aspect (as the PyTorch peer). */
export function presizeDims(width: number, height: number, short: number): { width: number; height: number } {
  if (width <= height) return { width: short, height: Math.max(short, Math.round((height * short) / width)) };
  return { width: Math.max(short, Math.round((width * short) / height)), height: short };
}

/** Cuts `rect` out of an HWC RGB image `width` pixels wide into a new buffer. */
export function cutRect(px: Uint8Array, width: number, rect: PixelRect): Uint8Array {
  const [top, left, h, w] = rect;
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) out.set(px.subarray(((top + y) * width + left) * 3, ((top + y) * width + left + w) * 3), y * w * 3);
  return out;
}
