import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { parseOrThrow } from '../../src/config/parse';
import type { JobInput } from '../../src/config/schema';
import { TOKENS } from '../../src/container';
import { BatchAugmenter, type ImageDraw } from '../../src/data/augment';
import { AugmentSchema } from '../../src/data/augment-schema';
import { rawBatches } from '../../src/data/batches';
import { frozenPrefixRule, prefixCacheMode, viewRng } from '../../src/data/cached-views';
import { Rng } from '../../src/data/rng';
import { runJob } from '../../src/job';
import { LoopTrainerFactory, type TrainerFactory } from '../../src/train/build';
import type { Callback } from '../../src/train/callbacks';
import type { Trainer } from '../../src/train/trainer';
import { layertune, userLines } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { dataContainer, MemorySource } from '../helpers/memory-source';

const cfg = (a: Record<string, unknown> = {}) => parseOrThrow(AugmentSchema, a, 'augment');
const AUG = { randomResizedCrop: { scale: [0.35, 1] }, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } };

/** Every row's draws of one training pass, by example key, with the batch keys and the view. */
async function pass(source: MemorySource, seed: number, epoch: number, views: number) {
  const augment = new BatchAugmenter(cfg(AUG), 16);
  const rng = new Rng(seed);
  const draws = new Map<string, ImageDraw>();
  const keys: string[] = [];
  const seen: Array<number | undefined> = [];
  const opts = { size: 16, batch: 4, shuffle: true, flip: true, augment, views: { count: views, epoch, seed } };
  for await (const b of rawBatches(source, source.train, opts, rng)) {
    b.keys.forEach((k, i) => draws.set(k.replace(/#view\d+$/, ''), b.draws!.rows[i]));
    keys.push(...b.keys);
    seen.push(b.view);
  }
  return { draws, keys, views: seen, rngAfter: rng.getState() };
}

describe('cached augmented views of a frozen prefix (data.augment.cachedViews)', function () {
  this.timeout(300000);

  it('the mode: once without augmentation, views with K > 0, recomputed with K 0, MixUp/CutMix or noise erasing', () => {
    expect(prefixCacheMode(cfg({}))).to.deep.equal({ kind: 'once' });
    expect(prefixCacheMode(cfg({ cachedViews: 4 }))).to.deep.equal({ kind: 'once' });
    // the default: 4 views (the measured rule)
    expect(prefixCacheMode(cfg(AUG))).to.deep.equal({ kind: 'views', views: 4 });
    expect(prefixCacheMode(cfg({ ...AUG, cachedViews: 0 }))).to.deep.equal({ kind: 'recompute', why: 'views-off' });
    expect(prefixCacheMode(cfg({ ...AUG, cachedViews: 4 }))).to.deep.equal({ kind: 'views', views: 4 });
    expect(prefixCacheMode(cfg({ ...AUG, cachedViews: 4, mix: { mixupAlpha: 0.2 } }))).to.deep.equal({ kind: 'recompute', why: 'mix' });
    expect(prefixCacheMode(cfg({ ...AUG, cachedViews: 4, randomErasing: { value: 'random' } }))).to.deep.equal({ kind: 'recompute', why: 'noise' });
    // erasing with a constant is a per-image draw like any other
    expect(prefixCacheMode(cfg({ ...AUG, cachedViews: 4, randomErasing: { value: 0 } }))).to.deep.equal({ kind: 'views', views: 4 });
  });

  it('plan says when K views do not fit in train.featureCacheMB, with the sizes', () => {
    const size = { entryBytes: 2 ** 20, trainImages: 100, valImages: 20, budgetMB: 300 };
    // 4 × 100 + 20 = 420 entries of 1 MB over 300 MB
    expect(frozenPrefixRule(cfg({ ...AUG, cachedViews: 4 }), size)).to.contain(
      'it needs 420 MB ((4 × 100 train + 20 val) × 1 MB), over train.featureCacheMB 300: the rest spills',
    );
    // 2 × 100 + 20 = 220 fits
    expect(frozenPrefixRule(cfg({ ...AUG, cachedViews: 2 }), size)).to.not.contain('spills');
  });

  it('K views are distinct and drawn from their seed alone; epoch e reads view e mod K; the data order is the run RNG’s as before', async () => {
    const source = new MemorySource(['a', 'b'], 5, 1);
    const K = 3;
    const epochs = await Promise.all([0, 1, 2, 3, 4].map((e) => pass(source, 7, e, K)));
    epochs.forEach((p, e) => {
      expect(p.views.every((v) => v === e % K)).to.equal(true);
      expect(p.keys.every((k) => k.endsWith(`#view${e % K}`))).to.equal(true);
      expect(p.keys).to.have.length(10);
    });
    for (const ex of source.train) {
      const [v0, v1, v2, v3, v4] = epochs.map((p) => p.draws.get(ex.key)!);
      // three different views: the crop boxes differ (each holds four uniform draws)
      expect(v0.box).to.not.deep.equal(v1.box);
      expect(v1.box).to.not.deep.equal(v2.box);
      expect(v0.box).to.not.deep.equal(v2.box);
      // and they come back: epoch 3 is view 0, epoch 4 view 1
      expect(v3).to.deep.equal(v0);
      expect(v4).to.deep.equal(v1);
      // the rule, by hand: the view's own RNG draws the flip, then the augmenter's draws
      const r = viewRng(7, ex.key, 1);
      const flip = r.next() < 0.5;
      expect(v1).to.deep.equal(new BatchAugmenter(cfg(AUG), 16).drawImage(r, flip));
    }
    // reproducible for a seed, different for another
    const again = await pass(source, 7, 1, K);
    expect([...again.draws]).to.deep.equal([...epochs[1].draws]);
    const other = await pass(source, 8, 1, K);
    expect(other.draws.get('train:0:0')!.box).to.not.deep.equal(epochs[1].draws.get('train:0:0')!.box);
    // the run's RNG only shuffles: its state after the pass is that of a plain shuffle of the examples
    const shuffled = new Rng(7);
    const order = shuffled.shuffle(source.train).map((x) => x.key);
    expect(epochs[1].keys.map((k) => k.replace(/#view\d+$/, ''))).to.deep.equal(order);
    expect(epochs[1].rngAfter).to.equal(shuffled.getState());
  });

  // 12 train / 4 val images at 32 px, batch 4: 3 steps an epoch; conv1 and blocks 1-5 frozen
  const job = (out: string, views: number, seed = 5): JobInput =>
    ({
      model: { size: 32 },
      data: { augment: { ...AUG, cachedViews: views } },
      groups: { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_[1-5])(_bn)?$', freeze: true }] },
      train: { epochs: 3, batch: 4, seed },
      backend: 'wasm',
      out,
      checkpoint: { everyEpochs: 1 },
    }) as JobInput;
  const source = () => new MemorySource(['a', 'b'], 6, 2);

  it('a run with K = 2 computes each view once (epoch 3 reads view 0 from the cache), holds numTensors flat, resumes bit for bit', async () => {
    let trainer: Trainer | null = null;
    const container = dataContainer(source);
    container.rebind<TrainerFactory>(TOKENS.Trainer).toConstantValue({
      create: (p, parts) => (trainer = new LoopTrainerFactory().create(p, parts)),
    });
    const counts: Array<[number, number]> = [];
    const record: Callback = { afterEpoch: () => void counts.push([trainer!.featureCache!.misses, trainer!.featureCache!.hits]) };
    const logs: string[] = [];
    const a = tmpDir('lt-views-a-');
    const full = await runJob(job(a, 2), { log: (l) => void logs.push(l), container, callbacks: [record] });
    expect(full.cachedStages).to.be.greaterThan(0);
    expect(logs.join('\n')).to.contain('outputs cached for 2 augmented view(s) per image (data.augment.cachedViews), epoch e training on view e mod 2');
    // epoch 1: 12 views (view 0) + 4 validation images computed; epoch 2: 12 new views (view 1), validation read;
    // epoch 3: view 0 again, everything read
    expect(counts).to.deep.equal([
      [16, 0],
      [28, 4],
      [28, 20],
    ]);
    const tensors = full.fit.history.map((h) => h.numTensors);
    expect(new Set(tensors).size, `numTensors per epoch ${tensors}`).to.equal(1);

    const b = tmpDir('lt-views-b-');
    const crash: Callback = {
      afterStep(s) {
        if (s.step === 4) throw new Error('simulated crash');
      },
    };
    await runJob(job(b, 2), { log: () => undefined, container: dataContainer(source), callbacks: [crash] }).then(
      () => expect.fail('the crash should have stopped the run'),
      (e) => expect((e as Error).message).to.equal('simulated crash'),
    );
    await runJob({}, { log: () => undefined, resume: b, container: dataContainer(source) });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f))), f).to.equal(true);
    }
    // K = 2 trains on other inputs than recomputing every view: the option is not a no-op
    const c = tmpDir('lt-views-c-');
    await runJob(job(c, 0), { log: () => undefined, container: dataContainer(source) });
    expect(fs.readFileSync(path.join(c, 'model/weights.bin')).equals(fs.readFileSync(path.join(a, 'model/weights.bin')))).to.equal(false);
  });

  it('a negative or fractional cachedViews is refused in one line naming the field, exit 2', async () => {
    const dir = tmpDir('lt-views-bad-');
    const data = path.join(dir, 'data');
    await writeClassFolder(data, { a: 4, b: 4 });
    for (const [v, why] of [
      [-1, '0 \\(off\\) or more'],
      [1.5, 'a whole number \\(0 = off\\)'],
    ] as const) {
      const f = path.join(dir, 'job.yaml');
      fs.writeFileSync(f, YAML.stringify({ data: { dir: data, augment: { ...AUG, cachedViews: v } } }));
      const out = path.join(dir, `run${v}`);
      const r = layertune(['train', '--config', f, '--backend', 'cpu', '--out', out]);
      const errors = userLines(r.stderr).filter((l) => l.startsWith('error: '));
      expect(r.code, r.stderr).to.equal(2);
      expect(errors, r.stderr).to.have.length(1);
      expect(errors[0]).to.match(new RegExp(`^error: job\\.yaml\\.data\\.augment\\.cachedViews: cachedViews counts views per image: ${why}$`));
      expect(fs.existsSync(out), 'nothing written').to.equal(false);
    }
  });
});
