/** `layertune augment-preview`: writes one augmented training batch as a PNG grid, to see what a config does. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
import { writeFileAtomic } from '../../io/write';
import { prepare } from '../../job';
import { cachedViewsOf } from '../../data/cached-views';
import { previewBatch, tileGrid } from '../../data/preview';
import { ConfigError } from '../../errors';
import { flagsToJob, num, withJobFlags } from '../flags';

export function register(program: Command): void {
  withJobFlags(
    program
      .command('augment-preview')
      .description('write one augmented training batch (as the training run with this config and seed would draw it) as a PNG grid')
      .option('--png <file>', 'output PNG (default <out>/augment-preview.png)')
      .option('--cols <n>', 'images per row (default: a square grid)', num)
      .option('--view <k>', 'with cached views of a frozen prefix (data.augment.cachedViews K): show view k, 0 to K-1, of the same images (default 0)', num),
  ).action(async (o) => {
    const p = await prepare(flagsToJob(o), { configFile: o.config, log: (s) => console.error(s) });
    const size = p.network.backbone.inputSize;
    // training reads cached views only when a frozen prefix is cached (src/train/trainer.ts trainPass)
    const count = p.cachedStages > 0 ? cachedViewsOf(p.job.data.augment) : 0;
    const view: number = o.view ?? 0;
    if (o.view !== undefined && count === 0)
      throw new ConfigError('--view', 'this job has no cached views: they need a frozen, cached prefix and data.augment transforms with cachedViews above 0');
    if (!Number.isInteger(view) || view < 0 || view >= Math.max(count, 1))
      throw new ConfigError('--view', `expected an integer from 0 to ${count - 1}, got ${o.view}`);
    const b = await previewBatch(p.data, {
      size,
      batch: p.job.train.batch,
      seed: p.job.train.seed,
      flip: p.job.data.flip,
      augment: p.job.data.augment,
      balanced: p.job.data.balance === 'sampler',
      preprocess: p.network.backbone.preprocess,
      ...(count > 0 ? { views: { count, epoch: view } } : {}),
    });
    const cols = o.cols ?? Math.ceil(Math.sqrt(b.n));
    const grid = tileGrid(b.pixels, b.n, size, cols);
    const png = await sharp(Buffer.from(grid.data), { raw: { width: grid.width, height: grid.height, channels: 3 } })
      .png()
      .toBuffer();
    const file = o.png ?? path.join(p.job.out, 'augment-preview.png');
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, png);
    const which = b.view !== undefined ? `, view ${b.view} of ${count} (epoch e trains on view e mod ${count})` : '';
    console.log(`wrote ${file}: ${b.n} images of ${size}px${which} (${b.labels.map((l) => p.data.classes[l]).join(', ')})`);
  });
}
