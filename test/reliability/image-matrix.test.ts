/**
 * The image-input matrix (issue 8, item 1): one data folder holding every hostile or unusual input,
 * driven through the real scan → ImageFolderSource → rawBatches path. Each `it` is one row of
 * MATRIX.md and checks its documented outcome: used, skipped with a warning and counted, or a
 * clear error. Pixel-level semantics (colour conversion, orientation) are checked in
 * test/data/decode.test.ts; here the question is what the pipeline does with each file.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rawBatches } from '../../src/data/batches';
import { ImageFolderSource } from '../../src/data/image-folder';
import { scanFolder } from '../../src/data/scan';
import { resolveJob } from '../../src/config/load';
import { createContainer, TOKENS, type DataSourceFactory } from '../../src/container';
import { DataError } from '../../src/errors';
import { tmpDir, writeImage } from '../helpers/images';
import { pngBombHeader, write16BitPng, writeAnimatedGif, writeBrokenJpegs, writeCmykJpeg, writeExifRotatedJpeg, writeTruncatedPng } from './files';

const SIZE = 16;

interface Outcome {
  used: Map<string, Uint8Array>;
  skipped: Map<string, string>;
  warnings: string[];
  emitted: string[];
}

/** Every example of the source through one pass of batches: which files came out, which were skipped and why. */
async function drive(source: ImageFolderSource): Promise<Outcome> {
  const emitted: string[] = [];
  const onWarning = (w: Error & { code?: string }) => {
    if (w.code === 'LAYERTUNE_SKIPPED_IMAGE') emitted.push(w.message);
  };
  process.on('warning', onWarning);
  const used = new Map<string, Uint8Array>();
  try {
    for await (const b of rawBatches(source, [...source.train, ...source.val], { size: SIZE, batch: 4, shuffle: false, flip: false }, null)) {
      b.keys.forEach((k, i) => used.set(k, b.pixels.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3)));
    }
    await new Promise((r) => setImmediate(r)); // warnings are delivered on the next tick
  } finally {
    process.off('warning', onWarning);
  }
  return { used, skipped: new Map(source.skipped.map((s) => [s.file, s.reason])), warnings: source.warnings, emitted };
}

describe('reliability: image-input matrix', function () {
  this.timeout(60000);
  const root = tmpDir('lt-matrix-');
  const good = path.join(root, 'good');
  const other = path.join(root, 'other');
  const f = (name: string) => path.join(good, name);
  let out: Outcome;
  let scanMs = 0;

  before(async () => {
    await writeImage(f('plain.png'), { rgb: [200, 30, 30] });
    await writeImage(f('gray.png'), { channels: 1, rgb: [90, 0, 0] });
    await writeImage(f('alpha.png'), { channels: 4 });
    await write16BitPng(f('deep16.png'));
    await writeCmykJpeg(f('cmyk.jpg'));
    await writeExifRotatedJpeg(f('exif.jpg'));
    await writeAnimatedGif(f('anim.gif'));
    await writeImage(f('with space é ü 花.png'), { rgb: [10, 200, 10] });
    await writeBrokenJpegs(good);
    await writeTruncatedPng(f('truncated.png'));
    fs.writeFileSync(f('empty.jpg'), Buffer.alloc(0));
    fs.writeFileSync(f('text.jpg'), 'this is a text file, not a JPEG\n');
    fs.writeFileSync(f('bomb.png'), pngBombHeader(30000, 30000));
    fs.symlinkSync('loop2.jpg', f('loop1.jpg'));
    fs.symlinkSync('loop1.jpg', f('loop2.jpg'));
    fs.symlinkSync('nowhere.jpg', f('broken.jpg'));
    fs.mkdirSync(f('folder.jpg'));
    execFileSync('mkfifo', [f('fifo.jpg')]);
    fs.writeFileSync(f('.hidden.jpg'), 'x');
    fs.writeFileSync(f('notes.txt'), 'x');
    // class "other": a byte-for-byte copy of good/plain.png plus two images of its own
    fs.mkdirSync(other);
    fs.copyFileSync(f('plain.png'), path.join(other, 'copy of plain.png'));
    await writeImage(path.join(other, 'o1.png'), { rgb: [20, 40, 200] });
    await writeImage(path.join(other, 'o2.png'), { rgb: [25, 45, 205] });
    await writeImage(path.join(root, 'single', 'only.png'), { rgb: [200, 200, 20] });
    fs.symlinkSync(root, path.join(root, 'self')); // a class folder that is the data folder itself
    fs.symlinkSync('spin', path.join(root, 'spin')); // a class folder that links to itself
    fs.symlinkSync('/', path.join(root, 'slash')); // a class folder that links to an ancestor
    fs.mkdirSync(path.join(root, '.git'));
    const t0 = Date.now();
    const source = new ImageFolderSource({ root, valFraction: 0, seed: 1 });
    scanMs = Date.now() - t0;
    out = await drive(source);
  });

  const expectUsed = (name: string) => expect(out.used.has(f(name)), `${name} used`).to.equal(true);
  const expectSkipped = (name: string, reason: RegExp) => {
    const file = f(name);
    expect(out.used.has(file), `${name} not used`).to.equal(false);
    expect(out.skipped.get(file), `${name} skipped`).to.match(reason);
    expect(out.skipped.get(file)).to.contain(file); // the message names the file
  };
  const expectDecodeWarning = (name: string) =>
    expect(
      out.emitted.some((w) => w.includes(f(name))),
      `${name}: a process warning was emitted`,
    ).to.equal(true);

  it('reads the folder as classes good, other, single: hidden folders and looping class links are not classes', () => {
    expect(new ImageFolderSource({ root, valFraction: 0, seed: 1 }).classes).to.deep.equal(['good', 'other', 'single']);
    expect(out.warnings.some((w) => w.includes(path.join(root, 'self')) && /loops back/.test(w))).to.equal(true);
    expect(out.warnings.some((w) => w.includes(path.join(root, 'spin')) && /symlink loop/.test(w))).to.equal(true);
    expect(out.warnings.some((w) => w.includes(path.join(root, 'slash')) && /loops back/.test(w))).to.equal(true);
    expect(scanMs).to.be.lessThan(5000);
  });

  for (const name of ['plain.png', 'gray.png', 'alpha.png', 'deep16.png', 'cmyk.jpg', 'exif.jpg', 'anim.gif', 'with space é ü 花.png']) {
    it(`uses ${name}`, () => {
      expectUsed(name);
      expect(out.used.get(f(name))!.length).to.equal(SIZE * SIZE * 3);
      expect(out.skipped.has(f(name))).to.equal(false);
    });
  }

  it('applies EXIF orientation on the way (the stored-left red half comes out on the right)', () => {
    const px = out.used.get(f('exif.jpg'))!;
    expect(px[2]).to.be.greaterThan(150); // top-left pixel is blue
    expect(px[(SIZE - 1) * 3]).to.be.greaterThan(150); // top-right pixel is red
  });

  it('takes the first frame of an animated GIF (red), not the second (white)', () => {
    const px = out.used.get(f('anim.gif'))!;
    expect(px[0]).to.be.greaterThan(200);
    expect(px[1]).to.be.lessThan(60);
  });

  for (const [name, reason] of [
    ['corrupt.jpg', /not a readable image|cannot decode image/],
    ['truncated.jpg', /not a readable image|cannot decode image/],
    ['truncated.png', /cannot decode image/],
    ['empty.jpg', /not a readable image/],
    ['text.jpg', /not a readable image/],
  ] as const) {
    it(`skips ${name} with a warning, counted in source.skipped`, () => {
      expectSkipped(name, reason);
      expectDecodeWarning(name);
    });
  }

  it('refuses a 30000×30000 decompression bomb by its declared size, before decoding a pixel', () => {
    expect(fs.statSync(f('bomb.png')).size).to.be.lessThan(2000);
    expectSkipped('bomb.png', /declares 30000x30000 = 900000000 pixels, over the limit of 67108864 \(data\.maxPixels\)/);
    expectDecodeWarning('bomb.png');
  });

  it('skips symlink loops, broken links, folders and FIFOs named like images at scan time, without hanging', () => {
    // scan-time skips are listed on the layout (and logged as warnings); they never reach the decoder
    const layout = scanFolder(root, { checkDuplicates: false });
    const skipped = new Map(layout.skipped.map((s) => [s.file, s.reason]));
    const cases: Array<[string, RegExp]> = [
      ['loop1.jpg', /symlink loop/],
      ['loop2.jpg', /symlink loop/],
      ['broken.jpg', /broken symlink/],
      ['folder.jpg', /not a regular file/],
      ['fifo.jpg', /not a regular file/],
    ];
    for (const [n, reason] of cases) {
      expect(out.used.has(f(n)), n).to.equal(false);
      expect(skipped.get(f(n)), n)
        .to.match(reason)
        .and.contain(f(n));
      expect(
        out.warnings.some((w) => w.includes(f(n)) && reason.test(w)),
        n,
      ).to.equal(true);
    }
    expect(layout.skipped).to.have.length(cases.length);
  });

  it('ignores hidden files silently and other extensions with a warning', () => {
    expect([...out.used.keys(), ...out.skipped.keys()].some((k) => k.includes('.hidden'))).to.equal(false);
    expect(out.warnings.some((w) => w.includes('.hidden'))).to.equal(false);
    expect(out.warnings.some((w) => w.includes(f('notes.txt')) && /not an image extension/.test(w))).to.equal(true);
  });

  it('uses both copies of a file found in two classes, and warns naming both', () => {
    const copy = path.join(other, 'copy of plain.png');
    expect(out.used.has(copy)).to.equal(true);
    const w = out.warnings.filter((x) => x.startsWith('duplicate content'));
    expect(w).to.have.length(1); // only the cross-class pair: plain.png and its copy
    expect(w[0]).to.contain(f('plain.png')).and.contain(copy).and.contain('good and other');
  });

  it('uses a class folder holding a single image (training only) and warns', () => {
    const only = path.join(root, 'single', 'only.png');
    expect(out.used.has(only)).to.equal(true);
    expect(out.warnings.some((w) => w.includes(path.join(root, 'single')) && /single image/.test(w))).to.equal(true);
    const s = new ImageFolderSource({ root, valFraction: 0.5, seed: 1 });
    expect(s.train.map((e) => e.key)).to.include(only);
    expect(s.val.map((e) => e.key)).to.not.include(only);
  });

  it('counts every skipped file exactly once, even over several passes', async () => {
    const source = new ImageFolderSource({ root, valFraction: 0, seed: 1 });
    for (let pass = 0; pass < 2; pass++) {
      for await (const _ of rawBatches(source, source.train, { size: SIZE, batch: 4, shuffle: false, flip: false }, null)) void _;
    }
    const files = source.skipped.map((s) => s.file);
    expect(new Set(files).size).to.equal(files.length);
    expect(files.filter((x) => x.endsWith('.jpg') || x.endsWith('.png'))).to.include.members([f('corrupt.jpg'), f('bomb.png')]);
  });

  it('gives a clear error for a class folder with no images, even when it holds hidden or non-image files', () => {
    const r = tmpDir('lt-matrix-empty-');
    fs.mkdirSync(path.join(r, 'a'));
    fs.mkdirSync(path.join(r, 'b'));
    fs.writeFileSync(path.join(r, 'a', 'x.png'), fs.readFileSync(f('plain.png')));
    fs.writeFileSync(path.join(r, 'b', '.DS_Store'), 'x');
    fs.writeFileSync(path.join(r, 'b', 'readme.txt'), 'x');
    expect(() => scanFolder(r)).to.throw(DataError, new RegExp(`${path.join(r, 'b')}: class folder holds no images`));
  });

  it('data.maxPixels in the job config sets the bomb limit: a 1200×1200 photo is refused at 1e6 and used at the default', async () => {
    const r = tmpDir('lt-matrix-limit-');
    await writeImage(path.join(r, 'a', 'big.png'), { w: 1200, h: 1200 });
    await writeImage(path.join(r, 'b', 'small.png'));
    const data = createContainer().get<DataSourceFactory>(TOKENS.DataSource);
    const strict = data.create(resolveJob({ data: { dir: r, maxPixels: 1_000_000, valFraction: 0 } }));
    const loose = data.create(resolveJob({ data: { dir: r, valFraction: 0 } }));
    const big = path.join(r, 'a', 'big.png');
    const a = await drive(strict as ImageFolderSource);
    const b = await drive(loose as ImageFolderSource);
    expect(a.skipped.get(big)).to.match(/declares 1200x1200 = 1440000 pixels, over the limit of 1000000/);
    expect(b.used.has(big)).to.equal(true);
  });
});
