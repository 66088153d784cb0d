import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { readModelArtifacts } from '../../src/models/io';
import { ModelFormatError } from '../../src/errors';
import { tmpDir } from '../helpers/images';

const SHIPPED = path.join(__dirname, '..', '..', 'models', 'mobilenet_v1_0.25_224');

function copyModel(): string {
  const d = tmpDir('lt-model-');
  for (const f of fs.readdirSync(SHIPPED)) fs.copyFileSync(path.join(SHIPPED, f), path.join(d, f));
  return d;
}

describe('tfjs LayersModel folder loader', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('loads the shipped MobileNet, cuts it at conv_pw_13_relu and declares its resolution stages', async () => {
    const b = await loadLayersFolder(SHIPPED);
    expect(b.arch).to.equal('mobilenet_v1_0.25');
    expect(b.model.outputs[0].shape).to.deep.equal([null, 7, 7, 256]);
    expect(b.stages.map((s) => s.endLayer)).to.deep.equal(['conv_pw_1_relu', 'conv_pw_3_relu', 'conv_pw_5_relu', 'conv_pw_11_relu', 'conv_pw_13_relu']);
    // 475,544 parameters in all, minus the 1000-way classifier (256·1000 + 1000)
    expect(b.model.countParams()).to.equal(475544 - 257000);
    expect(b.preprocess).to.deep.equal({ kind: 'scale', low: -1, high: 1 });
  });

  it('re-inputs the backbone at another size, sharing the same weights', async () => {
    const b = await loadLayersFolder(SHIPPED, { inputSize: 128 });
    expect(b.model.outputs[0].shape).to.deep.equal([null, 4, 4, 256]);
    expect(b.inputSize).to.equal(128);
  });

  it('refuses weight paths that leave the model folder', () => {
    const d = copyModel();
    const j = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
    j.weightsManifest[0].paths = ['../../etc/passwd'];
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(j));
    expect(() => readModelArtifacts(path.join(d, 'model.json'))).to.throw(ModelFormatError, /leaves the model folder/);
  });

  it('refuses a manifest whose byte counts disagree with its shards', () => {
    const d = copyModel();
    const j = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
    j.weightsManifest[0].weights[0].shape = [3, 3, 3, 9];
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(j));
    expect(() => readModelArtifacts(path.join(d, 'model.json'))).to.throw(ModelFormatError, /declares \d+ bytes but its shards hold \d+/);
  });

  it('refuses a manifest declaring absurd sizes before reading any shard', () => {
    const d = copyModel();
    const j = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8'));
    j.weightsManifest[0].weights[0].shape = [100000, 100000, 10];
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(j));
    expect(() => readModelArtifacts(path.join(d, 'model.json'))).to.throw(ModelFormatError, /over the limit/);
  });

  it('names a missing folder, a missing shard and broken JSON', () => {
    expect(() => readModelArtifacts('/nope/model.json')).to.throw(ModelFormatError, /no such file/);
    const d = copyModel();
    fs.rmSync(path.join(d, 'group3-shard1of1'));
    expect(() => readModelArtifacts(path.join(d, 'model.json'))).to.throw(ModelFormatError, /group3-shard1of1.*missing/);
    fs.writeFileSync(path.join(d, 'model.json'), '{"modelTopology": ');
    expect(() => readModelArtifacts(path.join(d, 'model.json'))).to.throw(ModelFormatError, /not valid JSON/);
  });
});
