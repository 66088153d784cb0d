/**
 * Where evaluation and presized training copies come from in an image: pure geometry, shared by the decoder
 * (src/data/decode.ts), `predict`/`evaluate`, validation during training and test-time augmentation, so each of
 * them cuts the same pixels. The arithmetic follows torchvision (Resize with an int, CenterCrop, FiveCrop) and
 * timm's crop_pct, so a model evaluated here and in timm sees the same square.
 */
import type { EvalConfig } from './augment-schema';

/** How an image becomes the input square: `fill` squashes the whole photo, `center` is timm's crop_pct recipe. */
export interface EvalCrop {
  mode: EvalConfig['crop'];
  cropPct: number;
}

/** Pixel rectangle [top, left, height, width]. */
export type PixelRect = [number, number, number, number];

/** A resize to `width`×`height` followed by cutting out `rect`. */
export interface CropPlan {
  width: number;
  height: number;
  rect: PixelRect;
}

/** Python's round(): halves go to the even neighbour, so CenterCrop's offsets match torchvision's to the pixel. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * timm's scale size, ⌊size / cropPct⌋ (256 for 224 at 0.875). The nudge keeps a quotient that is an integer in
 * exact arithmetic (21 / 0.7) from flooring one below it through float rounding.
 */
export function scaleSize(size: number, cropPct: number): number {
  return Math.floor(size / cropPct + 1e-9);
}

/**
 * torchvision Resize(short): the short side becomes `short`, the long side ⌊long · short / shortSide⌋ (it
 * truncates, as torchvision's int() does).
 */
export function shortSideResize(width: number, height: number, short: number): { width: number; height: number } {
  if (width <= height) return { width: short, height: Math.floor((height * short) / width) };
  return { width: Math.floor((width * short) / height), height: short };
}

/** torchvision CenterCrop offsets of a size×size square in a width×height image. */
export function centerRect(width: number, height: number, size: number): PixelRect {
  return [roundHalfEven((height - size) / 2), roundHalfEven((width - size) / 2), size, size];
}

/**
 * The evaluation crop of a width×height photo (after EXIF orientation): `fill` resizes it to size×size whole;
 * `center` resizes its short side to ⌊size / cropPct⌋ and cuts the centre size×size square.
 */
export function evalCropPlan(width: number, height: number, size: number, crop: EvalCrop): CropPlan {
  if (crop.mode === 'fill') return { width: size, height: size, rect: [0, 0, size, size] };
  const r = shortSideResize(width, height, scaleSize(size, crop.cropPct));
  return { ...r, rect: centerRect(r.width, r.height, size) };
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
