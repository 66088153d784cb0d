import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { parseOrThrow } from '../../src/config/parse';
import { BatchAugmenter, drawResizedCrop } from '../../src/data/augment';
import { AugmentSchema } from '../../src/data/augment-schema';
import { rawBatches } from '../../src/data/batches';
import { cutRect } from '../../src/data/eval-crop';
import { ImageFolderSource } from '../../src/data/image-folder';
import { checkPresize, cropPresized, describeInputs, drawResizedCropIn } from '../../src/data/presize';
import { Rng } from '../../src/data/rng';
import type { DataSource } from '../../src/data/source';
import { tmpDir } from '../helpers/images';

const cfg = (a: Record<string, unknown>) => parseOrThrow(AugmentSchema, a, 'augment');

/** Seeded noise written as a lossless PNG; returns its HWC pixels. */
async function noisePng(file: string, w: number, h: number, seed: number): Promise<Uint8Array> {
  const px = new Uint8Array(w * h * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    px[i] = s >> 23;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
  return px;
}

describe('presizing: random crops from a cached copy that keeps the aspect', () => {
  // every crop is exactly 20×20 (area share 400 / 960, aspect 1), so no resampling hides a misplaced window
  const SHARE = 400 / 960;
  const rrc = cfg({ randomResizedCrop: { scale: [SHARE, SHARE], ratio: [1, 1] } });

  it("draws torchvision's rectangles on a non-square image; its fallback is the central crop within the ratio range", () => {
    const rng = new Rng(11);
    for (let i = 0; i < 300; i++) {
      const [t, l, h, w] = drawResizedCropIn(rng, 60, 30, [0.2, 1], [3 / 4, 4 / 3]);
      expect(t >= 0 && l >= 0 && t + h <= 30 && l + w <= 60, `${[t, l, h, w]}`).to.equal(true);
    }
    // scale 1 at aspect 1 needs a 31×31 square in 40×24: all ten tries fail; 40/24 > 1, so width = 24 · 1, centred
    expect(drawResizedCropIn(new Rng(1), 40, 24, [1, 1], [1, 1])).to.deep.equal([0, 8, 24, 24]);
    expect(drawResizedCropIn(new Rng(1), 24, 40, [1, 1], [1, 1])).to.deep.equal([8, 0, 24, 24]);
    // ratio range above the image's own aspect: full width, height 40 / 2 = 20
    expect(drawResizedCropIn(new Rng(1), 40, 40, [1, 1], [2, 3])).to.deep.equal([10, 0, 20, 40]);
    // on a square it is the size×size draw the batch augmenter always made (same stream, same rectangles)
    const a = new Rng(5);
    const b = new Rng(5);
    for (let i = 0; i < 50; i++)
      expect(drawResizedCropIn(a, 32, 32, [0.08, 1], [3 / 4, 4 / 3])).to.deep.equal(drawResizedCrop(b, 32, [0.08, 1], [3 / 4, 4 / 3]));
  });

  it('training crops are windows of the presized copy, drawn in its own pixels, not of a size×size squash', async () => {
    const root = tmpDir('lt-presize-');
    const raw = await noisePng(path.join(root, 'a', 'x.png'), 40, 24, 3);
    await noisePng(path.join(root, 'b', 'y.png'), 30, 30, 4);
    // presize 24 = the short side: the cached copy is the photo itself, 40×24
    const source = new ImageFolderSource({ root, valFraction: 0, seed: 1, presize: 24 });
    const aug = new BatchAugmenter(rrc, 20);
    const x = source.train.filter((e) => e.key.endsWith('x.png'));
    const seen = new Set<string>();
    for (let seed = 1; seed <= 6; seed++) {
      const batches = [];
      for await (const b of rawBatches(source, x, { size: 20, batch: 1, shuffle: false, flip: false, augment: aug }, new Rng(seed))) batches.push(b);
      expect(batches).to.have.length(1);
      const want = drawResizedCropIn(new Rng(seed), 40, 24, [SHARE, SHARE], [1, 1]);
      const draw = batches[0].draws!.rows[0];
      expect(draw.source).to.deep.equal(want);
      // the tensor-side box only flips (none here): the crop was cut on the host
      expect(draw.box).to.deep.equal([0, 0, 1, 1]);
      expect(Buffer.from(batches[0].pixels).equals(Buffer.from(cutRect(raw, 40, want)))).to.equal(true);
      seen.add(`${want[0]},${want[1]}`);
    }
    // the windows move, across the full 40-pixel width (a 20×20 squash could offer no room at all)
    expect(seen.size).to.be.greaterThan(3);
  });

  it('a cut-and-resize of the copy is the window resized; a window of the input size is copied exactly', () => {
    const px = new Uint8Array(30 * 20 * 3).map((_, i) => (i * 37) % 251);
    const copy = { pixels: px, width: 30, height: 20 };
    expect(Buffer.from(cropPresized(copy, [3, 5, 10, 10], 10)).equals(Buffer.from(cutRect(px, 30, [3, 5, 10, 10])))).to.equal(true);
    const up = cropPresized(copy, [2, 4, 8, 12], 16);
    // the same as resizing the cut-out window on its own (test/data/resize-crop.test.ts pins the resize)
    const window = { pixels: cutRect(px, 30, [2, 4, 8, 12]), width: 12, height: 8 };
    expect(Buffer.from(up).equals(Buffer.from(cropPresized(window, [0, 0, 8, 12], 16)))).to.equal(true);
  });

  it('same seed, same crops; a pass resumed mid-epoch replays the draws it skips; flips fold into the box', async () => {
    const root = tmpDir('lt-presize-resume-');
    for (let i = 0; i < 5; i++) await noisePng(path.join(root, i % 2 ? 'a' : 'b', `${i}.png`), 36 + i * 3, 24, 10 + i);
    const source = new ImageFolderSource({ root, valFraction: 0, seed: 1 });
    const aug = new BatchAugmenter(cfg({ randomResizedCrop: { scale: [0.3, 1] } }), 20);
    const pass = async (seed: number, skip = 0) => {
      const out: Array<{ keys: string[]; px: string; boxes: unknown }> = [];
      for await (const b of rawBatches(source, source.train, { size: 20, batch: 2, shuffle: true, flip: true, augment: aug, skip }, new Rng(seed)))
        out.push({ keys: b.keys, px: Buffer.from(b.pixels).toString('base64'), boxes: b.draws!.rows.map((r) => [r.box, r.source]) });
      return out;
    };
    const a = await pass(7);
    expect(a).to.have.length(3);
    expect(await pass(7)).to.deep.equal(a);
    expect(await pass(8)).to.not.deep.equal(a);
    expect(await pass(7, 2)).to.deep.equal(a.slice(2));
    // default presize ⌈20 · 1.15⌉ = 23: every drawn window lies in a copy with short side 23
    for (const b of a)
      for (const [, src] of b.boxes as Array<[unknown, number[]]>) {
        expect(src[0] + src[2]).to.be.at.most(23);
      }
  });

  it('a source without presized copies, or no random crop, decodes straight to size×size as before', async () => {
    const root = tmpDir('lt-presize-none-');
    await noisePng(path.join(root, 'a', 'x.png'), 40, 24, 4);
    await noisePng(path.join(root, 'b', 'y.png'), 30, 30, 5);
    const real = new ImageFolderSource({ root, valFraction: 0, seed: 1 });
    const bare: DataSource = {
      ...real,
      classes: real.classes,
      train: real.train,
      val: real.val,
      skipped: [],
      warnings: [],
      pixels: (e, s) => real.pixels(e, s),
    };
    const aug = new BatchAugmenter(rrc, 20);
    for await (const b of rawBatches(bare, bare.train, { size: 20, batch: 1, shuffle: false, flip: false, augment: aug }, new Rng(2))) {
      expect(b.draws!.rows[0].source).to.equal(undefined);
      expect(b.draws!.rows[0].box).to.not.deep.equal([0, 0, 1, 1]);
    }
    const flipOnly = new BatchAugmenter(cfg({ vflip: 0.5 }), 20);
    for await (const b of rawBatches(real, real.train, { size: 20, batch: 1, shuffle: false, flip: false, augment: flipOnly }, new Rng(2))) {
      expect(b.draws!.rows[0].source).to.equal(undefined);
      const ex = real.train.find((e) => e.key === b.keys[0])!;
      expect(Buffer.from(b.pixels).equals(Buffer.from(await real.pixels(ex, 20)))).to.equal(true);
    }
  });

  it('presize below the input size is refused in one line; one without a random crop is said to do nothing', () => {
    expect(() => checkPresize(200, 224, true)).to.throw(/^config\.data\.presize: 200 is below the input size 224$/);
    expect(checkPresize(undefined, 224, false)).to.equal(null);
    expect(checkPresize(258, 224, true)).to.equal(null);
    expect(checkPresize(258, 224, false)).to.match(/^data\.presize has no effect without data\.augment\.randomResizedCrop/);
  });

  it('plan and the run log say how training and validation images become the input', () => {
    expect(describeInputs(undefined, true, { mode: 'center', cropPct: 0.875 }, 224)).to.equal(
      'training crops from copies presized to short side 258 (⌈224 × 1.15⌉), aspect kept; validation: short side 256 (cropPct 0.875), centre 224×224',
    );
    expect(describeInputs(300, false, { mode: 'fill', cropPct: 0.875 }, 96)).to.equal(
      'training images squashed to 96×96; validation: the whole photo squashed to 96×96 (eval.crop fill)',
    );
  });
});
