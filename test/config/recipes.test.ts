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
    // what flagsToJob makes of --lr 0.004: groups.top and lr.base
    const j = resolveJob({ recipe: 'timm', groups: { top: 0.004 }, lr: { base: 0.004 } } as never, undefined, (l) => void lines.push(l));
    expect(j.groups).to.deep.include({ strategy: 'layerDecay', lr: 0.004, decay: 0.75 });
    expect(j.groups).to.not.have.property('top');
    expect(lines).to.include("recipe timm sets groups.lr = 0.001; the job's 0.004 wins");
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

  it('an unknown recipe is one line naming the field; fastai is refused until its two-phase run lands', () => {
    expect(() => resolveJob({ recipe: 'keras' })).to.throw(/^config\.recipe: /);
    expect(() => resolveJob({ recipe: 'fastai' })).to.throw(/^config\.recipe: is validated but not applied/);
  });
});
