/**
 * RandAugment and TrivialAugmentWide on batches. The op list and each op's magnitude range are torchvision's
 * (transforms.RandAugment and TrivialAugmentWide, `_augmentation_space`); RandAugment's magnitude is timm's
 * `rand-m{m}-n{n}-mstd{mstd}`: m out of 10, jittered per op by a normal of std mstd and clipped to [0, 10].
 *
 * Every image draws its own ops. A batch is transformed one op slot at a time: images are grouped by the op they
 * drew for that slot, each group runs its op's batched kernel with per-image magnitudes (the geometric ops of a
 * slot share one affine resample), and the results are copied back to their images.
 */
import * as tf from '@tensorflow/tfjs';
import { type Affine, centreOf, inverseAffine, resampleAffine } from './affine';
import type { RandAugmentConfig } from './augment-schema';
import * as ops from './color-ops';
import { normal, randint } from './distributions';
import type { Rng } from './rng';

/** torchvision's op list, in its order (the index an op is drawn by). */
export const OPS = [
  'identity',
  'shearX',
  'shearY',
  'translateX',
  'translateY',
  'rotate',
  'brightness',
  'color',
  'contrast',
  'sharpness',
  'posterize',
  'solarize',
  'autocontrast',
  'equalize',
] as const;
export type OpName = (typeof OPS)[number];

/** One op of one image with its magnitude in the op's units (shear: tan, px, degrees, factor − 1, bits, threshold). */
export interface OpDraw {
  op: OpName;
  magnitude: number;
}

/** Ops whose magnitude is negated with probability 1/2, as torchvision's `signed`. */
const SIGNED = new Set<OpName>(['shearX', 'shearY', 'translateX', 'translateY', 'rotate', 'brightness', 'color', 'contrast', 'sharpness']);
const GEOMETRIC = new Set<OpName>(['shearX', 'shearY', 'translateX', 'translateY', 'rotate']);

/** Fill of the pixels a geometric op uncovers: timm's (the ImageNet mean in 8-bit values). */
export const FILL = [124, 116, 104];

/**
 * An op's magnitude at fraction `f` ∈ [0, 1] of its range, for an image of `size` pixels: torchvision's
 * linspace(0, max) ranges, posterize 8 − round(k·f) bits, solarize at 255·(1 − f).
 */
export function magnitudeAt(op: OpName, f: number, size: number, wide: boolean): number {
  switch (op) {
    case 'shearX':
    case 'shearY':
      return f * (wide ? 0.99 : 0.3);
    case 'translateX':
    case 'translateY':
      return f * (wide ? 32 : (150 / 331) * size);
    case 'rotate':
      return f * (wide ? 135 : 30);
    case 'brightness':
    case 'color':
    case 'contrast':
    case 'sharpness':
      return f * (wide ? 0.99 : 0.9);
    case 'posterize':
      // torchvision: 8 − round(bin / ((bins − 1) / k)), k = 4 (RandAugment) or 6 (wide), bin = f·(bins − 1)
      return 8 - Math.round(f * (wide ? 6 : 4));
    case 'solarize':
      return 255 * (1 - f);
    default:
      return 0;
  }
}

/** torchvision's bin count: TrivialAugmentWide draws one of 31 magnitudes. */
const BINS = 31;
const hasMagnitude = (op: OpName) => op !== 'identity' && op !== 'autocontrast' && op !== 'equalize';

function signed(rng: Rng, op: OpName, magnitude: number): number {
  // the sign is drawn for every op, so the stream does not depend on which op came up
  const negate = rng.next() < 0.5;
  return SIGNED.has(op) && negate ? -magnitude : magnitude;
}

/** RandAugment's n ops of one image: drawn with replacement, magnitude (m + mstd·N(0, 1)) / 10 clipped to [0, 1]. */
export function drawRandAugment(rng: Rng, cfg: RandAugmentConfig, size: number): OpDraw[] {
  return Array.from({ length: cfg.n }, () => {
    const op = OPS[randint(rng, 0, OPS.length)];
    const m = cfg.mstd > 0 ? cfg.m + cfg.mstd * normal(rng) : cfg.m;
    const f = Math.min(Math.max(m, 0), 10) / 10;
    return { op, magnitude: signed(rng, op, magnitudeAt(op, f, size, false)) };
  });
}

/** TrivialAugmentWide's one op of one image: a uniform op and a uniform one of its 31 magnitudes. */
export function drawTrivialAugment(rng: Rng, size: number): OpDraw[] {
  const op = OPS[randint(rng, 0, OPS.length)];
  const bin = randint(rng, 0, BINS);
  const magnitude = hasMagnitude(op) ? magnitudeAt(op, bin / (BINS - 1), size, true) : 0;
  return [{ op, magnitude: signed(rng, op, magnitude) }];
}

/**
 * The output→source map of a geometric op, as torchvision's _apply_op calls F.affine / F.rotate: shears about the
 * top-left corner by atan(magnitude), shifts by whole pixels (truncated), rotation counter-clockwise about the centre.
 */
export function opAffine(d: OpDraw, size: number): Affine {
  const none = { angle: 0, translate: [0, 0] as [number, number], scale: 1, shear: [0, 0] as [number, number] };
  const corner: [number, number] = [-0.5, -0.5];
  const deg = (t: number) => (Math.atan(t) * 180) / Math.PI;
  switch (d.op) {
    case 'shearX':
      return inverseAffine(corner, { ...none, shear: [deg(d.magnitude), 0] });
    case 'shearY':
      return inverseAffine(corner, { ...none, shear: [0, deg(d.magnitude)] });
    case 'translateX':
      return inverseAffine(centreOf(size), { ...none, translate: [Math.trunc(d.magnitude), 0] });
    case 'translateY':
      return inverseAffine(centreOf(size), { ...none, translate: [0, Math.trunc(d.magnitude)] });
    case 'rotate':
      return inverseAffine(centreOf(size), { ...none, angle: -d.magnitude });
    default:
      throw new Error(`opAffine: ${d.op} is not geometric`);
  }
}

/** One op kernel on a group of images, each with its own draw. */
function runOp(kind: OpName | 'geometric', x: tf.Tensor4D, draws: OpDraw[], size: number): tf.Tensor4D {
  const m = draws.map((d) => d.magnitude);
  switch (kind) {
    case 'geometric':
      return resampleAffine(
        x,
        draws.map((d) => opAffine(d, size)),
        { kind: 'constant', fill: FILL },
      );
    case 'brightness':
      return ops.brightness(
        x,
        m.map((v) => 1 + v),
      );
    case 'color':
      return ops.saturation(
        x,
        m.map((v) => 1 + v),
      );
    case 'contrast':
      return ops.contrast(
        x,
        m.map((v) => 1 + v),
      );
    case 'sharpness':
      return ops.sharpness(
        x,
        m.map((v) => 1 + v),
      );
    case 'posterize':
      return ops.posterize(
        x,
        m.map((v) => Math.trunc(v)),
      );
    case 'solarize':
      return ops.solarize(x, m);
    case 'autocontrast':
      return ops.autocontrast(x);
    case 'equalize':
      return ops.equalize(x);
    default:
      return x.clone();
  }
}

/**
 * Each image through its own op list (all lists of one batch have the same length), on pixel values in [0, 255].
 * The batch lives on the host between slots: each op group is copied out into its own tensor, run, and copied back
 * in place (groups are disjoint), because a tfjs gather of whole images costs hundreds of milliseconds on wasm.
 */
export function applyOps(x: tf.Tensor4D, draws: OpDraw[][], size: number): tf.Tensor4D {
  const n = draws.length;
  const slots = n ? draws[0].length : 0;
  const per = x.size / Math.max(n, 1);
  const px = Float32Array.from(x.dataSync());
  for (let s = 0; s < slots; s++) {
    const groups = new Map<OpName | 'geometric', number[]>();
    draws.forEach((row, i) => {
      const op = row[s].op;
      const key = GEOMETRIC.has(op) ? 'geometric' : op;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const [kind, idx] of groups) {
      if (kind === 'identity') continue;
      const sub = new Float32Array(idx.length * per);
      idx.forEach((i, j) => sub.set(px.subarray(i * per, (i + 1) * per), j * per));
      const out = tf.tidy(() =>
        runOp(
          kind,
          tf.tensor4d(sub, [idx.length, x.shape[1], x.shape[2], x.shape[3]]),
          idx.map((i) => draws[i][s]),
          size,
        ),
      );
      const values = out.dataSync();
      out.dispose();
      idx.forEach((i, j) => px.set(values.subarray(j * per, (j + 1) * per), i * per));
    }
  }
  return tf.tensor4d(px, x.shape);
}
