import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOrThrow } from '../../src/config/parse';
import { type Affine, boxAffine, centreOf, composeAffine, inverseAffine, type Padding, resampleHost, resampleReference } from '../../src/data/affine';
import { BatchAugmenter } from '../../src/data/augment';
import { AugmentSchema } from '../../src/data/augment-schema';
import { adjustHue, shiftHueReference } from '../../src/data/color-ops';
import { Rng } from '../../src/data/rng';
import { AUG_KERNELS_ENV, AUGMENT_FMA_WASM_PATH, AUGMENT_WASM_PATH, augmentKernelMode, augmentKernels } from '../../src/engine/wasm/augment';
import { firstBitDifference } from '../helpers/aug-kernels';

const root = path.join(__dirname, '..', '..');
const hasClang16 = spawnSync('clang-16', ['--version']).status === 0;

/** Runs f with LAYERTUNE_AUG_KERNELS set to `mode`, restoring what was there. */
function withMode<T>(mode: string | undefined, f: () => T): T {
  const before = process.env[AUG_KERNELS_ENV];
  if (mode === undefined) delete process.env[AUG_KERNELS_ENV];
  else process.env[AUG_KERNELS_ENV] = mode;
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env[AUG_KERNELS_ENV];
    else process.env[AUG_KERNELS_ENV] = before;
  }
}

const none = { angle: 0, translate: [0, 0] as [number, number], scale: 1, shear: [0, 0] as [number, number] };

/**
 * Maps that reach every branch of the resample: exact pixel positions (identity, right-angle turns, whole shifts,
 * flips: the snap), small and large turns, zooms in and out far enough that reflection folds a position more than
 * one period (the % route), shears, and random matrices.
 */
function mapsFor(rng: Rng, size: number, n: number): Affine[] {
  const c = centreOf(size);
  const fixed: Affine[] = [
    inverseAffine(c, none),
    inverseAffine(c, { ...none, angle: 90 }),
    inverseAffine(c, { ...none, angle: -270 }),
    inverseAffine(c, { ...none, translate: [2, -3] }),
    boxAffine([0, 1, 1, 0], size), // left-right flip
    boxAffine([1, 0, 0, 1], size), // upside down
    inverseAffine(c, { ...none, angle: 7.5, scale: 1.3 }),
    inverseAffine(c, { ...none, angle: -33, scale: 0.2 }), // positions up to 5 sizes out: several reflections
    inverseAffine(c, { ...none, shear: [17, -9], translate: [size, 0] }),
    composeAffine(boxAffine([0.1, 0.9, 0.8, 0.05], size), inverseAffine(c, { ...none, angle: 12, scale: 0.9 })),
  ];
  const random = () => [1, 2, 3, 4, 5, 6].map((i) => (i === 3 || i === 6 ? (rng.next() - 0.5) * 4 * size : (rng.next() - 0.5) * 4)) as Affine;
  return Array.from({ length: n }, (_, k) => (k < fixed.length ? fixed[k] : random()));
}

describe('augmentation C kernels (csrc/augment_kernels.c) against the JavaScript reference loops', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('LAYERTUNE_AUG_KERNELS picks the kernels (default, wasm) or the loops (js); another value names the variable', () => {
    expect(withMode(undefined, augmentKernelMode)).to.equal('wasm');
    expect(withMode('wasm', () => augmentKernels())).to.not.equal(null);
    expect(withMode('js', () => augmentKernels())).to.equal(null);
    expect(() => withMode('simd', augmentKernelMode)).to.throw(/LAYERTUNE_AUG_KERNELS: "simd" is not one of wasm, js/);
  });

  for (const size of [1, 2, 5, 8, 31]) {
    for (const ch of [1, 3, 4]) {
      it(`resample ${size}x${size}x${ch}: bit for bit the reference, 8-bit and float input, reflect and constant padding`, () => {
        const rng = new Rng(1000 * size + ch);
        const n = 14;
        const count = n * size * size * ch;
        const u8 = Uint8Array.from({ length: count }, () => rng.int(256));
        // float pixels with fractions, negatives and a signed zero: the kernel must not depend on 8-bit input
        const f32 = Float32Array.from({ length: count }, (_, i) => (i === 1 ? -0 : (rng.next() - 0.2) * 300));
        const mats = mapsFor(rng, size, n);
        const paddings: Padding[] = [{ kind: 'reflect' }, { kind: 'constant', fill: [124, -3.25, 0.5, 250].slice(0, ch) }];
        for (const src of [u8, f32]) {
          for (const padding of paddings) {
            const kernel = resampleHost(src, n, size, ch, mats, padding);
            const reference = resampleReference(src, n, size, ch, mats, padding);
            const at = firstBitDifference(kernel, reference);
            expect(at, `${src.constructor.name} ${padding.kind}: element ${at}: ${kernel[at]} vs ${reference[at]}`).to.equal(-1);
          }
        }
      });
    }
  }

  it('resample at 224 px with the bench affine draws: bit for bit the reference (the pair loop over a whole row)', () => {
    const size = 224;
    const aug = new BatchAugmenter(
      parseOrThrow(AugmentSchema, { affine: { degrees: 30, translate: [0.2, 0.2], scale: [0.5, 1.5], shear: 10 } }, 'augment'),
      size,
    );
    const rng = new Rng(7);
    const rows = Array.from({ length: 4 }, () => aug.drawImage(rng, rng.next() < 0.5));
    const mats = rows.map((r) => r.affine ?? boxAffine(r.box, size));
    const px = Uint8Array.from({ length: 4 * size * size * 3 }, () => rng.int(256));
    expect(firstBitDifference(resampleHost(px, 4, size, 3, mats, { kind: 'reflect' }), resampleReference(px, 4, size, 3, mats, { kind: 'reflect' }))).to.equal(
      -1,
    );
  });

  it('hue shift: bit for bit the reference on random, grey, tied, black, white and odd-sized images, any shift sign', () => {
    const rng = new Rng(3);
    for (const per of [1, 2, 7, 64]) {
      const shifts = [0.1, -0.1, 0, 0.5, -0.5, 1e-7, -0.4999, 0.3, 0.25, -0.25];
      const n = shifts.length;
      const px = new Float32Array(n * per * 3);
      for (let k = 0; k < n; k++) {
        for (let p = 0; p < per; p++) {
          const i = (k * per + p) * 3;
          const kind = p % 6;
          const r = rng.next() * 255;
          const g = rng.next() * 255;
          // grey (max = min), red and green tied for the maximum, black, white, then random
          const rgb = kind === 0 ? [r, r, r] : kind === 1 ? [r, r, g] : kind === 2 ? [0, 0, 0] : kind === 3 ? [255, 255, 255] : [r, g, rng.next() * 255];
          px.set(rgb, i);
        }
      }
      const input = Float32Array.from(px);
      const kernel = withMode('wasm', () => augmentKernels()!.hueShift(input, shifts, per));
      expect(firstBitDifference(input, px), 'the input is left as it was').to.equal(-1);
      const reference = Float32Array.from(px);
      shiftHueReference(reference, shifts, per);
      const at = firstBitDifference(kernel, reference);
      expect(at, `per ${per}: element ${at}: ${kernel[at]} vs ${reference[at]}`).to.equal(-1);
      // an image with shift 0 is left exactly as it was
      const k0 = shifts.indexOf(0);
      expect(firstBitDifference(kernel.subarray(k0 * per * 3, (k0 + 1) * per * 3), px.subarray(k0 * per * 3, (k0 + 1) * per * 3))).to.equal(-1);
    }
  });

  it('a seeded batch with affine, colour jitter and hue is the same tensor with the kernels and with the loops, from the same draws', () => {
    const size = 24;
    const cfg = parseOrThrow(
      AugmentSchema,
      {
        affine: { degrees: 20, translate: [0.1, 0.1], scale: [0.8, 1.2], shear: 5 },
        colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.2 },
      },
      'augment',
    );
    const aug = new BatchAugmenter(cfg, size);
    const px = Uint8Array.from({ length: 6 * size * size * 3 }, (_, i) => (i * 37 + (i >> 5)) % 256);
    const run = (mode: string) =>
      withMode(mode, () => {
        const rng = new Rng(42);
        const rows = Array.from({ length: 6 }, () => aug.drawImage(rng, rng.next() < 0.5));
        const x = aug.images(px, rows, aug.drawBatch(rng), { kind: 'scale', low: -1, high: 1 });
        const values = x.dataSync() as Float32Array;
        x.dispose();
        // the stream after the draws: the kernels take no draws of their own
        return { values, rows, next: rng.next() };
      });
    const a = run('wasm');
    const b = run('js');
    expect(a.rows).to.deep.equal(b.rows);
    expect(a.next).to.equal(b.next);
    expect(a.rows.some((r) => r.hue !== undefined && r.hue !== 0) && a.rows.some((r) => r.affine)).to.equal(true);
    expect(firstBitDifference(a.values, b.values)).to.equal(-1);
  });

  it('leaves no tensors behind and its memory does not grow across batches of one size', () => {
    const size = 16;
    const x = tf.tensor4d(
      Array.from({ length: 3 * size * size * 3 }, (_, i) => i % 256),
      [3, size, size, 3],
    );
    const mats = [0, 1, 2].map((i) => inverseAffine(centreOf(size), { ...none, angle: 10 * i }));
    const once = () => {
      adjustHue(x, [0.1, 0, -0.2]).dispose();
      resampleHost(x.dataSync(), 3, size, 3, mats, { kind: 'reflect' });
    };
    once();
    const kernels = augmentKernels()!;
    const n0 = tf.memory().numTensors;
    const bytes0 = kernels.memoryBytes();
    for (let i = 0; i < 4; i++) once();
    expect(tf.memory().numTensors).to.equal(n0);
    expect(kernels.memoryBytes()).to.equal(bytes0);
    x.dispose();
  });

  it('both committed builds are one binary importing only env.memory: the kernels hold no MADD, so they compute the same', () => {
    const simd = fs.readFileSync(AUGMENT_WASM_PATH);
    expect(fs.readFileSync(AUGMENT_FMA_WASM_PATH).equals(simd)).to.equal(true);
    const mod = new WebAssembly.Module(simd);
    expect(WebAssembly.Module.imports(mod)).to.deep.equal([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).to.have.members([
      'resample_u8',
      'resample_f32',
      'hue_shift',
      'jitter_u8',
      'jitter_f32',
      'crop_resize',
    ]);
  });

  // committed because CI has no clang-16; this keeps the bytes honest wherever it exists
  for (const build of ['simd128', 'fma']) {
    (hasClang16 ? it : it.skip)(`the committed ${build} build matches a fresh clang-16 build byte for byte`, function () {
      this.timeout(60_000);
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lta-')), 'a.wasm');
      execFileSync(path.join(root, 'scripts', 'build-wasm-kernels.sh'), [out], {
        stdio: 'pipe',
        env: { ...process.env, BUILD: build, SRC: 'csrc/augment_kernels.c' },
      });
      const committed = build === 'fma' ? AUGMENT_FMA_WASM_PATH : AUGMENT_WASM_PATH;
      expect(fs.readFileSync(out).equals(fs.readFileSync(committed)), `${committed} is stale: run scripts/build-wasm-kernels.sh and commit it`).to.equal(true);
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
    });
  }
});
