/**
 * Presizing (fastai's term): each training image is decoded once into a copy whose short side is `data.presize`
 * (aspect kept, cached by the source), and every epoch's RandomResizedCrop is cut from that copy and resized to
 * the input square. Cropping a size×size squash instead would crop an already distorted and already downsampled
 * picture; the presized copy keeps the photo's shape and ~15% more resolution than the input, as the PyTorch peer's
 * `--aug strong` does.
 */
import { ConfigError } from '../errors';
import type { DecodedImage } from './decode';
import { randint, uniform } from './distributions';
import { defaultPresize, type EvalCrop, type PixelRect, scaleSize } from './eval-crop';
import { cropResizeHost } from './resize-crop';
import type { Rng } from './rng';

/**
 * torchvision RandomResizedCrop.get_params on a width×height image: ten tries at a random area share and a
 * log-uniform aspect; when none fits, the central crop with the aspect clamped into the ratio range.
 * Returns [top, left, height, width].
 */
export function drawResizedCropIn(rng: Rng, width: number, height: number, scale: [number, number], ratio: [number, number]): PixelRect {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) return [randint(rng, 0, height - h + 1), randint(rng, 0, width - w + 1), h, w];
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(width / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(height * ratio[1]);
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}

/**
 * Cuts `rect` from a presized copy and resizes it to size×size 8-bit RGB with PIL's BILINEAR filter (which
 * torchvision's RandomResizedCrop uses on images): it widens when shrinking, so a large crop shrunk to the input
 * does not alias (src/data/resize-crop.ts).
 */
export function cropPresized(copy: DecodedImage, rect: PixelRect, size: number): Uint8Array {
  return cropResizeHost(copy, rect, size);
}

/**
 * The presize check the schema cannot make when the input size is the model's own (known only once it is
 * loaded): below the input size is refused; a presize without a random crop has nothing to crop and is said so.
 */
export function checkPresize(presize: number | undefined, size: number, randomCrop: boolean): string | null {
  if (presize === undefined) return null;
  if (presize < size) throw new ConfigError('config.data.presize', `${presize} is below the input size ${size}`);
  return randomCrop ? null : 'data.presize has no effect without data.augment.randomResizedCrop: training images are decoded straight to the input size';
}

/** One line for `plan` and the run log: how training and validation images become the input square. */
export function describeInputs(presize: number | undefined, randomCrop: boolean, evalCrop: EvalCrop, size: number): string {
  const short = presize ?? defaultPresize(size);
  const train = randomCrop
    ? `training crops from copies presized to short side ${short}${presize === undefined ? ` (⌈${size} × 1.15⌉)` : ''}, aspect kept`
    : `training images squashed to ${size}×${size}`;
  const val =
    evalCrop.mode === 'center'
      ? `validation: short side ${scaleSize(size, evalCrop.cropPct)} (cropPct ${evalCrop.cropPct}), centre ${size}×${size}`
      : `validation: the whole photo squashed to ${size}×${size} (eval.crop fill)`;
  return `${train}; ${val}`;
}

/** describeInputs for a job. */
export function describeJobInputs(
  job: { data: { presize?: number; augment: { randomResizedCrop?: unknown } }; eval: { crop: EvalCrop['mode']; cropPct: number } },
  size: number,
): string {
  return describeInputs(job.data.presize, job.data.augment.randomResizedCrop !== undefined, { mode: job.eval.crop, cropPct: job.eval.cropPct }, size);
}
