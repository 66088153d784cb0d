import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImage, decodePresized } from '../../src/data/decode';
import { centerRect, cutRect, defaultPresize, evalCropPlan, fiveCropRects, presizeDims, scaleSize, shortSideResize } from '../../src/data/eval-crop';
import { noisePng, tmpDir } from '../helpers/images';

describe('evaluation crops (timm crop_pct) and presize geometry', () => {
  const dir = tmpDir('lt-evalcrop-');

  it('geometry matches torchvision/timm by hand: scale size, short-side resize, centre offsets, five crops', () => {
    // timm: 224 / 0.875 = 256; 96 / 0.875 = 109.71 → 109; 21 / 0.7 is 30 in exact arithmetic
    expect(scaleSize(224, 0.875)).to.equal(256);
    expect(scaleSize(96, 0.875)).to.equal(109);
    expect(scaleSize(21, 0.7)).to.equal(30);
    // short side 256 of a 500×375 photo: 341×256 (500·256/375 = 341.33, rounded as sharp rounds it)
    expect(shortSideResize(500, 375, 256)).to.deep.equal({ width: 341, height: 256 });
    expect(shortSideResize(375, 500, 256)).to.deep.equal({ width: 256, height: 341 });
    expect(shortSideResize(500, 376, 224)).to.deep.equal({ width: 298, height: 224 });
    // centre 224 of 341×256: top (256 − 224) / 2 = 16, left 58.5 rounded half up = 59 (sharp's centre)
    expect(centerRect(341, 256, 224)).to.deep.equal([16, 59, 224, 224]);
    // center: the centre 256 square of the short-side resize, then its centre 224 (offset 16)
    expect(evalCropPlan(224, { mode: 'center', cropPct: 0.875 })).to.deep.equal({ width: 256, height: 256, cover: true, rect: [16, 16, 224, 224] });
    expect(evalCropPlan(224, { mode: 'center', cropPct: 1 })).to.deep.equal({ width: 224, height: 224, cover: true, rect: [0, 0, 224, 224] });
    expect(evalCropPlan(224, { mode: 'fill', cropPct: 0.875 })).to.deep.equal({ width: 224, height: 224, rect: [0, 0, 224, 224] });
    expect(fiveCropRects(341, 256, 224)).to.deep.equal([
      [0, 0, 224, 224],
      [0, 117, 224, 224],
      [32, 0, 224, 224],
      [32, 117, 224, 224],
      [16, 59, 224, 224],
    ]);
    // ⌈224 · 1.15⌉ = ⌈257.6⌉ = 258; 20 · 1.15 is exactly 23 (a float product would give 24)
    expect(defaultPresize(224)).to.equal(258);
    expect(defaultPresize(20)).to.equal(23);
    expect(presizeDims(500, 375, 258)).to.deep.equal({ width: 344, height: 258 });
    expect(presizeDims(375, 500, 258)).to.deep.equal({ width: 258, height: 344 });
  });

  it('a non-square image: the centre crop is the hand-computed window of its pixels (landscape and portrait)', async () => {
    // 40×24 at size 21, cropPct 0.875: scale size 24 = the short side, so no resampling; the centre 24 square is
    // columns 8 .. 31, and its centre 21 starts 1.5 → 2 in: rows 2 .. 22, columns 10 .. 30
    const wide = path.join(dir, 'wide.png');
    const raw = await noisePng(wide, 40, 24);
    const got = await decodeImage(wide, { size: 21, crop: 'center', cropPct: 0.875 });
    const want = new Uint8Array(21 * 21 * 3);
    for (let y = 0; y < 21; y++) for (let x = 0; x < 21; x++) for (let c = 0; c < 3; c++) want[(y * 21 + x) * 3 + c] = raw[((y + 2) * 40 + x + 10) * 3 + c];
    expect(Buffer.from(got).equals(Buffer.from(want))).to.equal(true);
    expect(Buffer.from(cutRect(raw, 40, [2, 10, 21, 21])).equals(Buffer.from(want))).to.equal(true);
    const tall = path.join(dir, 'tall.png');
    const rawT = await noisePng(tall, 24, 40, 9);
    const gotT = await decodeImage(tall, { size: 21, crop: 'center', cropPct: 0.875 });
    expect(Buffer.from(gotT).equals(Buffer.from(cutRect(rawT, 24, [10, 2, 21, 21])))).to.equal(true);
  });

  it('cropPct 1 crops at the short side, exactly the sharp cover crop predict always gave; fill is unchanged', async () => {
    const f = path.join(dir, 'sq.png');
    const raw = await noisePng(f, 30, 20, 3);
    // scale size 20 = short side: the centre 20×20 is columns 5..24
    const c = await decodeImage(f, { size: 20, crop: 'center' });
    expect(Buffer.from(c).equals(Buffer.from(cutRect(raw, 30, [0, 5, 20, 20])))).to.equal(true);
    // on a real photo, with resampling: byte for byte the centre crop of earlier releases
    const photo = path.join(__dirname, '..', '..', 'data', 'flowers', 'rose', fs.readdirSync(path.join(__dirname, '..', '..', 'data', 'flowers', 'rose'))[0]);
    const before = await sharp(photo)
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(64, 64, { fit: 'cover', position: 'centre' })
      .removeAlpha()
      .raw()
      .toBuffer();
    expect(Buffer.from(await decodeImage(photo, { size: 64, crop: 'center' })).equals(before)).to.equal(true);
    const fill = await decodeImage(f, { size: 16 });
    const ref = await sharp(f).resize(16, 16, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    expect(Buffer.from(fill).equals(ref)).to.equal(true);
  });

  it('the presized copy keeps the aspect with the short side at presize', async () => {
    const f = path.join(dir, 'p.png');
    await noisePng(f, 40, 24, 5);
    const p = await decodePresized(f, 30);
    expect([p.width, p.height]).to.deep.equal([50, 30]);
    expect(p.pixels.length).to.equal(50 * 30 * 3);
    const ref = await sharp(f).resize(50, 30, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    expect(Buffer.from(p.pixels).equals(ref)).to.equal(true);
  });

  it('EXIF orientation is applied before the crop is placed', async () => {
    // a smooth gradient survives JPEG; stored 24 wide × 40 tall with orientation 6 it shows 40 wide × 24 tall
    const w = 24;
    const h = 40;
    const px = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([y * 6, x * 10, 128], (y * w + x) * 3);
    const stored = path.join(dir, 'rot.jpg');
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100 })
      .toFile(stored);
    const upright = path.join(dir, 'upright.png');
    await sharp(stored).rotate().png().toFile(upright);
    expect((await sharp(upright).metadata()).width).to.equal(40);
    const a = await decodeImage(stored, { size: 21, crop: 'center', cropPct: 0.875 });
    const b = await decodeImage(upright, { size: 21, crop: 'center', cropPct: 0.875 });
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff).to.be.at.most(2);
  });
});
