/**
 * RandomResizedCrop's cut and resize of a presized copy to the input square, on the host: PIL's BILINEAR resample
 * (which torchvision's RandomResizedCrop uses on images), a triangle filter whose support widens with the shrink
 * factor so a large crop shrunk to the input does not alias, and which interpolates between the two nearest pixels
 * when enlarging. Separable: each row of the window is resampled to `size` columns (kept in float32), then each
 * column to `size` rows, rounded half up to 8 bits. Single precision throughout, so the kernel can hold four
 * values a vector: a float32 sum of a few taps errs by about 1e-4 of a level, far below the final rounding. csrc/augment_kernels.c (crop_resize) computes what
 * cropResizeReference computes bit for bit; LAYERTUNE_AUG_KERNELS=js runs the loop instead.
 */
import { augmentKernels } from '../engine/wasm/augment';
import type { DecodedImage } from './decode';
import type { PixelRect } from './eval-crop';

/** One axis's filter: output i reads `count[i]` inputs from `start[i]` with weights w[i·taps …] (sum 1, as float32). */
export interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  taps: number;
  w: Float32Array;
}

const triangle = (x: number) => {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
};

/**
 * PIL's precompute_coeffs for the bilinear filter: output i is centred at (i + ½)·scale in the input, reads the
 * inputs within the support max(scale, 1) of it, weighted by the triangle at their centres' distance / max(scale, 1),
 * normalised to sum to 1 (in doubles, then rounded to float32).
 */
export function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const w = new Float32Array(outSize * taps);
  const row = new Float64Array(taps);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    start[i] = lo;
    count[i] = hi - lo;
    let sum = 0;
    for (let j = 0; j < hi - lo; j++) {
      row[j] = triangle((j + lo - centre + 0.5) / filterScale);
      sum += row[j];
    }
    for (let j = 0; j < hi - lo; j++) w[i * taps + j] = sum !== 0 ? row[j] / sum : row[j];
  }
  return { start, count, taps, w };
}

/** `rect` ([top, left, height, width]) of the copy, resized to size×size 8-bit RGB. */
export function cropResizeHost(copy: DecodedImage, rect: PixelRect, size: number): Uint8Array {
  const [top, left, height, width] = rect;
  if (!(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= copy.height && left + width <= copy.width))
    throw new Error(`cropResize: window ${rect.join(',')} outside a ${copy.width}×${copy.height} image`);
  const xw = axisWeights(width, size);
  const yw = axisWeights(height, size);
  const kernels = augmentKernels();
  if (kernels) return kernels.cropResize(copy, rect, size, xw, yw);
  return cropResizeReference(copy, rect, size, xw, yw);
}

/**
 * cropResizeHost as a JavaScript loop: the reference the kernel is tested against. Every product and sum is rounded
 * to float32 (Math.fround) as the kernel's single-precision operations are, taps accumulated in input order.
 */
export function cropResizeReference(copy: DecodedImage, rect: PixelRect, size: number, xw: AxisWeights, yw: AxisWeights): Uint8Array {
  const f = Math.fround;
  const [top, left, height] = rect;
  const src = copy.pixels;
  const rowStride = copy.width * 3;
  const tmp = new Float32Array(height * size * 3);
  for (let y = 0; y < height; y++) {
    const row = (top + y) * rowStride + left * 3;
    for (let x = 0; x < size; x++) {
      const s = row + xw.start[x] * 3;
      const wBase = x * xw.taps;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < xw.count[x]; j++) {
        const w = xw.w[wBase + j];
        r = f(r + f(src[s + 3 * j] * w));
        g = f(g + f(src[s + 3 * j + 1] * w));
        b = f(b + f(src[s + 3 * j + 2] * w));
      }
      const t = (y * size + x) * 3;
      tmp[t] = r;
      tmp[t + 1] = g;
      tmp[t + 2] = b;
    }
  }
  const out = new Uint8Array(size * size * 3);
  const line = size * 3;
  for (let y = 0; y < size; y++) {
    const s = yw.start[y] * line;
    const wBase = y * yw.taps;
    for (let i = 0; i < line; i++) {
      let acc = 0;
      for (let j = 0; j < yw.count[y]; j++) acc = f(acc + f(tmp[s + j * line + i] * yw.w[wBase + j]));
      out[y * line + i] = Math.min(255, Math.max(0, Math.floor(f(acc + 0.5))));
    }
  }
  return out;
}
