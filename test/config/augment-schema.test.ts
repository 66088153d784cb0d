import { expect } from 'chai';
import { resolveJob } from '../../src/config/load';
import { JobSchema } from '../../src/config/schema';
import { parseOrThrow } from '../../src/config/parse';
import { ConfigError } from '../../src/errors';

const parse = (input: Record<string, unknown>) => parseOrThrow(JobSchema, input, 'config');

/** The one-line message a job raises, or null when it parses. */
function errorOf(input: Record<string, unknown>): string | null {
  try {
    parse(input);
    return null;
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    const msg = (e as Error).message;
    expect(msg).to.not.contain('\n');
    return msg;
  }
}

describe('augmentation, loss, eval and EMA config', () => {
  it('every transform is off in the parsed defaults; the measured rule (auto) adds them per data set when the job runs', () => {
    const j = parse({});
    expect(j.data.augment).to.deep.equal({ vflip: 0, grayscale: 0, trivialAugment: false, cachedViews: 4, auto: true });
    expect(j.data.presize).to.equal(undefined);
    expect(j.data.balance).to.equal('none');
    expect(j.loss.labelSmoothing).to.equal(0);
    expect(j.eval).to.deep.equal({ crop: 'fill', cropPct: 0.875 });
    expect(j.ema).to.equal(undefined);
    expect(j.recipe).to.equal(undefined);
  });

  it("fills in the anchors' defaults for a transform named without parameters", () => {
    const j = parse({
      data: { augment: { randomResizedCrop: {}, colorJitter: {}, randAugment: {}, randomErasing: {}, affine: {}, mix: { mixupAlpha: 0.8 } } },
      ema: {},
    });
    const a = j.data.augment;
    // torchvision RandomResizedCrop(scale=(0.08, 1.0), ratio=(3/4, 4/3))
    expect(a.randomResizedCrop).to.deep.equal({ scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
    // timm rand-m9-mstd0.5, torchvision RandAugment(num_ops=2)
    expect(a.randAugment).to.deep.equal({ n: 2, m: 9, mstd: 0.5 });
    // torchvision RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)
    expect(a.randomErasing).to.deep.equal({ p: 0.5, scale: [0.02, 0.33], ratio: [0.3, 3.3], value: 0 });
    expect(a.affine).to.deep.equal({ p: 1, degrees: 0, translate: [0, 0], scale: [1, 1], shear: 0 });
    expect(a.colorJitter).to.deep.equal({ brightness: 0, contrast: 0, saturation: 0, hue: 0 });
    // timm Mixup(prob=1.0, switch_prob=0.5)
    expect(a.mix).to.deep.equal({ mixupAlpha: 0.8, prob: 1, switchProb: 0.5 });
    expect(j.ema).to.deep.equal({ decay: 0.9998, warmup: true, export: 'ema' });
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a probability above 1', { data: { augment: { vflip: 1.5 } } }, /^config\.data\.augment\.vflip: a probability must be in \[0, 1\]$/],
    [
      'a negative probability',
      { data: { augment: { randomErasing: { p: -0.1 } } } },
      /^config\.data\.augment\.randomErasing\.p: a probability must be in \[0, 1\]$/,
    ],
    ['a mix probability above 1', { data: { augment: { mix: { cutmixAlpha: 1, switchProb: 2 } } } }, /^config\.data\.augment\.mix\.switchProb: a probability/],
    [
      'a scale range with min > max',
      { data: { augment: { randomResizedCrop: { scale: [0.9, 0.5] } } } },
      /^config\.data\.augment\.randomResizedCrop\.scale: range \[0\.9, 0\.5\] has min > max$/,
    ],
    [
      'a ratio range ≤ 0',
      { data: { augment: { randomResizedCrop: { ratio: [0, 1] } } } },
      /^config\.data\.augment\.randomResizedCrop\.ratio: range \[0, 1\] must be > 0 at both ends$/,
    ],
    [
      'an erasing scale above the whole image',
      { data: { augment: { randomErasing: { scale: [0.1, 1.5] } } } },
      /^config\.data\.augment\.randomErasing\.scale: scale is a fraction/,
    ],
    [
      'a zoom range with min > max',
      { data: { augment: { affine: { scale: [1.2, 0.9] } } } },
      /^config\.data\.augment\.affine\.scale: range \[1\.2, 0\.9\] has min > max$/,
    ],
    ['MixUp alpha = 0', { data: { augment: { mix: { mixupAlpha: 0 } } } }, /^config\.data\.augment\.mix\.mixupAlpha: alpha must be > 0/],
    ['CutMix alpha < 0', { data: { augment: { mix: { cutmixAlpha: -1 } } } }, /^config\.data\.augment\.mix\.cutmixAlpha: alpha must be > 0/],
    ['a mix with neither alpha', { data: { augment: { mix: {} } } }, /^config\.data\.augment\.mix\.mixupAlpha: give mixupAlpha, cutmixAlpha or both$/],
    ['presize below the input size', { model: { size: 224 }, data: { presize: 200 } }, /^config\.data\.presize: 200 is below the input size 224$/],
    ['an unknown transform', { data: { augment: { solarise: 0.5 } } }, /^config\.data\.augment: unknown field\(s\) "solarise"$/],
    ['an unknown recipe', { recipe: 'keras' }, /^config\.recipe: /],
    ['label smoothing of 1', { loss: { labelSmoothing: 1 } }, /^config\.loss\.labelSmoothing: /],
    ['an unknown eval crop', { eval: { crop: 'letterbox' } }, /^config\.eval\.crop: /],
    [
      'both RandAugment and TrivialAugment',
      { data: { augment: { randAugment: {}, trivialAugment: true } } },
      /^config\.data\.augment\.trivialAugment: choose one/,
    ],
  ];
  for (const [what, input, pattern] of bad) {
    it(`refuses ${what} in one line naming the field`, () => {
      expect(errorOf(input)).to.match(pattern);
    });
  }

  it('accepts the edges of every range', () => {
    expect(
      errorOf({ model: { size: 224 }, data: { presize: 224, augment: { vflip: 1, grayscale: 0, randomResizedCrop: { scale: [1, 1], ratio: [1, 1] } } } }),
    ).to.equal(null);
  });

  it('every option the schema validates resolves: none is held back as not applied', () => {
    // each of these was refused by name while its stage was missing; all are applied now
    const refused = (input: Record<string, unknown>) => {
      try {
        resolveJob(input);
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(refused({ data: { augment: { vflip: 0, grayscale: 0 } }, eval: { crop: 'fill' }, loss: { labelSmoothing: 0.1 } })).to.equal(null);
    expect(refused({ data: { augment: { randomResizedCrop: {}, colorJitter: { brightness: 0.2 }, mix: { cutmixAlpha: 1 } } } })).to.equal(null);
    expect(refused({ data: { augment: { colorJitter: { hue: 0.1 } } } })).to.equal(null);
    expect(refused({ data: { augment: { affine: { degrees: 10 } } } })).to.equal(null);
    expect(refused({ data: { augment: { randAugment: { n: 2, m: 9 } } } })).to.equal(null);
    expect(refused({ data: { augment: { trivialAugment: true } } })).to.equal(null);
    // presizing and evaluation crops are applied now (src/data/presize.ts, src/data/eval-crop.ts)
    expect(refused({ eval: { crop: 'center', cropPct: 0.9 }, data: { presize: 300 } })).to.equal(null);
    // the weight EMA is applied (src/train/ema.ts)
    expect(refused({ ema: {} })).to.equal(null);
    expect(refused({ ema: { decay: 0.99, warmup: false, export: 'raw' } })).to.equal(null);
    expect(refused({ recipe: 'classic' })).to.equal(null);
    expect(refused({ recipe: 'fastai' })).to.equal(null);
    expect(refused({ data: { balance: 'sampler' } })).to.equal(null);
    expect(refused({ data: { balance: 'weights' } })).to.equal(null);
  });
});
