import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { writeImage } from '../helpers/images';

/** One PNG chunk: length, type, data, CRC over type+data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([head, body, crc]);
}

/**
 * A valid PNG header declaring `w`×`h` RGB pixels, followed by only two rows of image data: a few
 * hundred bytes on disk that would need w·h·3 bytes to decode (a decompression bomb's signature).
 */
export function pngBombHeader(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const rows = zlib.deflateSync(Buffer.alloc(2 * (1 + w * 3)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 16-bit-per-channel PNG. */
export async function write16BitPng(file: string): Promise<void> {
  await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 128, g: 64, b: 32 } } })
    .toColourspace('rgb16')
    .png()
    .toFile(file);
}

export async function writeCmykJpeg(file: string): Promise<void> {
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 255 } } })
    .toColourspace('cmyk')
    .jpeg()
    .toFile(file);
}

/** Left half red, right half blue, stored rotated by 180° (EXIF orientation 3). */
export async function writeExifRotatedJpeg(file: string): Promise<void> {
  const w = 8,
    h = 4;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .withMetadata({ orientation: 3 })
    .jpeg({ quality: 100 })
    .toFile(file);
}

/** A real two-frame animated GIF (first frame red, second white). */
export async function writeAnimatedGif(file: string): Promise<void> {
  const frame = 4 * 4 * 4;
  const px = Buffer.alloc(2 * frame, 255);
  for (let i = 0; i < 16; i++) px.set([255, 0, 0, 255], i * 4);
  await sharp(px, { raw: { width: 4, height: 8, channels: 4, pageHeight: 4 } })
    .gif({ loop: 0 })
    .toFile(file);
}

/** A JPEG cut in half and one with its entropy-coded data overwritten. */
export async function writeBrokenJpegs(dir: string): Promise<{ truncated: string; corrupt: string }> {
  const good = path.join(dir, '.source.jpg');
  await writeImage(good, { w: 64, h: 64 });
  const bytes = fs.readFileSync(good);
  fs.rmSync(good);
  const truncated = path.join(dir, 'truncated.jpg');
  const corrupt = path.join(dir, 'corrupt.jpg');
  fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  fs.writeFileSync(corrupt, Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(200, 7)]));
  return { truncated, corrupt };
}

export async function writeTruncatedPng(file: string): Promise<void> {
  const tmp = `${file}.full.png`;
  await writeImage(tmp, { w: 64, h: 64 });
  const bytes = fs.readFileSync(tmp);
  fs.rmSync(tmp);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
}
