/** `layertune augment-preview`: writes one augmented training batch as a PNG grid, to see what a config does. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
import { writeFileAtomic } from '../../io/write';
import { prepare } from '../../job';
import { previewBatch, tileGrid } from '../../data/preview';
import { flagsToJob, num, withJobFlags } from '../flags';

export function register(program: Command): void {
  withJobFlags(
    program
      .command('augment-preview')
      .description('write one augmented training batch (as the training run with this config and seed would draw it) as a PNG grid')
      .option('--png <file>', 'output PNG (default <out>/augment-preview.png)')
      .option('--cols <n>', 'images per row (default: a square grid)', num),
  ).action(async (o) => {
    const p = await prepare(flagsToJob(o), { configFile: o.config, log: (s) => console.error(s) });
    const size = p.network.backbone.inputSize;
    const b = await previewBatch(p.data, {
      size,
      batch: p.job.train.batch,
      seed: p.job.train.seed,
      flip: p.job.data.flip,
      augment: p.job.data.augment,
      balanced: p.job.data.balance === 'sampler',
      preprocess: p.network.backbone.preprocess,
    });
    const cols = o.cols ?? Math.ceil(Math.sqrt(b.n));
    const grid = tileGrid(b.pixels, b.n, size, cols);
    const png = await sharp(Buffer.from(grid.data), { raw: { width: grid.width, height: grid.height, channels: 3 } })
      .png()
      .toBuffer();
    const file = o.png ?? path.join(p.job.out, 'augment-preview.png');
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, png);
    console.log(`wrote ${file}: ${b.n} images of ${size}px (${b.labels.map((l) => p.data.classes[l]).join(', ')})`);
  });
}
