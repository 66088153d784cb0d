/**
 * Colour and pixel operations on batches [n, H, W, 3] of pixel values in [0, 255], each with its own parameter per
 * image, following torchvision.transforms.functional on tensors (the reference the tests pin them to): adjust_hue,
 * and the pixel ops of RandAugment and TrivialAugmentWide (brightness, color, contrast, sharpness, solarize,
 * autocontrast, posterize, equalize). Results are clipped to [0, 255] as torchvision clips to its bound.
 */
import * as tf from '@tensorflow/tfjs';
import { augmentKernels } from '../engine/wasm/augment';

type T4 = tf.Tensor4D;

/** One value per image, shaped to broadcast over [n, H, W, C]. */
const perImage = (v: number[]) => tf.tensor4d(v, [v.length, 1, 1, 1]);

/** torchvision's rgb_to_grayscale weights for tensors (0.2989, where PIL and our colour jitter use 0.299). */
const TV_LUMA = [0.2989, 0.587, 0.114];

/** [n, H, W, 1] luma with torchvision's tensor weights. */
export function tvGray(x: T4): T4 {
  return tf.tidy(() => {
    const [r, g, b] = tf.split(x, 3, 3);
    return tf.add(tf.add(tf.mul(r, TV_LUMA[0]), tf.mul(g, TV_LUMA[1])), tf.mul(b, TV_LUMA[2])) as T4;
  });
}

/** torchvision's _blend: f·x + (1 − f)·y, clipped to [0, 255]. */
function blend(x: tf.Tensor, y: tf.Tensor, f: number[]): T4 {
  return tf.tidy(() => {
    const k = perImage(f);
    return tf.clipByValue(tf.add(tf.mul(x, k), tf.mul(y, tf.sub(1, k))), 0, 255) as T4;
  });
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/**
 * One pixel through torchvision's _rgb2hsv, a hue shift of `shift` turns, and _hsv2rgb, in place at `i` of `px`
 * (values in [0, 255]).
 */
function shiftHuePixel(px: Float32Array, i: number, shift: number): void {
  const r = px[i] / 255;
  const g = px[i + 1] / 255;
  const b = px[i + 2] / 255;
  const maxc = Math.max(r, g, b);
  const minc = Math.min(r, g, b);
  const eqc = maxc === minc;
  const cr = maxc - minc;
  const s = cr / (eqc ? 1 : maxc);
  const crd = eqc ? 1 : cr;
  const rc = (maxc - r) / crd;
  const gc = (maxc - g) / crd;
  const bc = (maxc - b) / crd;
  let h = maxc === r ? bc - gc : maxc === g ? 2 + rc - bc : 4 + gc - rc;
  h = (h / 6 + 1) % 1;
  // Python's % (floor modulo): a negative shift wraps to the top of the circle
  h = (((h + shift) % 1) + 1) % 1;
  const v = maxc;
  const h6 = h * 6;
  const i0 = Math.floor(h6);
  const f = h6 - i0;
  const p = clamp01(v * (1 - s));
  const q = clamp01(v * (1 - s * f));
  const t = clamp01(v * (1 - s * (1 - f)));
  // the six sextants of torchvision's _hsv2rgb (a switch: a table per pixel would allocate 800k arrays a batch)
  let R = v;
  let G = p;
  let B = q;
  switch (((i0 % 6) + 6) % 6) {
    case 0:
      [R, G, B] = [v, t, p];
      break;
    case 1:
      [R, G, B] = [q, v, p];
      break;
    case 2:
      [R, G, B] = [p, v, t];
      break;
    case 3:
      [R, G, B] = [p, q, v];
      break;
    case 4:
      [R, G, B] = [t, p, v];
      break;
  }
  px[i] = R * 255;
  px[i + 1] = G * 255;
  px[i + 2] = B * 255;
}

/**
 * torchvision adjust_hue: each image's hue shifted by its factor in [−0.5, 0.5] turns, through HSV and back; an
 * image with factor 0 is copied unchanged. On the host: the HSV round trip as tensor ops is some forty elementwise
 * passes (and tf.mod is slow on wasm), seconds per batch. csrc/augment_kernels.c runs the pixel loop, with
 * shiftHueReference's values exactly; LAYERTUNE_AUG_KERNELS=js runs that loop instead.
 */
export function adjustHue(x: T4, hue: number[]): T4 {
  const [n, H, W] = x.shape;
  if (hue.length !== n) throw new Error(`adjustHue: ${hue.length} factors for ${n} images`);
  const kernels = augmentKernels();
  const src = x.dataSync() as Float32Array;
  if (kernels) return tf.tensor4d(kernels.hueShift(src, hue, H * W), x.shape);
  // dataSync may hand out the backend's own array (cpu), so the loop shifts a copy
  const px = Float32Array.from(src);
  shiftHueReference(px, hue, H * W);
  return tf.tensor4d(px, x.shape);
}

/** The hue shift of adjustHue as a JavaScript loop over `px` (images of `per` RGB pixels), in place: the reference. */
export function shiftHueReference(px: Float32Array, hue: number[], per: number): void {
  for (let k = 0; k < hue.length; k++) {
    if (hue[k] === 0) continue;
    for (let p = 0; p < per; p++) shiftHuePixel(px, (k * per + p) * 3, hue[k]);
  }
}

/** adjust_brightness: blend with black. */
export function brightness(x: T4, f: number[]): T4 {
  return tf.tidy(() => blend(x, tf.zerosLike(x), f));
}

/** adjust_saturation (RandAugment's Color): blend with the image's own grey. */
export function saturation(x: T4, f: number[]): T4 {
  return tf.tidy(() => blend(x, tvGray(x), f));
}

/** adjust_contrast: blend with the mean grey of the whole image. */
export function contrast(x: T4, f: number[]): T4 {
  return tf.tidy(() => blend(x, tf.mean(tvGray(x), [1, 2, 3], true), f));
}

/**
 * adjust_sharpness: blend with a blur by the 3×3 kernel [1 1 1; 1 5 1; 1 1 1]/13 that keeps the border pixels, so
 * a factor above 1 sharpens.
 */
export function sharpness(x: T4, f: number[]): T4 {
  return tf.tidy(() => {
    const [n, H, W] = x.shape;
    if (H < 3 || W < 3) return x.clone();
    const k = tf
      .tensor4d(
        [1, 1, 1, 1, 5, 1, 1, 1, 1].map((v) => v / 13),
        [3, 3, 1, 1],
      )
      .tile([1, 1, 3, 1]) as tf.Tensor4D;
    const blur = tf.depthwiseConv2d(x, k, 1, 'valid');
    const inner = tf.pad(tf.ones([n, H - 2, W - 2, 1]), [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const padded = tf.pad(blur, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const degenerate = tf.add(tf.mul(padded, inner), tf.mul(x, tf.sub(1, inner)));
    return blend(x, degenerate, f);
  });
}

/** solarize: every value at or above the image's threshold inverted (a host loop: tf.where is slow on wasm). */
export function solarize(x: T4, threshold: number[]): T4 {
  const px = Float32Array.from(x.dataSync());
  const per = px.length / threshold.length;
  for (let i = 0; i < px.length; i++) if (px[i] >= threshold[Math.floor(i / per)]) px[i] = 255 - px[i];
  return tf.tensor4d(px, x.shape);
}

/** autocontrast: each channel stretched from its [min, max] to [0, 255]; a flat channel is left as it is. */
export function autocontrast(x: T4): T4 {
  return tf.tidy(() => {
    const lo = tf.min(x, [1, 2], true);
    const hi = tf.max(x, [1, 2], true);
    const flat = tf.equal(lo, hi);
    const scale = tf.where(flat, tf.onesLike(lo), tf.div(255, tf.sub(hi, lo)));
    const min = tf.where(flat, tf.zerosLike(lo), lo);
    return tf.clipByValue(tf.mul(tf.sub(x, min), scale), 0, 255) as T4;
  });
}

/** posterize: keep the top `bits` bits of each (truncated to 8-bit) value. */
export function posterize(x: T4, bits: number[]): T4 {
  return tf.tidy(() => {
    const q = perImage(bits.map((b) => 2 ** (8 - b)));
    return tf.mul(tf.floor(tf.div(tf.floor(x), q)), q) as T4;
  });
}

/**
 * equalize, torchvision's _scale_channel per image and channel on the 8-bit values: a histogram, a step of
 * (pixels − count of the top value) ÷ 255 (floored), and a lookup table from the cumulative histogram; step 0 leaves
 * the channel. Integer arithmetic on the host, as torchvision's (a tfjs gather per pixel takes a second a batch).
 */
export function equalize(x: T4): T4 {
  const [n, H, W, C] = x.shape;
  const src = x.dataSync();
  const out = new Float32Array(src.length);
  const px = H * W;
  const hist = new Int32Array(256);
  const lut = new Int32Array(256);
  for (let k = 0; k < n; k++) {
    for (let c = 0; c < C; c++) {
      hist.fill(0);
      const at = (p: number) => (k * px + p) * C + c;
      const level = (p: number) => Math.min(255, Math.max(0, Math.floor(src[at(p)])));
      for (let p = 0; p < px; p++) hist[level(p)]++;
      let top = 255;
      while (top > 0 && hist[top] === 0) top--;
      const step = Math.floor((px - hist[top]) / 255);
      if (step === 0) {
        for (let p = 0; p < px; p++) out[at(p)] = level(p);
        continue;
      }
      // value v maps through the cumulative count below it: lut = pad(cumsum + step // 2) // step, shifted by one
      let cum = 0;
      for (let v = 0; v < 256; v++) {
        lut[v] = Math.min(255, Math.floor((cum + Math.floor(step / 2)) / step));
        cum += hist[v];
      }
      for (let p = 0; p < px; p++) out[at(p)] = lut[level(p)];
    }
  }
  return tf.tensor4d(out, x.shape);
}
