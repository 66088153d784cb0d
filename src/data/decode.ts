import sharp from 'sharp';
import { DataError } from '../errors';

/** Default cap on declared pixels: refuses decompression bombs before any pixel is decoded. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

/**
 * `fill` stretches the whole photo to the square (what training uses, like the PyTorch peer);
 * `center` scales the short side to `size` and crops the middle (ImageNet's evaluation protocol).
 */
export type Crop = 'fill' | 'center';

export interface DecodeOptions {
  size: number;
  maxPixels?: number;
  crop?: Crop;
}

/**
 * Decodes any image sharp reads (jpg/png/webp/gif first frame/tiff/avif) into `size`×`size`
 * 8-bit RGB, row-major HWC. EXIF orientation is applied; grayscale, CMYK, alpha and 16-bit inputs
 * all become 8-bit sRGB (alpha composited on white, as a viewer would show it). The image is
 * stretched to a square without cropping, matching the PyTorch peer's preprocessing.
 */
export async function decodeImage(file: string, opts: DecodeOptions): Promise<Uint8Array> {
  const limit = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
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
  try {
    const { data, info } = await sharp(file, { limitInputPixels: limit, pages: 1, failOn: 'warning' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(opts.size, opts.size, opts.crop === 'center' ? { fit: 'cover', position: 'centre' } : { fit: 'fill' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== opts.size * opts.size * 3) {
      throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
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
