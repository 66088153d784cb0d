import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { loadBackbone } from '../../src/models/registry';
import { describeBackbone, formatDescription } from '../../src/models/describe';
import { disposeLoaded } from '../../src/models/torch-source';

describe('models: describeBackbone (for `layertune inspect`)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('counts parameters per stage and every layer lands in exactly one stage', async () => {
    const b = await loadBackbone('arch:resnet18');
    const d = describeBackbone(b);
    // torchvision's 11,689,512 minus the 1000-class fc (512·1000 + 1000)
    expect(d.params).to.equal(11_689_512 - 513_000);
    expect(d.stateParams).to.equal(2 * 4800); // running mean + var of 4,800 BatchNorm channels
    expect(d.stages.map((s) => s.name)).to.deep.equal(['stem', 'stage1', 'stage2', 'stage3', 'stage4']);
    expect(d.stages.reduce((n, s) => n + s.params, 0)).to.equal(d.params);
    expect(d.stages.reduce((n, s) => n + s.layers, 0)).to.equal(d.layers.length);
    // stem: conv1 7×7×3×64 + BN γ,β
    expect(d.stages[0].params).to.equal(7 * 7 * 3 * 64 + 2 * 64);
    expect(d.stages[4].outputShape).to.deep.equal([null, 7, 7, 512]);
    const text = formatDescription(d);
    expect(text).to.contain('resnet18').and.contain('conv5_block2_out').and.contain('stage4');
    disposeLoaded(b);
  });
});
