import sharp from 'sharp';
import { DataError } from '../errors';
import { type CropPlan, type EvalCrop, evalCropPlan, presizeDims } from './eval-crop';

/** Default cap on declared pixels: refuses decompression bombs before any pixel is decoded. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

/**
 * `fill` stretches the whole photo to the square (what training uses, like the PyTorch peer);
 * `center` scales the short side to ⌊size / cropPct⌋ and crops the middle (timm's and ImageNet's evaluation protocol).
 */
export type Crop = 'fill' | 'center';

export interface DecodeOptions {
  size: number;
  maxPixels?: number;
  crop?: Crop;
  /** `center` only: the share of the resized short side the crop keeps (timm's crop_pct); 1 crops at the short side. */
  cropPct?: number;
}

/** Decoded pixels with their dimensions (HWC RGB, 8-bit). */
export interface DecodedImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/**
 * Decodes any image sharp reads (jpg/png/webp/gif first frame/tiff/avif) into `size`×`size`
 * 8-bit RGB, row-major HWC. EXIF orientation is applied; grayscale, CMYK, alpha and 16-bit inputs
 * all become 8-bit sRGB (alpha composited on white, as a viewer would show it). `fill` stretches
 * the image to a square without cropping, matching the PyTorch peer's preprocessing; `center` is
 * the evaluation crop of src/data/eval-crop.ts.
 */
export async function decodeImage(file: string, opts: DecodeOptions): Promise<Uint8Array> {
  const crop: EvalCrop = { mode: opts.crop ?? 'fill', cropPct: opts.cropPct ?? 1 };
  return (await decodePlanned(file, opts.maxPixels, () => evalCropPlan(opts.size, crop))).pixels;
}

/** The presized training copy: short side `short`, aspect kept (src/data/eval-crop.ts presizeDims). */
export function decodePresized(file: string, short: number, maxPixels?: number): Promise<DecodedImage> {
  return decodePlanned(file, maxPixels, (w, h) => {
    const d = presizeDims(w, h, short);
    return { ...d, rect: [0, 0, d.height, d.width] };
  });
}

/**
 * Decodes `file` resized to the plan's width×height and cut to its rectangle. `plan` receives the photo's
 * dimensions as a viewer shows it (EXIF orientations 5–8 swap width and height).
 */
export async function decodePlanned(file: string, maxPixels: number | undefined, plan: (width: number, height: number) => CropPlan): Promise<DecodedImage> {
  const limit = maxPixels ?? DEFAULT_MAX_PIXELS;
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new DataError(file, `not a readable image (${firstLine(e)})`);
  }
  const declared = (meta.width ?? 0) * (meta.height ?? 0);
  if (declared > limit) {
    throw new DataError(file, `declares ${meta.width}x${meta.height} = ${declared} pixels, over the limit of ${limit} (data.maxPixels)`);
  }
  const swap = (meta.orientation ?? 1) >= 5;
  const p = plan(swap ? (meta.height ?? 0) : (meta.width ?? 0), swap ? (meta.width ?? 0) : (meta.height ?? 0));
  const [top, left, height, width] = p.rect;
  try {
    let img = sharp(file, { limitInputPixels: limit, pages: 1, failOn: 'warning' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(p.width, p.height, p.cover ? { fit: 'cover', position: 'centre' } : { fit: 'fill' });
    // sharp extracts after the resize when extract follows it in the chain
    if (top !== 0 || left !== 0 || height !== p.height || width !== p.width) img = img.extract({ top, left, width, height });
    const { data, info } = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== width * height * 3) {
      throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes`);
    }
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  } catch (e) {
    throw new DataError(file, `cannot decode image (${firstLine(e)})`);
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/** Mirrors an HWC RGB image left-right into a new buffer. */
export function flipHorizontal(px: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(px.length);
  const row = size * 3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = y * row + x * 3;
      const d = y * row + (size - 1 - x) * 3;
      out[d] = px[s];
      out[d + 1] = px[s + 1];
      out[d + 2] = px[s + 2];
    }
  }
  return out;
}
