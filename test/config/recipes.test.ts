import { expect } from 'chai';
import { resolveJob } from '../../src/config/load';
import { applyRecipe } from '../../src/config/recipes';

describe('named recipes', () => {
  it('classic is exactly the default job', () => {
    expect(resolveJob({ recipe: 'classic' })).to.deep.equal({ ...resolveJob({}), recipe: 'classic' });
  });

  it('timm lays its values under the job: RRC + jitter 0.4, label smoothing 0.1, AdamW, cosine after warmup, layer decay', () => {
    const lines: string[] = [];
    const j = resolveJob({ recipe: 'timm' }, undefined, (l) => void lines.push(l));
    expect(lines).to.deep.equal([]);
    expect(j.data.augment.randomResizedCrop).to.deep.equal({ scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
    expect(j.data.augment.colorJitter).to.deep.equal({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0 });
    expect(j.loss.labelSmoothing).to.equal(0.1);
    expect(j.optimizer.algorithm).to.equal('adamw');
    expect(j.optimizer.weightDecay).to.equal(0.05);
    expect(j.schedule).to.deep.include({ type: 'cosine', per: 'step' });
    expect(j.warmup).to.deep.include({ type: 'linear', epochs: 1 });
    expect(j.groups).to.deep.include({ strategy: 'layerDecay', decay: 0.75 });
  });

  it('--lr under the timm recipe sets the layer-decay top rate (groups.lr), not a stepped field', () => {
    const lines: string[] = [];
    // what flagsToJob makes of --lr 0.01: groups.top and lr.base
    const j = resolveJob({ recipe: 'timm', groups: { top: 0.01 }, lr: { base: 0.01 } } as never, undefined, (l) => void lines.push(l));
    expect(j.groups).to.deep.include({ strategy: 'layerDecay', lr: 0.01, decay: 0.75 });
    expect(j.groups).to.not.have.property('top');
    expect(lines).to.include("recipe timm sets groups.lr = 0.004; the job's 0.01 wins");
  });

  it('a job field that contradicts the recipe wins, field by field, with one line saying so', () => {
    const lines: string[] = [];
    const j = resolveJob(
      { recipe: 'timm', loss: { labelSmoothing: 0 }, data: { augment: { colorJitter: { brightness: 0.1 } } } },
      undefined,
      (l) => void lines.push(l),
    );
    expect(j.loss.labelSmoothing).to.equal(0);
    // the other jitter fields still come from the recipe
    expect(j.data.augment.colorJitter).to.deep.equal({ brightness: 0.1, contrast: 0.4, saturation: 0.4, hue: 0 });
    expect(lines.sort()).to.deep.equal([
      "recipe timm sets data.augment.colorJitter.brightness = 0.4; the job's 0.1 wins",
      "recipe timm sets loss.labelSmoothing = 0.1; the job's 0 wins",
    ]);
  });

  it("a job's own strategy or schedule type replaces the recipe's choice wholesale instead of mixing two", () => {
    const { config, notes } = applyRecipe({ recipe: 'timm', schedule: { type: 'constant' } });
    expect(config.schedule).to.deep.equal({ type: 'constant' });
    expect(notes).to.deep.equal(['recipe timm sets schedule = {"type":"cosine","per":"step"}; the job\'s {"type":"constant"} wins']);
    expect(resolveJob({ recipe: 'timm', schedule: { type: 'constant' } }).schedule).to.deep.equal({ type: 'constant' });
  });

  it('an unknown recipe is one line naming the field', () => {
    expect(() => resolveJob({ recipe: 'keras' })).to.throw(/^config\.recipe: /);
  });

  it("fastai is fine_tune's defaults: one frozen epoch, slice(1e-5, 1e-3), one-cycle pct 0.3 div 5 with cycled momentum, AdamW 0.01", () => {
    const lines: string[] = [];
    const j = resolveJob({ recipe: 'fastai' }, undefined, (l) => void lines.push(l));
    expect(lines).to.deep.equal([]);
    expect(j.train.freezeEpochs).to.equal(1);
    expect(j.groups).to.deep.include({ strategy: 'geometric', lo: 1e-5, hi: 1e-3, groups: 3, biasLrMult: 1, biasDecayMult: 0, normDecayMult: 0 });
    expect(j.schedule).to.deep.include({ type: 'onecycle', pctStart: 0.3, divFactor: 5, cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95 });
    // fastai's div_final 1e5 is PyTorch's div_factor × final_div_factor
    expect(j.schedule.type === 'onecycle' && j.schedule.divFactor * j.schedule.finalDivFactor).to.equal(1e5);
    expect(j.optimizer).to.deep.include({ algorithm: 'adamw', weightDecay: 0.01, betas: [0.9, 0.99], eps: 1e-5 });
    expect(j.lr.scaling).to.equal('none');
    expect(j.data.augment.colorJitter).to.deep.equal({ brightness: 0.2, contrast: 0.2, saturation: 0, hue: 0 });
    // aug_transforms' max_rotate 10, max_zoom 1.1, p_affine 0.75 (its warp has no transform here)
    expect(j.data.augment.affine).to.deep.equal({ p: 0.75, degrees: 10, translate: [0, 0], scale: [1, 1.1], shear: 0 });
    expect(j.data.flip).to.equal(true);
  });

  it('--lr under the fastai recipe is the top of its slice, keeping lr_mult 100 unless lo is given; the user overrides freezeEpochs', () => {
    const lines: string[] = [];
    const j = resolveJob({ recipe: 'fastai', groups: { top: 0.004 }, train: { freezeEpochs: 3 } } as never, undefined, (l) => void lines.push(l));
    expect(j.groups).to.deep.include({ strategy: 'geometric', hi: 0.004, lo: 0.00004 });
    expect(j.train.freezeEpochs).to.equal(3);
    expect(lines.sort()).to.deep.equal([
      "recipe fastai sets groups.hi = 0.001; the job's 0.004 wins",
      "recipe fastai sets groups.lo = 0.00001; the job's 0.00004 wins",
      "recipe fastai sets train.freezeEpochs = 1; the job's 3 wins",
    ]);
    expect(resolveJob({ recipe: 'fastai', groups: { top: 0.004, lo: 1e-6 } } as never).groups).to.deep.include({ hi: 0.004, lo: 1e-6 });
  });
});
