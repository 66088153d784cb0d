/**
 * Where the default rule's small-set augmentation spends its time per batch, stage by stage, on real photos
 * (flowers5) rather than the synthetic pixels of `npm run bench -- --aug`: the host side (each presized copy cut and
 * resized to the input, against flip-only's cached squares) and each tensor step of BatchAugmenter.images
 * (upload, the flip's cropAndResize, the colour jitter's luma, mean, composition and clip, normalisation).
 * Copies and squares are decoded once before timing, as an epoch after the first finds them in the cache.
 *
 *   npx tsx scripts/profile-augment-stages.ts [--data ../shared/data/flowers5] [--batch 16] [--size 224] [--repeats 7]
 *
 * Prints one JSON line: the median milliseconds of each stage over `repeats` batches, with /proc/loadavg.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../src/config/parse';
import { BatchAugmenter, type ImageDraw } from '../src/data/augment';
import { MEASURED_AUGMENT } from '../src/data/augment-rule';
import { AugmentSchema } from '../src/data/augment-schema';
import { rawBatches } from '../src/data/batches';
import { jitterCoefficients, jitterHost } from '../src/data/color-jitter';
import { flipHorizontal } from '../src/data/decode';
import { ImageFolderSource } from '../src/data/image-folder';
import { preprocessBatch, preprocessTensor } from '../src/data/preprocess';
import { cropPresized } from '../src/data/presize';
import { Rng } from '../src/data/rng';
import { selectBackend } from '../src/engine/backend';
import type { Preprocess } from '../src/models/types';
import { arg, median } from './bench/stats';

/** images()'s left-right flip of the bytes (a private helper there), for timing on its own. */
function flipRowsForProfile(pixels: Uint8Array, rows: ImageDraw[], size: number): Uint8Array {
  const per = size * size * 3;
  const out = new Uint8Array(rows.length * per);
  rows.forEach((r, k) => {
    const img = pixels.subarray(k * per, (k + 1) * per);
    out.set(r.box[1] === 1 ? flipHorizontal(img, size) : img, k * per);
  });
  return out;
}

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim();

async function main(): Promise<void> {
  const root = arg('data', path.join(__dirname, '..', '..', 'shared', 'data', 'flowers5'));
  const batch = Number(arg('batch', '16'));
  const size = Number(arg('size', '224'));
  const repeats = Number(arg('repeats', '7'));
  await selectBackend(arg('backend', 'wasm'));
  const pre: Preprocess = { kind: 'scale', low: -1, high: 1 };
  const source = new ImageFolderSource({ root, valFraction: 0.2, seed: 1 });
  const examples = source.train.slice(0, batch * (repeats + 1));
  const aug = new BatchAugmenter(parseOrThrow(AugmentSchema, { ...MEASURED_AUGMENT }, 'augment'), size);
  // warm the caches: an epoch after the first reads both from memory
  for (const ex of examples) {
    await source.pixels(ex, size);
    await source.presized!(ex, size);
  }
  const load0 = loadavg();
  const stages: Record<string, number[]> = {};
  const add = (k: string, ms: number) => {
    stages[k] ??= [];
    stages[k].push(ms);
  };
  const timeAsync = async <T>(k: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await f();
    add(k, performance.now() - t0);
    return v;
  };
  const timeSync = <T>(k: string, f: () => T): T => {
    const t0 = performance.now();
    const v = f();
    if (v instanceof tf.Tensor) v.dataSync();
    add(k, performance.now() - t0);
    return v;
  };

  // host side: whole batches as training forms them
  const flipBatches = rawBatches(source, examples, { size, batch, shuffle: false, flip: true }, new Rng(1));
  const augBatches = rawBatches(source, examples, { size, batch, shuffle: false, flip: true, augment: aug }, new Rng(1));
  const augRaw = [];
  for (let r = 0; r < repeats + 1; r++) {
    const f = await timeAsync('host flip-only: rawBatches', async () => (await flipBatches.next()).value);
    const x = timeSync('flip-only: preprocessBatch', () => preprocessBatch(f.pixels, f.n, size, pre));
    x.dispose();
    augRaw.push(await timeAsync('host rule: rawBatches (crop + resize)', async () => (await augBatches.next()).value));
  }
  // the cut and resize alone on the same copies and crops
  // in data order (no shuffle), so batch r holds examples r·batch onwards
  for (const [r, b] of augRaw.entries()) {
    const rows = (b.draws?.rows ?? []) as ImageDraw[];
    const copies = await Promise.all(examples.slice(r * batch, r * batch + rows.length).map((ex) => source.presized!(ex, size)));
    timeSync('  cropPresized x batch', () => rows.map((d, i) => cropPresized(copies[i], d.source!, size)));
  }
  // tensor side, step by step: the tfjs composition images() used before the jitter kernel (commit b7f235f), and
  // the steps it takes now (the flip on the bytes, the colour map in csrc/augment_kernels.c, the upload)
  const LUMA = tf.tensor2d([0.299, 0.587, 0.114], [3, 1]);
  for (const b of augRaw) {
    const rows = (b.draws?.rows ?? []) as ImageDraw[];
    const n = rows.length;
    const full = timeSync('images(): whole', () => aug.images(b.pixels, rows, b.draws!.batch, pre));
    full.dispose();
    tf.tidy(() => {
      const flipped = timeSync('  now: flip the bytes (flipRows)', () => flipRowsForProfile(b.pixels, rows, size));
      const coloured = timeSync('  now: jitter kernel (u8 in, float out)', () => jitterHost(flipped, rows.map(jitterCoefficients), size * size));
      timeSync('  now: upload tensor4d', () => tf.tensor4d(coloured, [n, size, size, 3]));
      const x0 = timeSync('  before: upload tensor4d(Float32Array.from)', () => tf.tensor4d(Float32Array.from(b.pixels), [n, size, size, 3]));
      const x = timeSync('  before: cropAndResize (flips)', () =>
        tf.image.cropAndResize(
          x0,
          tf.tensor2d(
            rows.flatMap((r) => r.box),
            [n, 4],
          ),
          tf.range(0, n, 1, 'int32') as tf.Tensor1D,
          [size, size],
          'bilinear',
        ),
      );
      const luma = timeSync('  before: jitter luma matMul', () => tf.matMul(x.reshape([n * size * size, 3]), LUMA).reshape([n, size, size, 1]));
      const m0 = timeSync('  before: jitter mean', () => tf.mean(luma.reshape([n, size * size]), 1).reshape([n, 1, 1, 1]));
      const col = (v: number[]) => tf.tensor4d(v, [n, 1, 1, 1]);
      const A = col(rows.map((r) => r.saturation * r.contrast * r.brightness));
      const B = col(rows.map((r) => (1 - r.saturation) * r.contrast * r.brightness));
      const C = col(rows.map((r) => (1 - r.contrast) * r.brightness));
      const y = timeSync('  before: jitter x*A + luma*B + mean*C', () => tf.add(tf.add(tf.mul(x, A), tf.mul(luma, B)), tf.mul(m0, C)));
      const z = timeSync('  before: jitter clip', () => tf.clipByValue(y, 0, 255));
      timeSync('  preprocess', () => preprocessTensor(z as tf.Tensor4D, pre));
    });
  }
  LUMA.dispose();
  const ms = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Number(median(v.slice(1)).toFixed(1))]));
  console.log(JSON.stringify({ batch, size, repeats, backend: tf.getBackend(), load_start: load0, load_end: loadavg(), ms_median: ms }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
