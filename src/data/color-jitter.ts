/**
 * Colour jitter and random grayscale as one linear map per image. Brightness, contrast, saturation and grayscale
 * are each linear in the pixels, and luma is linear too, so the four compose into
 *   out = clip(a·x + b·luma(x) + c·mean(luma(x)), 0, 255)
 * with per-image (a, b, c): one pass over the pixels instead of four. torchvision clips to [0, 255] after each step
 * and shuffles their order per image; this clips once, at the end, in the order brightness, contrast, saturation,
 * grayscale. The pass runs on the host, in csrc/augment_kernels.c (jitter_u8 / jitter_f32), which computes what
 * jitterReference computes bit for bit; LAYERTUNE_AUG_KERNELS=js runs the loop instead.
 */
import { augmentKernels } from '../engine/wasm/augment';
import type { Preprocess } from '../models/types';

/** ITU-R 601-2 luma (torchvision's rgb_to_grayscale for PIL images); the weights sum to 1, so a grey image is its own luma. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** One image's colour draws, as ImageDraw holds them. */
export interface ColorDraw {
  brightness: number;
  contrast: number;
  saturation: number;
  gray: boolean;
  /** A hue shift is not linear: an image with one is made grey after the shift, not here. */
  hue?: number;
}

/**
 * The (a, b, c) of one image. Brightness b scales, contrast c blends with the mean luma, saturation s with the
 * pixel's own luma: b·(c·(s·x + (1 − s)·L) + (1 − c)·m). A grayscale image is the luma of that, whose luma is
 * (a + b)·L + c·m, as the weights sum to 1.
 */
export function jitterCoefficients(d: ColorDraw): [number, number, number] {
  const { brightness: b, contrast: c, saturation: s } = d;
  const A = s * c * b;
  const B = (1 - s) * c * b;
  const C = (1 - c) * b;
  return d.gray && !((d.hue ?? 0) !== 0) ? [0, A + B, C] : [A, B, C];
}

/** Whether any image's colour changes at all (a hue shift counts: it runs after this map). */
export function jitters(rows: ColorDraw[]): boolean {
  return rows.some((r) => r.brightness !== 1 || r.contrast !== 1 || r.saturation !== 1 || r.gray || (r.hue ?? 0) !== 0);
}

/** A per-channel v·mul + add applied after the clip: the backbone's normalisation, folded into the same pass. */
export interface ChannelMap {
  mul: [number, number, number];
  add: [number, number, number];
}

/** The map that leaves values as they are: v·1 + 0 is v exactly. */
export const KEEP_VALUES: ChannelMap = { mul: [1, 1, 1], add: [0, 0, 0] };

/**
 * preprocessTensor's map as v·mul + add: `scale` is v·(high − low)/255 + low, `normalize` (v/255 − mean)/std is
 * v·1/(255·std) − mean/std. It rounds once where preprocessTensor's float32 ops round at each step.
 */
export function preprocessMap(p: Preprocess): ChannelMap {
  if (p.kind === 'scale') {
    const k = (p.high - p.low) / 255;
    return { mul: [k, k, k], add: [p.low, p.low, p.low] };
  }
  const [m, s] = [p.mean, p.std];
  return { mul: [1 / (255 * s[0]), 1 / (255 * s[1]), 1 / (255 * s[2])], add: [-m[0] / s[0], -m[1] / s[1], -m[2] / s[2]] };
}

/**
 * src (images of `per` RGB pixels, 8-bit or float in [0, 255]) through each image's map and then `post`, as a new
 * float array.
 */
export function jitterHost(src: Uint8Array | Float32Array, coef: Array<[number, number, number]>, per: number, post: ChannelMap = KEEP_VALUES): Float32Array {
  if (src.length < coef.length * per * 3) throw new Error(`jitterHost: ${src.length} values for ${coef.length} images of ${per} pixels`);
  const kernels = augmentKernels();
  if (kernels) return kernels.jitter(src, coef, per, post);
  return jitterReference(src, coef, per, post);
}

const luma = (r: number, g: number, b: number) => LUMA[0] * r + LUMA[1] * g + LUMA[2] * b;
const clip255 = (v: number) => Math.min(255, Math.max(0, v));

/**
 * jitterHost as a JavaScript loop: the reference the kernel is tested against. All arithmetic is in doubles in this
 * order, rounded to float32 once by the store; the mean luma is the luma of the channel sums over the pixel count,
 * taken only where c is not 0.
 */
export function jitterReference(src: ArrayLike<number>, coef: Array<[number, number, number]>, per: number, post: ChannelMap = KEEP_VALUES): Float32Array {
  const { mul, add } = post;
  const out = new Float32Array(coef.length * per * 3);
  for (let k = 0; k < coef.length; k++) {
    const [a, b, c] = coef[k];
    const base = k * per * 3;
    let cm = 0;
    if (c !== 0) {
      // the mean luma as the luma of the channel means: three sums, exact for 8-bit pixels whatever their order
      let sr = 0;
      let sg = 0;
      let sb = 0;
      for (let p = 0; p < per; p++) {
        const i = base + 3 * p;
        sr += src[i];
        sg += src[i + 1];
        sb += src[i + 2];
      }
      cm = c * (luma(sr, sg, sb) / per);
    }
    for (let p = 0; p < per; p++) {
      const i = base + 3 * p;
      const r = src[i];
      const g = src[i + 1];
      const bl = src[i + 2];
      const lb = luma(r, g, bl) * b;
      out[i] = clip255(r * a + lb + cm) * mul[0] + add[0];
      out[i + 1] = clip255(g * a + lb + cm) * mul[1] + add[1];
      out[i + 2] = clip255(bl * a + lb + cm) * mul[2] + add[2];
    }
  }
  return out;
}
