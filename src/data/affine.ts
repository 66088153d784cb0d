/**
 * Affine resampling of a batch: each output pixel is mapped back to a point of its source image (inverse mapping)
 * and read there by bilinear interpolation, once. A crop, a flip, a rotation, a zoom, a shift and a shear all
 * compose into one 2×3 matrix, so an image is interpolated once however many geometric transforms it gets.
 *
 * Coordinates are pixel indices: (0, 0) is the centre of the top-left pixel, (size − 1, size − 1) the centre of the
 * bottom-right one. The resample runs on the host, the same on every backend: in csrc/augment_kernels.c (resampleHost),
 * which computes what the JavaScript loop kept here as the reference (resampleReference) does, bit for bit; the loop
 * runs instead under LAYERTUNE_AUG_KERNELS=js. tf.image.transform is not
 * used: its CPU kernel returns after the first image of a batch (tfjs 4.22), and its 'reflect' repeats the edge pixel
 * where fastai's reflection padding does not.
 */
import * as tf from '@tensorflow/tfjs';
import { augmentKernels } from '../engine/wasm/augment';
import type { AffineConfig } from './augment-schema';
import { uniform } from './distributions';
import type { Rng } from './rng';

/** (u, v) = (m0·x + m1·y + m2, m3·x + m4·y + m5): where output pixel (x, y) reads its source. */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY_AFFINE: Affine = [1, 0, 0, 0, 1, 0];

/** How a sample outside the source is read: mirrored back inside, or a constant per channel. */
export type Padding = { kind: 'reflect' } | { kind: 'constant'; fill: number[] };

/** torchvision RandomAffine's parameters of one image: angle (degrees, clockwise), shift (pixels), zoom, shear (degrees). */
export interface AffineParams {
  angle: number;
  translate: [number, number];
  scale: number;
  shear: [number, number];
}

/** p ∘ q: the map that applies q first, then p (as 3×3 matrices with a last row 0 0 1, P·Q). */
export function composeAffine(p: Affine, q: Affine): Affine {
  return [
    p[0] * q[0] + p[1] * q[3],
    p[0] * q[1] + p[1] * q[4],
    p[0] * q[2] + p[1] * q[5] + p[2],
    p[3] * q[0] + p[4] * q[3],
    p[3] * q[1] + p[4] * q[4],
    p[3] * q[2] + p[4] * q[5] + p[5],
  ];
}

/**
 * torchvision's _get_inverse_affine_matrix: the output→input map of rotating by `angle` degrees (clockwise on
 * screen), scaling by `scale`, shearing by `shear` degrees (x, y) about `center`, then shifting by `translate`.
 */
export function inverseAffine(center: [number, number], p: AffineParams): Affine {
  const rot = (p.angle * Math.PI) / 180;
  const sx = (p.shear[0] * Math.PI) / 180;
  const sy = (p.shear[1] * Math.PI) / 180;
  const [cx, cy] = center;
  const [tx, ty] = p.translate;
  const a = Math.cos(rot - sy) / Math.cos(sy);
  const b = (-Math.cos(rot - sy) * Math.tan(sx)) / Math.cos(sy) - Math.sin(rot);
  const c = Math.sin(rot - sy) / Math.cos(sy);
  const d = (-Math.sin(rot - sy) * Math.tan(sx)) / Math.cos(sy) + Math.cos(rot);
  // the rotation-shear block has determinant 1, so its inverse is the adjugate
  const m: Affine = [d / p.scale, -b / p.scale, 0, -c / p.scale, a / p.scale, 0];
  m[2] = m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx;
  m[5] = m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy;
  return m;
}

/**
 * The map tf.image.cropAndResize samples for a normalised box [y1, x1, y2, x2] of a size×size image resized to
 * size×size (corners aligned), so a crop and flip drawn as a box compose with an affine into one resample.
 */
export function boxAffine(box: [number, number, number, number], size: number): Affine {
  const [y1, x1, y2, x2] = box;
  const d = size - 1;
  return [x2 - x1, 0, x1 * d, 0, y2 - y1, y1 * d];
}

/** The centre of a size×size image in pixel-index coordinates: rotations and zooms turn about it. */
export const centreOf = (size: number): [number, number] => [(size - 1) / 2, (size - 1) / 2];

/**
 * torchvision RandomAffine.get_params, after one draw for `p`: angle uniform in [−degrees, degrees], shift a
 * uniform fraction of the size in [−translate, translate] rounded to whole pixels, zoom uniform in `scale`,
 * shear uniform in [−shear, shear] degrees along x. Null when the p draw says no affine for this image.
 */
export function drawAffine(rng: Rng, cfg: AffineConfig, size: number): AffineParams | null {
  const apply = rng.next() < cfg.p;
  const angle = uniform(rng, -cfg.degrees, cfg.degrees);
  const tx = Math.round(uniform(rng, -cfg.translate[0] * size, cfg.translate[0] * size));
  const ty = Math.round(uniform(rng, -cfg.translate[1] * size, cfg.translate[1] * size));
  const scale = uniform(rng, cfg.scale[0], cfg.scale[1]);
  const shear = uniform(rng, -cfg.shear, cfg.shear);
  // every draw is made even when p says no, so the stream does not depend on that outcome
  return apply ? { angle, translate: [tx, ty], scale, shear: [shear, 0] } : null;
}

/**
 * A coordinate mirrored into [0, len − 1] about the outer pixel centres, as PyTorch's grid_sample with
 * padding_mode 'reflection' and align_corners true (fastai's affine): −1 reads pixel 1, len reads len − 2.
 */
export function reflectCoord(c: number, len: number): number {
  const d = len - 1;
  if (d <= 0) return 0;
  let u = Math.abs(c) % (2 * d);
  if (u > d) u = 2 * d - u;
  return u;
}

/** Positions this close to a whole pixel are read as that pixel, so right-angle turns and whole shifts copy exactly. */
const SNAP = 1e-9;
const snap = (c: number) => {
  const r = Math.round(c);
  return Math.abs(c - r) < SNAP ? r : c;
};

/**
 * Each image of `src` (n·size·size·ch values, HWC per image) read through its own map, bilinearly, with the given
 * padding, on the host: the pixels are there when a batch is formed, and a tfjs gather of the four corners takes
 * seconds per batch on the wasm backend. The C kernel gives resampleReference's values exactly.
 */
export function resampleHost(src: ArrayLike<number>, n: number, size: number, ch: number, mats: Affine[], padding: Padding): Float32Array {
  if (mats.length !== n) throw new Error(`resampleAffine: ${mats.length} matrices for ${n} images`);
  const kernels = augmentKernels();
  if (kernels && (src instanceof Uint8Array || src instanceof Float32Array) && src.length >= n * size * size * ch) {
    return kernels.resample(src, n, size, ch, mats, padding.kind === 'constant' ? padding.fill : null);
  }
  return resampleReference(src, n, size, ch, mats, padding);
}

/**
 * resampleHost as a JavaScript loop: the reference the kernel is tested against, and the path under
 * LAYERTUNE_AUG_KERNELS=js. All arithmetic is in doubles, rounded to float32 once by the store.
 */
export function resampleReference(src: ArrayLike<number>, n: number, size: number, ch: number, mats: Affine[], padding: Padding): Float32Array {
  if (mats.length !== n) throw new Error(`resampleAffine: ${mats.length} matrices for ${n} images`);
  const out = new Float32Array(n * size * size * ch);
  const d = size - 1;
  const reflect = padding.kind === 'reflect';
  const fill = padding.kind === 'constant' ? padding.fill : [];
  for (let k = 0; k < n; k++) {
    const m = mats[k];
    const base = k * size * size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let u = snap(m[0] * x + m[1] * y + m[2]);
        let v = snap(m[3] * x + m[4] * y + m[5]);
        if (reflect) {
          u = reflectCoord(u, size);
          v = reflectCoord(v, size);
        }
        const x0 = Math.floor(u);
        const y0 = Math.floor(v);
        const fx = u - x0;
        const fy = v - y0;
        // a corner is read only when it lies inside and carries weight (the far side of an exact position has none)
        const in00 = y0 >= 0 && y0 <= d && x0 >= 0 && x0 <= d;
        const in01 = fx > 0 && y0 >= 0 && y0 <= d && x0 + 1 >= 0 && x0 + 1 <= d;
        const in10 = fy > 0 && y0 + 1 >= 0 && y0 + 1 <= d && x0 >= 0 && x0 <= d;
        const in11 = fx > 0 && fy > 0 && y0 + 1 >= 0 && y0 + 1 <= d && x0 + 1 >= 0 && x0 + 1 <= d;
        const w00 = in00 ? (1 - fy) * (1 - fx) : 0;
        const w01 = in01 ? (1 - fy) * fx : 0;
        const w10 = in10 ? fy * (1 - fx) : 0;
        const w11 = in11 ? fy * fx : 0;
        const missing = 1 - (w00 + w01 + w10 + w11);
        const p00 = (base + y0 * size + x0) * ch;
        const p10 = p00 + size * ch;
        const o = (base + y * size + x) * ch;
        for (let c = 0; c < ch; c++) {
          let acc = 0;
          if (in00) acc += w00 * src[p00 + c];
          if (in01) acc += w01 * src[p00 + ch + c];
          if (in10) acc += w10 * src[p10 + c];
          if (in11) acc += w11 * src[p10 + ch + c];
          if (!reflect && missing > 0) acc += missing * fill[c];
          out[o + c] = acc;
        }
      }
    }
  }
  return out;
}

/** Each image of x [n, size, size, C] resampled through its own map, bilinear, with the given padding. */
export function resampleAffine(x: tf.Tensor4D, mats: Affine[], padding: Padding): tf.Tensor4D {
  const [n, size, , ch] = x.shape;
  return tf.tensor4d(resampleHost(x.dataSync(), n, size, ch, mats, padding), x.shape);
}
