/**
 * Training transforms on whole batches with tfjs ops. Every random choice is drawn on the host from the run's RNG
 * when a batch is formed (src/data/batches.ts), so the draws are part of the checkpointed RNG state and a resumed
 * run, which replays the draws of the batches it skips, sees the same views. The tensor side is then a pure function
 * of (pixels, draws).
 *
 * Order, as in timm's create_transform: RandomResizedCrop, flips and the affine (one resample), colour jitter
 * (brightness, contrast, saturation, then hue), random grayscale, RandAugment or TrivialAugmentWide, normalisation,
 * random erasing, then MixUp/CutMix over the batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';
import { type Affine, boxAffine, centreOf, composeAffine, drawAffine, inverseAffine, resampleHost } from './affine';
import type { AugmentConfig, MixConfig } from './augment-schema';
import { type ChannelMap, jitterCoefficients, jitterHost, jitters, KEEP_VALUES, LUMA, preprocessMap } from './color-jitter';
import { adjustHue } from './color-ops';
import { flipHorizontal } from './decode';
import { beta, randint, uniform } from './distributions';
import { preprocessTensor } from './preprocess';
import { applyOps, drawRandAugment, drawTrivialAugment, type OpDraw } from './rand-augment';
import { drawResizedCropIn } from './presize';
import type { Rng } from './rng';

/** A crop in tf.image.cropAndResize's normalised [y1, x1, y2, x2]; x1 > x2 flips left-right, y1 > y2 up-down. */
export type Box = [number, number, number, number];
/** Pixel rectangle [top, left, height, width]. */
export type Rect = [number, number, number, number];

export interface ImageDraw {
  box: Box;
  brightness: number;
  contrast: number;
  saturation: number;
  gray: boolean;
  erase: Rect | null;
  /** Hue shift in turns, drawn after saturation as torchvision's ColorJitter; present only when `hue` is configured. */
  hue?: number;
  /** With randAugment or trivialAugment configured: this image's ops, applied after colour jitter and grayscale. */
  ops?: OpDraw[];
  /**
   * With `affine` configured: the one output→source map of this image, its crop and flips composed with its
   * rotation, zoom, shift and shear, so the image is interpolated once.
   */
  affine?: Affine;
  /**
   * The RandomResizedCrop in the presized copy's pixels, cut and resized to the input on the host before the batch
   * is stacked; `box` then only flips. Absent: `box` crops the size×size image as it always did.
   */
  source?: Rect;
}

export interface BatchDraw {
  mix: { kind: 'mixup'; lam: number } | { kind: 'cutmix'; lam: number; rect: Rect } | null;
  /** Seed of the noise that `value: random` erasing fills with. */
  noiseSeed: number;
}

/** The options that change pixels; flips alone stay on the host path in batches.ts. */
export function augmentsPixels(a: AugmentConfig): boolean {
  return !!(
    a.randomResizedCrop ||
    a.vflip > 0 ||
    a.affine ||
    a.colorJitter ||
    a.grayscale > 0 ||
    a.randAugment ||
    a.trivialAugment ||
    a.randomErasing ||
    a.mix
  );
}

/** One line for `plan`: the training transforms in the order they run, and the loss's label smoothing. */
export function describeAugment(job: { data: { flip: boolean; augment: AugmentConfig }; loss: { labelSmoothing: number } }): string {
  const a = job.data.augment;
  const parts: string[] = [];
  if (a.randomResizedCrop)
    parts.push(
      `RandomResizedCrop scale [${a.randomResizedCrop.scale.join(', ')}] ratio [${a.randomResizedCrop.ratio.map((r) => Number(r.toFixed(3))).join(', ')}]`,
    );
  const h = a.hflip ?? (job.data.flip ? 0.5 : 0);
  if (h > 0) parts.push(`hflip ${h}`);
  if (a.vflip > 0) parts.push(`vflip ${a.vflip}`);
  const af = a.affine;
  if (af) parts.push(`affine p ${af.p} degrees ${af.degrees} translate [${af.translate.join(', ')}] scale [${af.scale.join(', ')}] shear ${af.shear}`);
  const cj = a.colorJitter;
  if (cj) parts.push(`colour jitter b ${cj.brightness} c ${cj.contrast} s ${cj.saturation}${cj.hue > 0 ? ` h ${cj.hue}` : ''}`);
  if (a.grayscale > 0) parts.push(`grayscale ${a.grayscale}`);
  if (a.randAugment) parts.push(`RandAugment n ${a.randAugment.n} m ${a.randAugment.m} mstd ${a.randAugment.mstd}`);
  if (a.trivialAugment) parts.push('TrivialAugmentWide');
  if (a.randomErasing) parts.push(`random erasing p ${a.randomErasing.p}`);
  const m = a.mix;
  if (m)
    parts.push(`mix (${[m.mixupAlpha && `MixUp α ${m.mixupAlpha}`, m.cutmixAlpha && `CutMix α ${m.cutmixAlpha}`].filter(Boolean).join(', ')}) prob ${m.prob}`);
  if (job.loss.labelSmoothing > 0) parts.push(`label smoothing ${job.loss.labelSmoothing}`);
  return parts.length ? parts.join(', ') : 'none';
}

/** A BatchAugmenter when the config changes pixels beyond flips, else null (flips stay on the host path). */
export function makeAugmenter(a: AugmentConfig, size: number): BatchAugmenter | null {
  return augmentsPixels(a) ? new BatchAugmenter(a, size) : null;
}

/**
 * torchvision RandomResizedCrop.get_params on a size×size image: ten tries at a random area and log-uniform aspect,
 * then the whole image (a square's central crop within any ratio range that holds 1).
 */
export function drawResizedCrop(rng: Rng, size: number, scale: [number, number], ratio: [number, number]): Rect {
  return drawResizedCropIn(rng, size, size, scale, ratio);
}

/** torchvision RandomErasing.get_params: ten tries, none fitting means no erasing. */
export function drawErasing(rng: Rng, size: number, scale: [number, number], ratio: [number, number]): Rect | null {
  const area = size * size;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const h = Math.round(Math.sqrt(target * aspect));
    const w = Math.round(Math.sqrt(target / aspect));
    if (!(h < size && w < size)) continue;
    return [randint(rng, 0, size - h + 1), randint(rng, 0, size - w + 1), h, w];
  }
  return null;
}

/**
 * The box of pixel rows top..top+h−1 and columns left..left+w−1: cropAndResize samples pixel centres with the
 * corners aligned, so these bounds put the crop's corner samples exactly on the rectangle's corner pixels.
 */
export function rectToBox(rect: Rect, size: number, hflip: boolean, vflip: boolean): Box {
  const [top, left, h, w] = rect;
  const d = size - 1;
  const y1 = top / d;
  const y2 = (top + h - 1) / d;
  const x1 = left / d;
  const x2 = (left + w - 1) / d;
  return [vflip ? y2 : y1, hflip ? x2 : x1, vflip ? y1 : y2, hflip ? x1 : x2];
}

/** timm's rand_bbox: a box of side √(1 − λ) of the image around a uniform centre, clipped; λ is then its true share. */
export function drawCutmixRect(rng: Rng, size: number, lam: number): { rect: Rect; lam: number } {
  const cut = Math.floor(size * Math.sqrt(1 - lam));
  const cy = randint(rng, 0, size);
  const cx = randint(rng, 0, size);
  const clip = (v: number) => Math.min(Math.max(v, 0), size);
  const y1 = clip(cy - Math.floor(cut / 2));
  const y2 = clip(cy + Math.floor(cut / 2));
  const x1 = clip(cx - Math.floor(cut / 2));
  const x2 = clip(cx + Math.floor(cut / 2));
  return { rect: [y1, x1, y2 - y1, x2 - x1], lam: 1 - ((y2 - y1) * (x2 - x1)) / (size * size) };
}

const jitterFactor = (rng: Rng, v: number) => (v > 0 ? uniform(rng, Math.max(0, 1 - v), 1 + v) : 1);

const isWhole = (b: Box) => b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 1;
const isLeftRightFlip = (b: Box) => b[0] === 0 && b[1] === 1 && b[2] === 1 && b[3] === 0;

/** The batch's 8-bit images with those whose box is a left-right flip mirrored, as a new array. */
function flipRows(pixels: Uint8Array, rows: ImageDraw[], size: number): Uint8Array {
  const per = size * size * 3;
  const out = new Uint8Array(rows.length * per);
  rows.forEach((r, k) => {
    const img = pixels.subarray(k * per, (k + 1) * per);
    out.set(isLeftRightFlip(r.box) ? flipHorizontal(img, size) : img, k * per);
  });
  return out;
}

/**
 * Draws and applies one configuration's transforms. `hflip` here is the left-right flip probability the batch
 * builder already drew for each image; this class folds it into the crop so it costs nothing extra.
 */
export class BatchAugmenter {
  constructor(
    private readonly cfg: AugmentConfig,
    private readonly size: number,
  ) {}

  /** Whether crops come from presized copies (data.presize): the batch builder then needs each copy's dimensions first. */
  get cropsPresized(): boolean {
    return !!this.cfg.randomResizedCrop;
  }

  /**
   * Per-image draws, made for every example in order (decode failures never shift the stream). `image`: the
   * presized copy's dimensions, when the crop is cut from it.
   */
  drawImage(rng: Rng, hflip: boolean, image?: { width: number; height: number }): ImageDraw {
    const { size, cfg } = this;
    const rrc = cfg.randomResizedCrop;
    const source = rrc && image ? drawResizedCropIn(rng, image.width, image.height, rrc.scale, rrc.ratio) : undefined;
    const rect: Rect = rrc && !source ? drawResizedCrop(rng, size, rrc.scale, rrc.ratio) : [0, 0, size, size];
    const vflip = cfg.vflip > 0 && rng.next() < cfg.vflip;
    const affine = cfg.affine ? drawAffine(rng, cfg.affine, size) : null;
    const cj = cfg.colorJitter;
    const brightness = cj ? jitterFactor(rng, cj.brightness) : 1;
    const contrast = cj ? jitterFactor(rng, cj.contrast) : 1;
    const saturation = cj ? jitterFactor(rng, cj.saturation) : 1;
    const hue = cj && cj.hue > 0 ? { hue: uniform(rng, -cj.hue, cj.hue) } : {};
    const gray = cfg.grayscale > 0 && rng.next() < cfg.grayscale;
    const policy = cfg.randAugment ? { ops: drawRandAugment(rng, cfg.randAugment, size) } : cfg.trivialAugment ? { ops: drawTrivialAugment(rng, size) } : {};
    const re = cfg.randomErasing;
    const erase = re && rng.next() < re.p ? drawErasing(rng, size, re.scale, re.ratio) : null;
    const box = rectToBox(rect, size, hflip, vflip);
    // the affine turns the cropped image, so it runs first on output pixels and the crop's map reads the source
    const map = affine ? { affine: composeAffine(boxAffine(box, size), inverseAffine(centreOf(size), affine)) } : {};
    return { box, brightness, contrast, saturation, gray, erase, ...hue, ...map, ...policy, ...(source ? { source } : {}) };
  }

  /** Per-batch draws (timm Mixup's batch mode: one λ and one choice for the whole batch). */
  drawBatch(rng: Rng): BatchDraw {
    const noiseSeed = this.cfg.randomErasing?.value === 'random' ? rng.int(2 ** 31) : 0;
    const m = this.cfg.mix;
    if (!m || !(rng.next() < m.prob)) return { mix: null, noiseSeed };
    const cutmix = pickCutmix(rng, m);
    if (cutmix) {
      const { rect, lam } = drawCutmixRect(rng, this.size, beta(rng, m.cutmixAlpha as number, m.cutmixAlpha as number));
      return { mix: { kind: 'cutmix', lam, rect }, noiseSeed };
    }
    return { mix: { kind: 'mixup', lam: beta(rng, m.mixupAlpha as number, m.mixupAlpha as number) }, noiseSeed };
  }

  /** The network input for 8-bit HWC pixels and their draws. */
  images(pixels: Uint8Array, rows: ImageDraw[], batch: BatchDraw | null, pre: Preprocess): tf.Tensor4D {
    const n = rows.length;
    const { size } = this;
    return tf.tidy(() => {
      const ops = rows.some((r) => r.ops?.some((o) => o.op !== 'identity'));
      // with nothing between the colour map and the normalisation (no hue shift, no policy op), the colour pass
      // normalises too, saving two passes over the batch
      const fused = jitters(rows) && !rows.some((r) => (r.hue ?? 0) !== 0) && !ops;
      let x = this.coloured(pixels, rows, fused ? preprocessMap(pre) : KEEP_VALUES);
      if (ops)
        x = applyOps(
          x,
          rows.map((r) => r.ops ?? []),
          size,
        );
      if (!fused) x = preprocessTensor(x, pre);
      const re = this.cfg.randomErasing;
      if (re && rows.some((r) => r.erase)) {
        const mask = rectMasks(
          rows.map((r) => r.erase),
          size,
        );
        const fill = re.value === 'random' ? tf.randomNormal([n, size, size, 3], 0, 1, 'float32', batch?.noiseSeed ?? 0) : tf.scalar(re.value);
        x = tf.add(tf.mul(x, tf.sub(1, mask)), tf.mul(fill, mask)) as tf.Tensor4D;
      }
      const mix = batch?.mix;
      if (mix && n > 1) {
        // partners are the batch reversed, as timm pairs x with x.flip(0)
        const partner = tf.reverse(x, 0);
        if (mix.kind === 'mixup') x = tf.add(tf.mul(x, mix.lam), tf.mul(partner, 1 - mix.lam)) as tf.Tensor4D;
        else {
          const m = rectMasks(
            rows.map(() => mix.rect),
            size,
          );
          x = tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(partner, m)) as tf.Tensor4D;
        }
      }
      return x;
    });
  }

  /**
   * The crop, flips and affine, then colour jitter, grayscale and hue: pixel values in [0, 255], passed through
   * `post` where the colour map runs. Inside a tidy.
   */
  private coloured(pixels: Uint8Array, rows: ImageDraw[], post: ChannelMap): tf.Tensor4D {
    const n = rows.length;
    const { size } = this;
    const shape: [number, number, number, number] = [n, size, size, 3];
    const per = size * size;
    const colour = jitters(rows);
    // the images after the crop, flips and affine: a host array where they can be formed on the host (so the
    // colour map reads it straight from there), else a tensor from cropAndResize
    let host: Uint8Array | Float32Array | null = null;
    let x: tf.Tensor4D | null = null;
    if (rows.some((r) => r.affine)) {
      // the crop, flips and affine are one read of the host pixels; reflection padding, as fastai's affine: a
      // rotated or shifted image has no black corners to learn from
      host = resampleHost(
        pixels,
        n,
        size,
        3,
        rows.map((r) => r.affine ?? boxAffine(r.box, size)),
        { kind: 'reflect' },
      );
    } else if (rows.every((r) => isWhole(r.box) || isLeftRightFlip(r.box))) {
      // cropAndResize over the whole image samples exact pixel centres (its weights are 0), so a flip of the
      // bytes is the same image bit for bit; this is every batch whose crops came from presized copies
      host = flipRows(pixels, rows, size);
    } else {
      x = tf.image.cropAndResize(
        tf.tensor4d(Float32Array.from(pixels), shape),
        tf.tensor2d(
          rows.flatMap((r) => r.box),
          [n, 4],
        ),
        tf.range(0, n, 1, 'int32') as tf.Tensor1D,
        [size, size],
        'bilinear',
      );
    }
    if (colour) {
      // brightness, contrast, saturation and grayscale as one linear map per image (src/data/color-jitter.ts)
      x = tf.tensor4d(
        jitterHost(
          host ?? (x!.dataSync() as Float32Array),
          rows.map((r) => jitterCoefficients(r)),
          per,
          post,
        ),
        shape,
      );
      const hued = rows.map((r) => (r.hue ?? 0) !== 0);
      if (hued.some(Boolean)) {
        // only the shifted images go through HSV, so the others keep their exact values
        x = adjustHue(
          x,
          rows.map((r) => r.hue ?? 0),
        );
        const late = rows.map((r, i) => r.gray && hued[i]);
        if (late.some(Boolean)) {
          const luma = tf.matMul(x.reshape([n * per, 3]), tf.tensor2d([...LUMA], [3, 1])).reshape([n, size, size, 1]);
          x = tf.where(tf.tensor4d(late.map(Number), [n, 1, 1, 1]).cast('bool'), tf.broadcastTo(luma, [n, size, size, 3]), x) as tf.Tensor4D;
        }
      }
    }
    if (x) return x;
    const formed = host as Uint8Array | Float32Array;
    return tf.tensor4d(formed instanceof Float32Array ? formed : new Float32Array(formed), shape);
  }

  /** Targets: one-hot, or mixed by the batch's λ with the reversed batch (label smoothing is applied by the loss). */
  targets(labels: number[], classes: number, batch: BatchDraw | null): tf.Tensor2D {
    return tf.tidy(() => {
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as tf.Tensor2D;
      const mix = batch?.mix;
      if (!mix || labels.length < 2) return y;
      return tf.add(tf.mul(y, mix.lam), tf.mul(tf.reverse(y, 0), 1 - mix.lam)) as tf.Tensor2D;
    });
  }
}

function pickCutmix(rng: Rng, m: MixConfig): boolean {
  if (m.mixupAlpha !== undefined && m.cutmixAlpha !== undefined) return rng.next() < m.switchProb;
  return m.cutmixAlpha !== undefined;
}

/** [n, size, size, 1] masks: 1 inside each image's rectangle, 0 outside (and everywhere for a null rectangle). */
function rectMasks(rects: Array<Rect | null>, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const n = rects.length;
    const idx = tf.range(0, size, 1, 'float32');
    const lo = (k: number) => rects.map((r) => (r ? r[k] : 0));
    const hi = (k: number, e: number) => rects.map((r) => (r ? r[k] + r[e] : 0));
    const rowsIn = tf.logicalAnd(
      tf.greaterEqual(idx.reshape([1, size]), tf.tensor2d(lo(0), [n, 1])),
      tf.less(idx.reshape([1, size]), tf.tensor2d(hi(0, 2), [n, 1])),
    );
    const colsIn = tf.logicalAnd(
      tf.greaterEqual(idx.reshape([1, size]), tf.tensor2d(lo(1), [n, 1])),
      tf.less(idx.reshape([1, size]), tf.tensor2d(hi(1, 3), [n, 1])),
    );
    return tf.mul(rowsIn.toFloat().reshape([n, size, 1, 1]), colsIn.toFloat().reshape([n, 1, size, 1])) as tf.Tensor4D;
  });
}
