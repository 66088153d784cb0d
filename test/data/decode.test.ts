import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImage, flipHorizontal } from '../../src/data/decode';
import { DataError } from '../../src/errors';
import { tmpDir, writeImage } from '../helpers/images';

describe('image decoding', () => {
  const dir = tmpDir();

  it('resizes to size×size 8-bit RGB from png, jpeg, webp, gif, tiff and avif', async () => {
    for (const ext of ['png', 'jpg', 'webp', 'gif', 'tiff', 'avif']) {
      const f = path.join(dir, `c.${ext}`);
      await writeImage(f, { rgb: [200, 30, 30] });
      const px = await decodeImage(f, { size: 8 });
      expect(px.length, ext).to.equal(8 * 8 * 3);
      expect(px[0], ext).to.be.greaterThan(150); // red stays red
      expect(px[2], ext).to.be.lessThan(90);
    }
  });

  it('converts grayscale, alpha and 16-bit images to 3-channel 8-bit', async () => {
    const g = path.join(dir, 'gray.png');
    await writeImage(g, { channels: 1, rgb: [100, 0, 0] });
    const px = await decodeImage(g, { size: 4 });
    expect(px.length).to.equal(48);
    expect(px[0]).to.equal(px[1]).and.equal(px[2]);
    const a = path.join(dir, 'alpha.png');
    await writeImage(a, { channels: 4 });
    expect((await decodeImage(a, { size: 4 })).length).to.equal(48);
    const deep = path.join(dir, 'deep.png');
    await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .toColourspace('rgb16')
      .png()
      .toFile(deep);
    expect((await sharp(deep).metadata()).depth).to.equal('ushort');
    const d = await decodeImage(deep, { size: 4 });
    expect(d.length).to.equal(48);
    expect(d[0]).to.be.within(120, 135); // half of full scale, as 8-bit
  });

  it('converts CMYK JPEGs to RGB', async () => {
    const f = path.join(dir, 'cmyk.jpg');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 255 } } })
      .toColourspace('cmyk')
      .jpeg()
      .toFile(f);
    expect((await sharp(f).metadata()).space).to.equal('cmyk');
    const px = await decodeImage(f, { size: 4 });
    expect(px.length).to.equal(48);
    expect(px[2] - px[0]).to.be.greaterThan(80); // still blue after the colour-managed round trip
  });

  it('applies EXIF orientation', async () => {
    // left half red, right half blue, stored with orientation 3 (rotated 180°): decoded left must be blue
    const w = 8,
      h = 4;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    const f = path.join(dir, 'rot.jpg');
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .withMetadata({ orientation: 3 })
      .jpeg({ quality: 100 })
      .toFile(f);
    const out = await decodeImage(f, { size: 8 });
    expect(out[2]).to.be.greaterThan(150); // top-left is blue
    expect(out[0]).to.be.lessThan(100);
  });

  it('reads the first frame of an animated GIF', async () => {
    const f = path.join(dir, 'anim.gif');
    const frames = Buffer.concat([Buffer.alloc(4 * 4 * 4, 0), Buffer.alloc(4 * 4 * 4, 255)]);
    for (let i = 0; i < 16; i++) frames.set([255, 0, 0, 255], i * 4); // frame 1: red
    await sharp(frames, { raw: { width: 4, height: 8, channels: 4 } })
      .gif({ loop: 0 } as any)
      .toFile(f)
      .catch(async () => {
        await sharp(frames, { raw: { width: 4, height: 8, channels: 4 } })
          .gif()
          .toFile(f);
      });
    const px = await decodeImage(f, { size: 4 });
    expect(px.length).to.equal(48);
  });

  it('rejects corrupt, truncated, empty and mislabelled files with the path in the message', async () => {
    const good = path.join(dir, 'good.jpg');
    await writeImage(good, { w: 64, h: 64 });
    const bytes = fs.readFileSync(good);
    const cases: Record<string, Buffer> = {
      'empty.jpg': Buffer.alloc(0),
      'text.jpg': Buffer.from('this is not an image'),
      'truncated.jpg': bytes.subarray(0, Math.floor(bytes.length / 2)),
      'corrupt.jpg': Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(200, 7)]),
    };
    for (const [name, data] of Object.entries(cases)) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, data);
      let err: unknown;
      try {
        await decodeImage(f, { size: 8 });
      } catch (e) {
        err = e;
      }
      expect(err, name).to.be.instanceOf(DataError);
      expect((err as Error).message, name).to.contain(f);
    }
  });

  it('refuses a decompression bomb by its declared size, under a configurable limit', async () => {
    const f = path.join(dir, 'big.png');
    await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#000' } })
      .png({ compressionLevel: 9 })
      .toFile(f);
    let err: Error | undefined;
    await decodeImage(f, { size: 8, maxPixels: 1_000_000 }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(DataError);
    expect(err!.message).to.match(/3000x3000.*over the limit/);
    expect((await decodeImage(f, { size: 8, maxPixels: 10_000_000 })).length).to.equal(192);
  });

  it('flips rows left-right', () => {
    const two = Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    expect([...flipHorizontal(two, 2)]).to.deep.equal([2, 2, 2, 1, 1, 1, 4, 4, 4, 3, 3, 3]);
  });
});
