/**
 * Colour and pixel operations on batches [n, H, W, 3] of pixel values in [0, 255], each with its own parameter per
 * image, following torchvision.transforms.functional on tensors (the reference the tests pin them to): adjust_hue,
 * and the pixel ops of RandAugment and TrivialAugmentWide (brightness, color, contrast, sharpness, solarize,
 * autocontrast, posterize, equalize). Results are clipped to [0, 255] as torchvision clips to its bound.
 */
import * as tf from '@tensorflow/tfjs';

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

/** torchvision _rgb2hsv on values in [0, 1]: h in [0, 1) turns, s, v = max channel. */
export function rgbToHsv(x: T4): [T4, T4, T4] {
  return tf.tidy(() => {
    const [r, g, b] = tf.split(x, 3, 3);
    const maxc = tf.max(x, 3, true);
    const minc = tf.min(x, 3, true);
    const eqc = tf.equal(maxc, minc);
    const cr = tf.sub(maxc, minc);
    const ones = tf.onesLike(maxc);
    const s = tf.div(cr, tf.where(eqc, ones, maxc));
    const crd = tf.where(eqc, ones, cr);
    const rc = tf.div(tf.sub(maxc, r), crd);
    const gc = tf.div(tf.sub(maxc, g), crd);
    const bc = tf.div(tf.sub(maxc, b), crd);
    const isR = tf.equal(maxc, r);
    const isG = tf.logicalAnd(tf.equal(maxc, g), tf.logicalNot(isR));
    const isB = tf.logicalAnd(tf.notEqual(maxc, g), tf.logicalNot(isR));
    const hr = tf.mul(tf.cast(isR, 'float32'), tf.sub(bc, gc));
    const hg = tf.mul(tf.cast(isG, 'float32'), tf.add(2, tf.sub(rc, bc)));
    const hb = tf.mul(tf.cast(isB, 'float32'), tf.add(4, tf.sub(gc, rc)));
    const h = tf.mod(tf.add(tf.div(tf.add(tf.add(hr, hg), hb), 6), 1), 1);
    return [h as T4, s as T4, maxc as T4];
  });
}

/** torchvision _hsv2rgb: the six sextants selected by masks (exactly one is 1 per pixel), values in [0, 1]. */
export function hsvToRgb(h: T4, s: T4, v: T4): T4 {
  return tf.tidy(() => {
    const h6 = tf.mul(h, 6);
    const i0 = tf.floor(h6);
    const f = tf.sub(h6, i0);
    const i = tf.mod(i0, 6);
    const clip = (t: tf.Tensor) => tf.clipByValue(t, 0, 1);
    const p = clip(tf.mul(v, tf.sub(1, s)));
    const q = clip(tf.mul(v, tf.sub(1, tf.mul(s, f))));
    const t = clip(tf.mul(v, tf.sub(1, tf.mul(s, tf.sub(1, f)))));
    const masks = [0, 1, 2, 3, 4, 5].map((k) => tf.cast(tf.equal(i, k), 'float32'));
    const pick = (vals: tf.Tensor[]) => vals.reduce((acc: tf.Tensor, val, k) => tf.add(acc, tf.mul(masks[k], val)), tf.zerosLike(v));
    return tf.concat([pick([v, q, p, p, t, v]), pick([t, v, v, q, p, p]), pick([p, p, t, v, v, q])], 3) as T4;
  });
}

/** torchvision adjust_hue: shift each image's hue by its factor in [−0.5, 0.5] turns (in HSV, then back). */
export function adjustHue(x: T4, hue: number[]): T4 {
  return tf.tidy(() => {
    const [h, s, v] = rgbToHsv(tf.div(x, 255) as T4);
    return tf.mul(hsvToRgb(tf.mod(tf.add(h, perImage(hue)), 1) as T4, s, v), 255) as T4;
  });
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

/** solarize: every value at or above the image's threshold inverted. */
export function solarize(x: T4, threshold: number[]): T4 {
  return tf.tidy(() => tf.where(tf.greaterEqual(x, perImage(threshold)), tf.sub(255, x), x) as T4);
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
 * (pixels − count of the top value) ÷ 255, and a lookup table from the cumulative histogram; step 0 leaves the
 * channel. Integer arithmetic throughout (int32), as torchvision's.
 */
export function equalize(x: T4): T4 {
  return tf.tidy(() => {
    const [n, H, W, C] = x.shape;
    const rows = n * C;
    const px = H * W;
    const v = tf
      .cast(tf.clipByValue(tf.floor(x), 0, 255), 'int32')
      .transpose([0, 3, 1, 2])
      .reshape([rows, px]) as tf.Tensor2D;
    const hist = tf.denseBincount(v, tf.tensor2d([], [0, 0], 'int32'), 256) as tf.Tensor2D;
    const top = tf.sum(tf.cast(tf.equal(v, tf.max(v, 1, true)), 'int32'), 1, true);
    const step = tf.floorDiv(tf.sub(tf.scalar(px, 'int32'), top), tf.scalar(255, 'int32'));
    const safe = tf.maximum(step, tf.scalar(1, 'int32'));
    const cum = tf.cumsum(hist, 1);
    const lut0 = tf.floorDiv(tf.add(cum, tf.floorDiv(step, tf.scalar(2, 'int32'))), safe);
    // shift right by one bin: value k maps through the cumulative count below it
    const lut = tf.minimum(tf.concat([tf.zeros([rows, 1], 'int32'), lut0.slice([0, 0], [rows, 255])], 1), tf.scalar(255, 'int32'));
    const mapped = tf.gather(lut, v, 1, 1);
    const out = tf.where(tf.equal(step, tf.scalar(0, 'int32')), v, mapped);
    return tf.cast(out, 'float32').reshape([n, C, H, W]).transpose([0, 2, 3, 1]) as T4;
  });
}
